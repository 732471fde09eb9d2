//! SED post-processing: from frame-level class scores to events (DCASE task 4 / DESED conventions).
//!
//! - [`median`]: per-class median filter over frames, exactly `scipy.ndimage.median_filter(x,
//!   (window, 1))` with mode `'reflect'` (the DESED baseline's call), window configurable per class.
//! - [`events`]: per-class thresholds (default 0.5, active when score > threshold as DESED), runs
//!   of active frames merged into events (onset = first·hop, offset = (last + 1)·hop), the
//!   frame → seconds geometry of AST-SED ([`FrameGeometry`]), DCASE TSV and JSON output.
//! - [`pooling`]: the weak (clip) head's pooling helpers: attention pooling (DESED CRNN) and linear-
//!   softmax pooling (cai525/Transformer4SED).
//!
//! Scores are [`FrameScores`]: (frames, classes) row-major f32, one clip.

pub mod events;
pub mod median;
pub mod metrics;
pub mod pooling;

pub use events::{decode_events, events_to_json, events_to_tsv, write_tsv, Event, FrameGeometry, MedianOn, PostProcess};
pub use median::median_filter;
pub use pooling::{attention_pool, linear_softmax_pool, SoftmaxAxis};

use aural_runtime::Tensor;

/// Errors of SED post-processing.
#[derive(Debug, thiserror::Error)]
pub enum SedError {
    /// Inconsistent sizes or settings; the message says which.
    #[error("sed: {0}")]
    Invalid(String),
    #[error("sed: {0}")]
    Runtime(#[from] aural_runtime::Error),
    #[error("sed: {0}")]
    Io(#[from] std::io::Error),
    #[error("sed: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, SedError>;

/// Frame-level scores of one clip: `data[t·classes + c]`, t < frames, c < classes.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameScores {
    pub frames: usize,
    pub classes: usize,
    pub data: Vec<f32>,
}

impl FrameScores {
    pub fn new(frames: usize, classes: usize, data: Vec<f32>) -> Result<FrameScores> {
        if data.len() != frames * classes {
            return Err(SedError::Invalid(format!("{} scores for {frames} frames × {classes} classes", data.len())));
        }
        Ok(FrameScores { frames, classes, data })
    }

    /// From a (T, C) or (1, T, C) tensor on any device (copied to the host).
    pub fn from_tensor(t: &Tensor) -> Result<FrameScores> {
        let s = t.shape();
        let (frames, classes) = match s {
            [f, c] => (*f, *c),
            [1, f, c] => (*f, *c),
            _ => return Err(SedError::Invalid(format!("scores must be (T, C) or (1, T, C), got {s:?}"))),
        };
        FrameScores::new(frames, classes, t.to_vec()?)
    }

    /// From per-class columns (`cols[c][t]`).
    pub fn from_columns(cols: &[Vec<f32>]) -> Result<FrameScores> {
        let classes = cols.len();
        let frames = cols.first().map_or(0, |c| c.len());
        if cols.iter().any(|c| c.len() != frames) {
            return Err(SedError::Invalid("columns of different lengths".into()));
        }
        let data = (0..frames).flat_map(|t| cols.iter().map(move |c| c[t])).collect();
        FrameScores::new(frames, classes, data)
    }

    pub fn get(&self, t: usize, c: usize) -> f32 {
        self.data[t * self.classes + c]
    }

    /// Class `c` over all frames.
    pub fn column(&self, c: usize) -> Vec<f32> {
        (0..self.frames).map(|t| self.get(t, c)).collect()
    }
}

/// The 10 DESED classes (DCASE 2022 task 4), in the order of the baseline's encoder.
pub const DESED_CLASSES: [&str; 10] =
    ["Alarm_bell_ringing", "Blender", "Cat", "Dishes", "Dog", "Electric_shaver_toothbrush", "Frying", "Running_water", "Speech", "Vacuum_cleaner"];
