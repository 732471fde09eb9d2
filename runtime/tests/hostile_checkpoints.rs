//! Hostile checkpoint files: a safetensors header that claims more than the file holds (a 100 GB
//! tensor, a header length past the end, out-of-range or overlapping offsets), a dtype that does not
//! match the shape, and a sharded index nested 100 000 deep. Each is a clear error naming the file
//! (and the tensor), with nothing allocated from the header's claims and no panic or stack overflow.

use aural_runtime::safetensors_io::{load, load_checkpoint_dir};

/// A fresh directory, removed when the returned guard drops (also when the test fails).
fn tmp(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("aural-hostile-{name}-")).tempdir().unwrap()
}

/// A safetensors file from a raw header (JSON text) and data bytes.
fn raw(header: &str, data: &[u8]) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

/// The error of loading `bytes` from a file `name`, which must name the file and contain every `want`.
fn load_err(name: &str, bytes: &[u8], want: &[&str]) -> String {
    let dir = tmp(name);
    let d = dir.path();
    let p = d.join("model.safetensors");
    std::fs::write(&p, bytes).unwrap();
    let e = load(&p).err().unwrap_or_else(|| panic!("{name}: a hostile file loaded")).to_string();
    assert!(e.contains(&p.display().to_string()), "{name}: the error does not name the file: {e}");
    for w in want {
        assert!(e.contains(w), "{name}: the error lacks '{w}': {e}");
    }
    // The directory loader reports it the same way.
    let e2 = load_checkpoint_dir(&d).err().unwrap().to_string();
    assert_eq!(e, e2);
    e
}

#[test]
fn a_well_formed_file_loads() {
    // The control: the same builder makes a file that loads, with the values it holds.
    let dir = tmp("ok");
    let d = dir.path();
    let p = d.join("model.safetensors");
    let data: Vec<u8> = [1.0f32, 2.0, 3.0].iter().flat_map(|x| x.to_le_bytes()).chain([0u8, 0x3c]).collect();
    let h = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"h":{"dtype":"F16","shape":[1],"data_offsets":[12,14]},"__metadata__":{"format":"pt"}}"#;
    std::fs::write(&p, raw(h, &data)).unwrap();
    let t = load(&p).unwrap();
    assert_eq!(t["w"].to_vec().unwrap(), vec![1.0, 2.0, 3.0]);
    assert_eq!(t["h"].to_vec().unwrap(), vec![1.0]);
}

#[test]
fn a_100_gb_tensor_is_refused_before_any_allocation() {
    // Shape and offsets agree (25e9 f32 = 100 GB); the file holds 16 bytes of data.
    let h = r#"{"huge":{"dtype":"F32","shape":[25000000000],"data_offsets":[0,100000000000]}}"#;
    load_err("huge", &raw(h, &[0; 16]), &["'huge'", "100000000000", "16 bytes of data"]);
    // A shape whose size overflows 64 bits.
    let h = r#"{"ovf":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#;
    load_err("overflow", &raw(h, &[0; 8]), &["'ovf'", "overflows"]);
}

#[test]
fn a_header_longer_than_the_file() {
    let mut b = (1u64 << 40).to_le_bytes().to_vec();
    b.extend_from_slice(br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#);
    load_err("header_len", &b, &["header length is 1099511627776 bytes", "only 54 bytes follow"]);
    // u64::MAX (wraps usize arithmetic if added to anything unchecked).
    let mut b = u64::MAX.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    load_err("header_max", &b, &["header length is 18446744073709551615"]);
    load_err("short", b"\x10\0\0", &["too short"]);
}

#[test]
fn out_of_range_and_overlapping_offsets() {
    let h = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[250],"data_offsets":[16,1016]}}"#;
    load_err("range", &raw(h, &[0; 24]), &["'b'", "[16, 1016]", "24 bytes of data"]);
    let h = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#;
    load_err("overlap", &raw(h, &[0; 24]), &["'b'", "overlaps tensor 'a'"]);
    // Reversed offsets.
    let h = r#"{"r":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#;
    load_err("reversed", &raw(h, &[0; 8]), &["'r'", "[8, 4]"]);
}

#[test]
fn a_dtype_or_shape_that_does_not_match_the_data() {
    // 3 f32 are 12 bytes; the offsets span 16.
    let h = r#"{"m":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#;
    load_err("mismatch", &raw(h, &[0; 16]), &["'m'", "12 bytes", "span 16"]);
    // The same bytes called F16.
    let h = r#"{"m":{"dtype":"F16","shape":[2,2],"data_offsets":[0,16]}}"#;
    load_err("mismatch16", &raw(h, &[0; 16]), &["'m'", "8 bytes", "span 16"]);
    let h = r#"{"q":{"dtype":"Q4_K","shape":[2],"data_offsets":[0,1]}}"#;
    load_err("dtype", &raw(h, &[0; 1]), &["'q'", "Q4_K", "cannot load"]);
    let h = r#"{"s":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#;
    load_err("negative", &raw(h, &[0; 4]), &["'s'", "no shape"]);
}

fn deep(n: usize) -> String {
    "[".repeat(n) + &"]".repeat(n)
}

#[test]
fn json_nested_100000_deep() {
    // In a safetensors header.
    load_err("deep_header", &raw(&deep(100_000), &[]), &["not a JSON object"]);
    // As a sharded checkpoint's index (and inside its weight_map).
    for (name, text) in [("deep_index", deep(100_000)), ("deep_map", format!(r#"{{"weight_map": {{"a": {}}}}}"#, deep(100_000)))] {
        let dir = tmp(name);
        let d = dir.path();
        let index = d.join("model.safetensors.index.json");
        std::fs::write(&index, text).unwrap();
        let e = load_checkpoint_dir(&d).err().unwrap().to_string();
        assert!(e.contains(&index.display().to_string()) && e.contains("not a safetensors index"), "{e}");
    }
}

#[test]
fn an_index_naming_files_outside_the_directory() {
    for shard in ["../model.safetensors", "/etc/passwd", "..", "."] {
        let dir = tmp("escape");
        let d = dir.path();
        let index = d.join("model.safetensors.index.json");
        std::fs::write(&index, format!(r#"{{"weight_map": {{"w": "{shard}"}}}}"#)).unwrap();
        let e = load_checkpoint_dir(&d).err().unwrap().to_string();
        assert!(e.contains(&index.display().to_string()) && e.contains("'w'") && e.contains("not a file name inside"), "{shard}: {e}");
    }
}
