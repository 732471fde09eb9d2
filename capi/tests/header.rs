//! include/aural.h is what cbindgen generates from src/lib.rs now (AURAL_WRITE_HEADER=1 rewrites it).

#[test]
fn the_committed_header_is_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut out = Vec::new();
    cbindgen::Builder::new().with_crate(dir).with_config(cfg).generate().expect("cbindgen").write(&mut out);
    let text = String::from_utf8(out).unwrap();
    let path = dir.join("include/aural.h");
    if std::env::var("AURAL_WRITE_HEADER").is_ok() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == text, "{} is out of date: run AURAL_WRITE_HEADER=1 cargo test -p aural-capi --test header", path.display());
    for f in ["aural_detector_load", "aural_detector_run", "aural_detection_event", "aural_ast_embed", "aural_last_error"] {
        assert!(text.contains(f), "{f}");
    }
}
