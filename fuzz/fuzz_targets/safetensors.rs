//! A safetensors file (header checks, offsets, dtypes) and, when the input is UTF-8, a sharded
//! checkpoint's `model.safetensors.index.json`.
#![no_main]

use aural_runtime::safetensors_io::{load_bytes, parse_index};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = load_bytes(data) {
        // Whatever loads holds at most the file's bytes (f16 stays 2 bytes, the rest become f32).
        let elems: usize = tensors.values().map(|t| t.numel()).sum();
        assert!(elems <= data.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_index(text);
    }
});
