//! From frame scores to events: median filter, per-class thresholds, runs of active frames, frame →
//! seconds, and DCASE TSV / JSON output.
//!
//! ## Frame geometry of AST-SED ([`FrameGeometry::ast_sed`])
//! The AST front end makes fbank frames every 10 ms (25 ms windows) and pads/truncates the clip to
//! `max_length` = 1024 frames, i.e. 1024 · 10 ms = 10.24 s of input. Patches are 16 frames wide with
//! time stride 10, so there are T′ = (1024 − 16) / 10 + 1 = 101 patch columns (patch k starts at
//! fbank frame 10k). The local GRU decoder upsamples them ×10 (nearest neighbour), giving
//! T′ · 10 = 1010 output frames. Following the brief of issue #6, the 1010 output frames are taken to
//! cover the whole 10.24 s input uniformly:
//!
//! hop = max_length · frame_shift / (T′ · upsample) = 1024 · 0.010 s / 1010 = 0.0101386… s,
//! frame f ↔ [f · hop, (f + 1) · hop).
//!
//! (The other reading — one output frame per 10 ms of patch stride, hop = stride · shift / upsample =
//! exactly 0.010 s, covering 10.1 s — is `FrameGeometry::new(0.010)`.) A 10 s clip has 998 real fbank
//! frames; the rest is padding, so [`PostProcess::clip_duration`] clips offsets to the audio's length
//! and drops events that start after it.
//!
//! ## Decoding (DESED baseline `batched_decode_preds` / `decode_strong`)
//! A frame is active for class c when its (filtered) score is strictly greater than the class's
//! threshold (default 0.5). Each maximal run of active frames first … last is one event with
//! onset = first · hop and offset = (last + 1) · hop (plus the geometry's offset). The median filter
//! runs on the scores before thresholding ([`MedianOn::Scores`], DESED 2023+) or on the 0/1
//! decisions after it ([`MedianOn::Binary`], DESED 2021–2022).

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::median::median_filter;
use super::{FrameScores, Result, SedError};

/// Maps output frames to seconds: frame f starts at `offset_s + f · hop_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameGeometry {
    pub hop_s: f64,
    pub offset_s: f64,
}

impl FrameGeometry {
    /// Frames of `hop_s` seconds starting at 0.
    pub fn new(hop_s: f64) -> FrameGeometry {
        FrameGeometry { hop_s, offset_s: 0.0 }
    }

    /// The AST-SED output frames (see the module doc): `max_length` fbank frames of `frame_shift_s`,
    /// patches `patch` wide with time stride `tstride`, upsampled ×`upsample`:
    /// hop = max_length · frame_shift / (((max_length − patch) / tstride + 1) · upsample).
    pub fn ast_sed(max_length: usize, frame_shift_s: f64, patch: usize, tstride: usize, upsample: usize) -> FrameGeometry {
        let t_patches = (max_length - patch) / tstride + 1;
        FrameGeometry::new(max_length as f64 * frame_shift_s / (t_patches * upsample) as f64)
    }

    /// AST-base (1024 frames, 10 ms, patch 16, stride 10) with the ×10 local GRU decoder:
    /// 1010 frames over 10.24 s.
    pub fn ast_sed_default() -> FrameGeometry {
        FrameGeometry::ast_sed(1024, 0.010, 16, 10, 10)
    }

    /// Start time of frame `f` in seconds.
    pub fn time(&self, f: usize) -> f64 {
        self.offset_s + f as f64 * self.hop_s
    }

    /// An odd number of frames closest to `seconds` (at least 1): a median window given in seconds.
    pub fn window_frames(&self, seconds: f64) -> usize {
        let n = (seconds / self.hop_s).round().max(1.0) as usize;
        if n % 2 == 0 {
            n + 1
        } else {
            n
        }
    }
}

/// Where the median filter runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MedianOn {
    /// On the scores, before thresholding (DESED baseline 2023+).
    #[default]
    Scores,
    /// On the 0/1 decisions after thresholding (DESED baseline 2021–2022: a majority vote).
    Binary,
}

/// Post-processing settings for one model's output.
#[derive(Debug, Clone, PartialEq)]
pub struct PostProcess {
    /// Class labels, one per score column.
    pub labels: Vec<String>,
    /// Per-class thresholds (active when score > threshold).
    pub thresholds: Vec<f32>,
    /// Per-class median windows in frames (1 = none).
    pub median_windows: Vec<usize>,
    pub median_on: MedianOn,
    pub geometry: FrameGeometry,
    /// Length of the real audio: offsets are clipped to it, events starting at or after it dropped.
    pub clip_duration: Option<f64>,
}

impl PostProcess {
    /// Threshold 0.5 and no median filter for every class; AST-SED geometry.
    pub fn new(labels: &[&str]) -> PostProcess {
        let n = labels.len();
        PostProcess {
            labels: labels.iter().map(|s| s.to_string()).collect(),
            thresholds: vec![0.5; n],
            median_windows: vec![1; n],
            median_on: MedianOn::Scores,
            geometry: FrameGeometry::ast_sed_default(),
            clip_duration: None,
        }
    }

    fn check(&self, scores: &FrameScores) -> Result<()> {
        let c = scores.classes;
        for (what, n) in [("labels", self.labels.len()), ("thresholds", self.thresholds.len()), ("median windows", self.median_windows.len())] {
            if n != c {
                return Err(SedError::Invalid(format!("{n} {what} for {c} score classes")));
            }
        }
        Ok(())
    }

    /// Scores → events of clip `filename` (median filter, thresholds, runs, seconds, clip).
    pub fn events(&self, filename: &str, scores: &FrameScores) -> Result<Vec<Event>> {
        self.check(scores)?;
        let active = match self.median_on {
            MedianOn::Scores => binarize(&median_filter(scores, &self.median_windows)?, &self.thresholds),
            MedianOn::Binary => median_filter(&binarize(scores, &self.thresholds), &self.median_windows)?,
        };
        let mut ev = decode_events(filename, &active, &self.labels, 0.5, &self.geometry)?;
        if let Some(d) = self.clip_duration {
            ev.retain(|e| e.onset < d);
            for e in &mut ev {
                e.offset = e.offset.min(d);
            }
        }
        Ok(ev)
    }
}

/// 1.0 where score > threshold of its class, else 0.0.
pub fn binarize(scores: &FrameScores, thresholds: &[f32]) -> FrameScores {
    let c = scores.classes;
    let data = scores.data.iter().enumerate().map(|(i, &v)| if v > thresholds[i % c] { 1.0 } else { 0.0 }).collect();
    FrameScores { frames: scores.frames, classes: c, data }
}

/// One detected event (DCASE columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub filename: String,
    pub onset: f64,
    pub offset: f64,
    pub event_label: String,
}

/// Runs of frames with score > `threshold` (one threshold for all classes; apply per-class
/// thresholds with [`binarize`] first) → events, class by class in column order, onsets ascending.
pub fn decode_events(filename: &str, scores: &FrameScores, labels: &[String], threshold: f32, g: &FrameGeometry) -> Result<Vec<Event>> {
    if labels.len() != scores.classes {
        return Err(SedError::Invalid(format!("{} labels for {} score classes", labels.len(), scores.classes)));
    }
    let mut out = Vec::new();
    for (c, label) in labels.iter().enumerate() {
        let mut start: Option<usize> = None;
        for t in 0..=scores.frames {
            let on = t < scores.frames && scores.get(t, c) > threshold;
            match (on, start) {
                (true, None) => start = Some(t),
                (false, Some(s)) => {
                    out.push(Event { filename: filename.to_string(), onset: g.time(s), offset: g.time(t), event_label: label.clone() });
                    start = None;
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Writes the DCASE TSV: header `filename\tonset\toffset\tevent_label`, then one event per line,
/// times with 3 decimals.
pub fn write_tsv<W: Write>(mut w: W, events: &[Event]) -> Result<()> {
    writeln!(w, "filename\tonset\toffset\tevent_label")?;
    for e in events {
        writeln!(w, "{}\t{:.3}\t{:.3}\t{}", e.filename, e.onset, e.offset, e.event_label)?;
    }
    Ok(())
}

/// [`write_tsv`] into a string.
pub fn events_to_tsv(events: &[Event]) -> String {
    let mut v = Vec::new();
    write_tsv(&mut v, events).expect("writing to a Vec cannot fail");
    String::from_utf8(v).expect("TSV is UTF-8")
}

/// A JSON array of `{"filename", "onset", "offset", "event_label"}` objects (times rounded to 3
/// decimals, as in the TSV), pretty-printed.
pub fn events_to_json(events: &[Event]) -> Result<String> {
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    let rounded: Vec<Event> = events.iter().map(|e| Event { onset: r(e.onset), offset: r(e.offset), ..e.clone() }).collect();
    Ok(serde_json::to_string_pretty(&rounded)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g10() -> FrameGeometry {
        FrameGeometry::new(0.01)
    }

    #[test]
    fn sed_ast_geometry() {
        let g = FrameGeometry::ast_sed_default();
        assert!((g.hop_s - 10.24 / 1010.0).abs() < 1e-15);
        assert!((g.time(1010) - 10.24).abs() < 1e-12);
        assert_eq!(FrameGeometry::ast_sed(1024, 0.01, 16, 10, 1).hop_s, 10.24 / 101.0);
        assert_eq!(g10().window_frames(0.07), 7);
        assert_eq!(g10().window_frames(0.08), 9);
        assert_eq!(g10().window_frames(0.0), 1);
    }

    #[test]
    fn sed_events_at_clip_start_and_end() {
        // class 0 active at frames 0..=2, class 1 at 7..=9 (the last frame).
        let s = FrameScores::from_columns(&[vec![0.9, 0.8, 0.7, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], vec![0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.6, 0.9, 0.99]])
            .unwrap();
        let mut pp = PostProcess::new(&["Dog", "Cat"]);
        pp.geometry = g10();
        let ev = pp.events("a.wav", &s).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!((ev[0].event_label.as_str(), ev[0].onset, ev[0].offset), ("Dog", 0.0, 0.03));
        assert_eq!((ev[1].event_label.as_str(), ev[1].onset, ev[1].offset), ("Cat", 0.07, 0.1));
        // Clipping to the real audio length.
        pp.clip_duration = Some(0.085);
        let ev = pp.events("a.wav", &s).unwrap();
        assert_eq!(ev[1].offset, 0.085);
        pp.clip_duration = Some(0.07);
        assert_eq!(pp.events("a.wav", &s).unwrap().len(), 1);
    }

    #[test]
    fn sed_median_removes_blip_before_events() {
        let s = FrameScores::from_columns(&[vec![0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.7, 0.8, 0.9, 0.8, 0.1]]).unwrap();
        let mut pp = PostProcess::new(&["Speech"]);
        pp.geometry = g10();
        assert_eq!(pp.events("x", &s).unwrap().len(), 2, "unfiltered: blip + event");
        for on in [MedianOn::Scores, MedianOn::Binary] {
            pp.median_windows = vec![3];
            pp.median_on = on;
            let ev = pp.events("x", &s).unwrap();
            assert_eq!(ev.len(), 1, "{on:?}");
            assert!((ev[0].onset - 0.06).abs() < 1e-12 && (ev[0].offset - 0.10).abs() < 1e-12, "{on:?}: {ev:?}");
        }
    }

    #[test]
    fn sed_per_class_thresholds_and_strict_comparison() {
        let s = FrameScores::from_columns(&[vec![0.5, 0.6, 0.6, 0.5], vec![0.3, 0.35, 0.35, 0.2]]).unwrap();
        let mut pp = PostProcess::new(&["Blender", "Frying"]);
        pp.geometry = g10();
        let ev = pp.events("f", &s).unwrap();
        assert_eq!(ev.len(), 1, "0.5 is not > 0.5; class 1 below 0.5");
        assert_eq!((ev[0].onset, ev[0].offset), (0.01, 0.03));
        pp.thresholds = vec![0.65, 0.3];
        let ev = pp.events("f", &s).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].event_label.as_str(), ev[0].onset, ev[0].offset), ("Frying", 0.01, 0.03));
        pp.thresholds = vec![0.5];
        assert!(pp.events("f", &s).is_err());
    }

    #[test]
    fn sed_tsv_and_json() {
        let ev = vec![
            Event { filename: "a.wav".into(), onset: 0.0, offset: 1.23456, event_label: "Dog".into() },
            Event { filename: "a.wav".into(), onset: 9.87654, offset: 10.0, event_label: "Alarm_bell_ringing".into() },
        ];
        let tsv = events_to_tsv(&ev);
        assert_eq!(tsv, "filename\tonset\toffset\tevent_label\na.wav\t0.000\t1.235\tDog\na.wav\t9.877\t10.000\tAlarm_bell_ringing\n");
        assert_eq!(events_to_tsv(&[]), "filename\tonset\toffset\tevent_label\n");
        let js = events_to_json(&ev).unwrap();
        let back: Vec<Event> = serde_json::from_str(&js).unwrap();
        assert_eq!(back[0].offset, 1.235);
        assert_eq!(back[1].event_label, "Alarm_bell_ringing");
        assert!(js.contains("\"event_label\": \"Dog\""));
    }
}
