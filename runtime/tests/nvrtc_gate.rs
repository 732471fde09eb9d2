//! The NVRTC gate (verification ladder rung 3): every `kernels/cuda/*.cu` compiles through the
//! project's own NVRTC path for compute_80 and compute_90 with no warnings, and ptxas (sm_90) reports
//! no spills and stays within `kernels/ptxas-budget.toml`.
//!
//! In CI (`CI=true`) a missing NVRTC is a failure; elsewhere these tests say that they skipped.
//! Regenerate the budget after a deliberate change with `AURAL_WRITE_PTXAS_BUDGET=1 ./scripts/test.sh`
//! (or `cargo test -p aural-runtime --test nvrtc_gate`) and commit the diff.

use aural_kernels::{kernel_names, ptx_entries, SOURCES};
use aural_runtime::gpu::{libs, nvrtc, ptxas};

fn nvrtc_available(test: &str) -> bool {
    match libs::nvrtc() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: NVRTC is required in CI: {e}");
            }
            eprintln!("{test}: SKIPPED (NVRTC not available: {e})");
            false
        }
    }
}

#[test]
fn every_kernel_compiles_for_compute_80_and_90() {
    if !nvrtc_available("nvrtc gate") {
        return;
    }
    let mut failures = Vec::new();
    for s in SOURCES {
        for arch in [80u32, 90] {
            let opts = nvrtc::options(&format!("compute_{arch}"));
            match nvrtc::compile_raw(s.family, s.src, &opts, false) {
                Err(e) => failures.push(e.to_string()),
                Ok(c) => {
                    if c.log.to_lowercase().contains("warning") {
                        failures.push(format!("{} compute_{arch}: warnings are errors:\n{}", s.file, c.log));
                    }
                    let entries = ptx_entries(&String::from_utf8_lossy(&c.image));
                    for k in kernel_names(s.src) {
                        if !entries.contains(&k) {
                            failures.push(format!("{} compute_{arch}: kernel {k} missing from the PTX (not extern \"C\"?)", s.file));
                        }
                    }
                    if entries.is_empty() {
                        failures.push(format!("{} compute_{arch}: no kernel in the PTX", s.file));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn kernel_names_follow_the_convention() {
    // <op>_<fwd|bwd>_<dtype>[_v<N>] (DESIGN.md convention 1), on the names in the PTX (macros expanded).
    if !nvrtc_available("kernel names") {
        return;
    }
    for s in SOURCES {
        let c = nvrtc::compile_raw(s.family, s.src, &nvrtc::options("compute_90"), false).unwrap_or_else(|e| panic!("{e}"));
        for k in ptx_entries(&String::from_utf8_lossy(&c.image)) {
            let parts: Vec<&str> = k.split('_').collect();
            let dir = parts.iter().position(|p| *p == "fwd" || *p == "bwd");
            let ok = dir.is_some_and(|i| {
                i >= 1
                    && i + 1 < parts.len()
                    && ["f32", "f16", "bf16", "i32", "u8"].contains(&parts[i + 1])
                    && (i + 2 == parts.len() || (i + 3 == parts.len() && parts[i + 2].starts_with('v') && parts[i + 2][1..].parse::<u32>().is_ok()))
            });
            assert!(ok, "{}: kernel '{k}' does not follow <op>_<fwd|bwd>_<dtype>[_v<N>]", s.file);
        }
    }
}

#[test]
fn ptxas_report_has_no_spills_and_fits_the_budget() {
    if !nvrtc_available("ptxas report") {
        return;
    }
    let report = ptxas::report_all(90).unwrap_or_else(|e| panic!("{e}"));
    for s in SOURCES {
        let c = nvrtc::compile_raw(s.family, s.src, &nvrtc::options("compute_90"), false).unwrap_or_else(|e| panic!("{e}"));
        for k in ptx_entries(&String::from_utf8_lossy(&c.image)) {
            assert!(report.contains_key(&k), "ptxas reported nothing for kernel {k}");
        }
    }
    if std::env::var("AURAL_WRITE_PTXAS_BUDGET").as_deref() == Ok("1") {
        let (ma, mi) = libs::nvrtc_version().unwrap();
        let text = format!(
            "# ptxas -v budget per kernel (sm_90): the ceiling each kernel must stay within.\n\
             # Written by AURAL_WRITE_PTXAS_BUDGET=1 cargo test -p aural-runtime --test nvrtc_gate; review diffs.\n\
             # nvrtc {ma}.{mi}\n\n{}",
            toml::to_string(&report).unwrap()
        );
        std::fs::write(ptxas::budget_path(), text).unwrap();
        eprintln!("wrote {}", ptxas::budget_path().display());
    }
    let budget = ptxas::read_budget().unwrap_or_else(|e| panic!("{e}"));
    // Register and shared-memory ceilings hold for the compiler they were measured with.
    let same_compiler = ptxas::budget_nvrtc_version() == libs::nvrtc_version();
    if !same_compiler {
        eprintln!("budget measured with NVRTC {:?}, this is {:?}: checking spills only", ptxas::budget_nvrtc_version(), libs::nvrtc_version());
    }
    let mut bad = Vec::new();
    for (k, u) in &report {
        if u.spill_stores > 0 || u.spill_loads > 0 {
            bad.push(format!("{k}: spills ({} bytes stores, {} bytes loads)", u.spill_stores, u.spill_loads));
        }
        match budget.get(k) {
            None => bad.push(format!("{k}: not in kernels/ptxas-budget.toml (regenerate with AURAL_WRITE_PTXAS_BUDGET=1)")),
            Some(b) if same_compiler => {
                if u.registers > b.registers || u.smem > b.smem || u.stack > b.stack {
                    bad.push(format!(
                        "{k}: uses {} registers / {} B smem / {} B stack, budget {} / {} / {}",
                        u.registers, u.smem, u.stack, b.registers, b.smem, b.stack
                    ));
                }
            }
            Some(_) => {}
        }
    }
    for k in budget.keys() {
        if !report.contains_key(k) {
            bad.push(format!("{k}: in the budget table but no such kernel (remove it)"));
        }
    }
    println!("{:<32} {:>5} {:>7} {:>6} {:>6}", "kernel (sm_90)", "regs", "smem", "stack", "spill");
    for (k, u) in &report {
        println!("{k:<32} {:>5} {:>7} {:>6} {:>6}", u.registers, u.smem, u.stack, u.spill_stores + u.spill_loads);
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
