//! A WAV file decoded in memory (`read_wav_bytes`: RIFF chunks, formats, the header's claims).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = aural_models::audio::read_wav_bytes(Path::new("fuzz.wav"), data) {
        // Decoded samples never outnumber the file's bytes (8-bit PCM is the densest format).
        assert!(a.channels.iter().map(Vec::len).sum::<usize>() <= data.len());
    }
});
