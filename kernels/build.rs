//! Builds the CUDA-on-CPU emulator (see `src/emu.rs`): every `cuda/*.cu` and `emu/selftest/*.cu` is
//! compiled as C++17 by g++ after `emu/cuda_emu.h`, instrumented with `-fsanitize=thread` so that every
//! memory access calls a hook of `emu/emu_runtime.cpp` (byte counting and bounds checks); a thunk per
//! exported kernel turns CUDA's `void** kernelParams` into a typed call. All of it goes into one static
//! library, `libaural_emu.a`, linked into aural-kernels.
//!
//! Per .cu file:
//! 1. comments are blanked (line numbers kept) and each `extern __shared__ T name[];` is rewritten to
//!    `T* const& name = reinterpret_cast<T* const&>(aural_emu_dyn_smem);` (the launch's dynamic
//!    shared memory), so kernels use plain CUDA syntax;
//! 2. the exported kernels are found by preprocessing with `-DAURAL_EMU_SCAN` (so macro-generated
//!    kernels are seen) and keeping every `__global__` function that is not a template;
//! 3. a wrapper TU `#include`s the header, then the rewritten source under `#line 1 "<the .cu>"` (g++
//!    errors point at the real file), then `AURAL_EMU_EXPORT(name, file)` per kernel.
//! A .cu that g++ rejects fails the build with g++'s error.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let cuda_dir = root.join("cuda");
    let emu_dir = root.join("emu");
    let selftest_dir = emu_dir.join("selftest");
    let include_dir = emu_dir.join("include");

    for d in [&cuda_dir, &emu_dir, &selftest_dir, &include_dir] {
        println!("cargo:rerun-if-changed={}", d.display());
    }
    for f in ["cuda_emu.h", "emu_runtime.cpp", "emu_thunk.h"] {
        println!("cargo:rerun-if-changed={}", emu_dir.join(f).display());
    }
    for f in list(&include_dir, None) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    // Headers kernels may include (common.cuh, …).
    for f in list(&cuda_dir, Some("cuh")).into_iter().chain(list(&cuda_dir, Some("h"))) {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    let mut sources = list(&cuda_dir, Some("cu"));
    sources.extend(list(&selftest_dir, Some("cu")));

    let base = || {
        let mut b = cc::Build::new();
        b.cpp(true)
            .std("c++17")
            .opt_level(2)
            .debug(false)
            .warnings(false)
            .include(&include_dir)
            .include(&emu_dir)
            .include(&cuda_dir)
            .include(&selftest_dir)
            .flag("-fno-strict-aliasing")
            .flag("-fno-exceptions")
            .flag("-fno-threadsafe-statics")
            .flag("-DAURAL_EMU=1");
        b
    };
    let compiler = base().get_compiler();

    let mut wrappers = Vec::new();
    let mut all_kernels: Vec<String> = Vec::new();
    let mut owner: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let text = std::fs::read_to_string(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
        let code = rewrite_extern_shared(&strip_comments(&text));
        let stem = src.file_stem().unwrap().to_string_lossy().to_string();
        let dir_tag = if src.starts_with(&selftest_dir) { "selftest" } else { "cuda" };
        let body_path = out.join(format!("emu_{dir_tag}_{stem}.body.cu"));
        let mut body = String::new();
        writeln!(body, "#line 1 \"{}\"", src.display()).unwrap();
        body.push_str(&code);
        std::fs::write(&body_path, &body).unwrap();

        // Find the exported kernels after macro expansion.
        let scan = Command::new(compiler.path())
            .args(["-E", "-P", "-std=c++17", "-DAURAL_EMU_SCAN=1", "-DAURAL_EMU=1"])
            .arg("-I")
            .arg(&include_dir)
            .arg("-I")
            .arg(&emu_dir)
            .arg("-I")
            .arg(&cuda_dir)
            .arg("-I")
            .arg(&selftest_dir)
            .arg("-include")
            .arg(emu_dir.join("cuda_emu.h"))
            .args(["-x", "c++"])
            .arg(&body_path)
            .output()
            .expect("running the C++ preprocessor");
        if !scan.status.success() {
            panic!("emulator: preprocessing {} failed:\n{}", src.display(), String::from_utf8_lossy(&scan.stderr));
        }
        let pre = String::from_utf8_lossy(&scan.stdout);
        let names = exported_kernels(&pre);
        for n in &names {
            if let Some(prev) = owner.insert(n.clone(), src.clone()) {
                panic!("emulator: kernel `{n}` is defined in both {} and {}: exported kernel names must be unique", prev.display(), src.display());
            }
        }
        let rel = src.strip_prefix(&root).unwrap_or(src).display().to_string();
        let mut w = String::new();
        writeln!(w, "#include \"cuda_emu.h\"").unwrap();
        writeln!(w, "#include \"{}\"", body_path.display()).unwrap();
        writeln!(w, "#include \"emu_thunk.h\"").unwrap();
        for n in &names {
            writeln!(w, "AURAL_EMU_EXPORT({n}, \"{rel}\")").unwrap();
        }
        let wpath = out.join(format!("emu_{dir_tag}_{stem}.cpp"));
        write_if_changed(&wpath, &w);
        wrappers.push(wpath);
        all_kernels.extend(names);
    }

    // Registry TU.
    let mut reg = String::from("#include \"emu_thunk.h\"\n");
    for n in &all_kernels {
        writeln!(reg, "extern \"C\" const AuralEmuKernel aural_emu_kinfo_{n};").unwrap();
    }
    reg.push_str("extern \"C\" const AuralEmuKernel* const aural_emu_kernel_table[] = {\n");
    for n in &all_kernels {
        writeln!(reg, "    &aural_emu_kinfo_{n},").unwrap();
    }
    reg.push_str("    nullptr};\n");
    writeln!(reg, "extern \"C\" const unsigned aural_emu_kernel_count = {};", all_kernels.len()).unwrap();
    let reg_path = out.join("emu_registry.cpp");
    write_if_changed(&reg_path, &reg);

    // Instrumented kernel objects.
    let mut kb = base();
    kb.flag("-fsanitize=thread").flag("--param=tsan-instrument-func-entry-exit=0").files(&wrappers);
    let objects = match kb.try_compile_intermediates() {
        Ok(o) => o,
        Err(e) => panic!("emulator: compiling the kernels as C++ failed (g++ output above):\n{e}"),
    };

    // Runtime + registry (not instrumented) + kernel objects -> libaural_emu.a
    let mut rb = base();
    rb.file(emu_dir.join("emu_runtime.cpp")).file(&reg_path).objects(&objects);
    rb.compile("aural_emu");
}

fn list(dir: &Path, ext: Option<&str>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| ext.map_or(true, |x| p.extension().map_or(false, |e| e == x)))
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

/// Blanks `//` and `/* */` comments (newlines kept, string and char literals respected).
fn strip_comments(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            out.extend_from_slice(b"  ");
            i += 2;
            while i < b.len() && !(b[i] == b'*' && i + 1 < b.len() && b[i + 1] == b'/') {
                out.push(if b[i] == b'\n' { b'\n' } else { b' ' });
                i += 1;
            }
            if i < b.len() {
                out.extend_from_slice(b"  ");
                i += 2;
            }
        } else if c == b'"' || c == b'\'' {
            out.push(c);
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    out.push(b[i]);
                    i += 1;
                }
                out.push(b[i]);
                i += 1;
            }
            if i < b.len() {
                out.push(b[i]);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Brace depth at each `extern __shared__` and its rewrite.
fn rewrite_extern_shared(code: &str) -> String {
    let b = code.as_bytes();
    let mut out = String::with_capacity(code.len());
    let mut depth = 0i32;
    let mut i = 0;
    let mut last = 0;
    let mut in_lit: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = in_lit {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q || c == b'\n' {
                in_lit = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\'' => in_lit = Some(c),
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b'e' if code[i..].starts_with("extern") && (i == 0 || !is_ident(b[i - 1])) => {
                let after = &code[i + 6..];
                let t = after.trim_start();
                if after.len() > t.len() && t.starts_with("__shared__") && !is_ident(*t.as_bytes().get(10).unwrap_or(&b' ')) {
                    let decl_start = i + 6 + (after.len() - t.len()) + 10;
                    let Some(semi) = code[decl_start..].find(';') else { break };
                    let decl = &code[decl_start..decl_start + semi];
                    let newlines = decl.matches('\n').count();
                    let (ty, name) = parse_unsized_array_decl(decl)
                        .unwrap_or_else(|| panic!("emulator: cannot parse `extern __shared__{decl};` (expected `extern __shared__ T name[];`)"));
                    out.push_str(&code[last..i]);
                    if depth <= 0 {
                        out.push_str("static ");
                    }
                    write!(out, "{ty}* const& {name} = reinterpret_cast<{ty}* const&>(aural_emu_dyn_smem);").unwrap();
                    for _ in 0..newlines {
                        out.push('\n');
                    }
                    i = decl_start + semi + 1;
                    last = i;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&code[last..]);
    out
}

/// `__align__(16) unsigned char smem[]` -> ("unsigned char", "smem").
fn parse_unsized_array_decl(decl: &str) -> Option<(String, String)> {
    let mut d = decl.to_string();
    for kw in ["__align__", "alignas", "__attribute__"] {
        while let Some(p) = d.find(kw) {
            let open = p + d[p..].find('(')?;
            let mut depth = 0;
            let mut end = open;
            for (k, ch) in d[open..].char_indices() {
                if ch == '(' {
                    depth += 1;
                } else if ch == ')' {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
            }
            d.replace_range(p..end, " ");
        }
    }
    let d = d.trim();
    let d = d.strip_suffix(']')?.trim_end().strip_suffix('[')?.trim_end();
    let name_start = d.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
    let name = &d[name_start..];
    let ty = d[..name_start].split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() || ty.is_empty() {
        return None;
    }
    Some((ty, name.to_string()))
}

/// Names of the non-template `__global__` functions in preprocessed text (where `__global__` reads
/// `__aural_global__`, see cuda_emu.h under AURAL_EMU_SCAN).
fn exported_kernels(pre: &str) -> Vec<String> {
    const MARK: &str = "__aural_global__";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = pre[from..].find(MARK) {
        let pos = from + p;
        from = pos + MARK.len();
        // Statement prefix: back to the previous ';', '{' or '}'.
        let prefix_start = pre[..pos].rfind([';', '{', '}']).map_or(0, |q| q + 1);
        let prefix = &pre[prefix_start..pos];
        if prefix.contains("template") || prefix.contains("#define") {
            continue;
        }
        // The declarator name: the identifier before the first '(' that is not an attribute.
        let mut scan = from;
        loop {
            let Some(q) = pre[scan..].find('(') else { break };
            let head = pre[scan..scan + q].trim_end();
            let ident_start = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |x| x + 1);
            let ident = &head[ident_start..];
            if ident == "__launch_bounds__" || ident == "__attribute__" || ident == "__align__" || ident == "alignas" {
                // skip the balanced parenthesis group
                let open = scan + q;
                let mut depth = 0;
                let mut end = pre.len();
                for (k, ch) in pre[open..].char_indices() {
                    if ch == '(' {
                        depth += 1;
                    } else if ch == ')' {
                        depth -= 1;
                        if depth == 0 {
                            end = open + k + 1;
                            break;
                        }
                    }
                }
                scan = end;
                continue;
            }
            if !ident.is_empty() {
                out.push(ident.to_string());
            }
            break;
        }
    }
    out.sort();
    out.dedup();
    out
}
