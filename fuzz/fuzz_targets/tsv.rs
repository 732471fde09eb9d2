//! Every TSV reader on the same text: strong labels, durations, score tables, weak labels.
#![no_main]

use std::path::Path;

use aural_models::sed::metrics::io::{parse_durations, parse_score_table, parse_strong};
use aural_trainer::data::parse_weak;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = Path::new("fuzz.tsv");
    let strong = parse_strong(p, text);
    let durations = parse_durations(p, text);
    let _ = parse_score_table(p, text);
    let classes: Vec<String> = ["Speech", "Dog", "Cat", "Alarm_bell_ringing"].iter().map(|s| s.to_string()).collect();
    let _ = parse_weak(p, text, &classes);
    // The evaluation set from a reference and durations that both parsed (the same text).
    if let (Ok(s), Ok(d)) = (strong, durations) {
        let _ = aural_models::sed::metrics::io::ground_truth(&s, &d, p, None, &[]);
    }
});
