//! A `config.json` nested 100 000 deep (arrays and objects), for every model kind: a clear error
//! naming the file, no stack overflow, no panic.

use std::path::Path;

use aural_models::ast::AstConfig;
use aural_models::ast_sed::SedConfig;
use aural_models::m2d::M2dConfig;
use aural_models::separator::SeparatorConfig;

/// A fresh directory, removed when the returned guard drops (also when the test fails).
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-hostile-config-{name}-")).tempdir().unwrap()
}

/// Loads a config file; its error message, if any.
type Loader = fn(&Path) -> Option<String>;

#[test]
fn a_config_nested_100000_deep() {
    let n = 100_000;
    let arrays = "[".repeat(n) + &"]".repeat(n);
    // Each kind with a field it knows (an unknown one is skipped, however deep, without recursion).
    let loaders: [(&str, &str, Loader); 4] = [
        ("ast", "hidden_size", |p| AstConfig::from_file(p).err().map(|e| e.to_string())),
        ("ast_sed", "classes", |p| SedConfig::from_file(p).err().map(|e| e.to_string())),
        ("m2d", "architecture", |p| M2dConfig::from_file(p).err().map(|e| e.to_string())),
        ("separator", "classes", |p| SeparatorConfig::from_file(p).err().map(|e| e.to_string())),
    ];
    for (kind, field, from_file) in loaders {
        let objects = format!(r#"{{"{field}":"#).repeat(n) + "0" + &"}".repeat(n);
        let in_field = format!(r#"{{"{field}": {arrays}}}"#);
        for (shape, text) in [("arrays", &arrays), ("objects", &objects), ("in_field", &in_field)] {
            let dir = tmp(&format!("{kind}-{shape}"));
            let p = dir.path().join("config.json");
            std::fs::write(&p, text).unwrap();
            let e = from_file(&p).unwrap_or_else(|| panic!("{kind}/{shape}: a config nested {n} deep loaded"));
            assert!(e.contains(&p.display().to_string()), "{kind}/{shape}: the error does not name the file: {e}");
            // serde_json stops at 128 levels ("recursion limit exceeded"), or earlier at a wrong type.
            assert!(e.contains("not a valid"), "{kind}/{shape}: {e}");
        }
    }
}

/// Configs that passed validation and then overflowed (a panic in debug builds, a wrapped size in
/// release) in what is computed from them: found with the `configs` fuzz target's harness
/// (fuzz/corpus/configs/min_*.json). Each is now an error of `validate`.
#[test]
fn fuzz_findings_are_errors() {
    let sed = |text: &str| SedConfig::from_json(text).unwrap().validate().unwrap_err().to_string();
    let sep = |text: &str| serde_json::from_str::<SeparatorConfig>(text).unwrap().validate().unwrap_err().to_string();
    // frames() = T′ · upsample overflowed.
    let e = sed(include_str!("../../fuzz/corpus/configs/min_ast_sed_upsample_overflow.json"));
    assert!(e.contains("upsample 18446744073709551615") && e.contains("output frames"), "{e}");
    // label_len == target_sources_num × classes overflowed.
    let e = sep(include_str!("../../fuzz/corpus/configs/min_separator_label_len_overflow.json"));
    assert!(e.contains("target_sources_num 9223372036854775808") && e.contains("at most"), "{e}");
    // inject tokens == grid[0] × grid[1] overflowed.
    let e = sep(include_str!("../../fuzz/corpus/configs/min_separator_inject_grid_overflow.json"));
    assert!(e.contains("inject") && e.contains("8589934592"), "{e}");
    // net_input_channels() = input_channels + 1 (the iterative model) overflowed.
    let e = sep(include_str!("../../fuzz/corpus/configs/min_separator_input_channels_overflow.json"));
    assert!(e.contains("input_channels 18446744073709551615") && e.contains("at most"), "{e}");
}
