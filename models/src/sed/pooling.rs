//! Clip-level (weak) predictions from frame-level ones.
//!
//! - [`attention_pool`] (DESED baseline CRNN): weak[c] = Σ_t strong[t, c] · a[t, c] / Σ_t a[t, c] with
//!   a = clamp(softmax(att), 1e-7, 1), att the attention head's logits (frames, classes). The softmax
//!   axis is a choice: the DESED baseline CRNN uses `nn.Softmax(dim=-1)` — over the **classes** of
//!   each frame — while some derived systems (and the AST-SED brief) normalise over **time**
//!   (`dim=1`); both are offered ([`SoftmaxAxis`]). Note: the clamp keeps every weight ≥ 1e-7, so the
//!   pooled value is never a 0/0.
//! - [`linear_softmax_pool`] (cai525/Transformer4SED's AST-SED): weak[c] = Σ_t p² / Σ_t p (0 when Σ p = 0).
//!
//! Softmax in f64 with the maximum subtracted; the result is f32.

use super::{FrameScores, Result, SedError};

/// The axis of the attention softmax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoftmaxAxis {
    /// Over the frames of each class (`nn.Softmax(dim=1)` on (B, T, C)).
    Time,
    /// Over the classes of each frame (`nn.Softmax(dim=-1)`, the DESED baseline CRNN).
    Classes,
}

/// Attention pooling (see the module doc): `strong` (sigmoid outputs) and `att` (logits), both
/// (frames, classes) → one value per class.
pub fn attention_pool(strong: &FrameScores, att: &FrameScores, axis: SoftmaxAxis) -> Result<Vec<f32>> {
    if strong.frames != att.frames || strong.classes != att.classes {
        return Err(SedError::Invalid(format!("strong is {}×{} but attention logits are {}×{}", strong.frames, strong.classes, att.frames, att.classes)));
    }
    let (t, c) = (att.frames, att.classes);
    // a[t, c] after softmax and clamp.
    let mut a = vec![0f64; t * c];
    match axis {
        SoftmaxAxis::Classes => {
            for f in 0..t {
                let row = &att.data[f * c..(f + 1) * c];
                let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
                for k in 0..c {
                    a[f * c + k] = ((row[k] as f64 - m).exp() / s).clamp(1e-7, 1.0);
                }
            }
        }
        SoftmaxAxis::Time => {
            for k in 0..c {
                let m = (0..t).fold(f64::NEG_INFINITY, |m, f| m.max(att.get(f, k) as f64));
                let s: f64 = (0..t).map(|f| (att.get(f, k) as f64 - m).exp()).sum();
                for f in 0..t {
                    a[f * c + k] = ((att.get(f, k) as f64 - m).exp() / s).clamp(1e-7, 1.0);
                }
            }
        }
    }
    Ok((0..c)
        .map(|k| {
            let num: f64 = (0..t).map(|f| strong.get(f, k) as f64 * a[f * c + k]).sum();
            let den: f64 = (0..t).map(|f| a[f * c + k]).sum();
            if den > 0.0 {
                (num / den) as f32
            } else {
                0.0
            }
        })
        .collect())
}

/// Linear-softmax pooling: weak[c] = Σ_t p[t, c]² / Σ_t p[t, c].
pub fn linear_softmax_pool(strong: &FrameScores) -> Vec<f32> {
    (0..strong.classes)
        .map(|k| {
            let (mut num, mut den) = (0f64, 0f64);
            for f in 0..strong.frames {
                let p = strong.get(f, k) as f64;
                num += p * p;
                den += p;
            }
            if den > 0.0 {
                (num / den) as f32
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sed_attention_pool_time_axis() {
        // Uniform logits: the weak value is the mean over time.
        let strong = FrameScores::from_columns(&[vec![0.2, 0.4, 0.9], vec![1.0, 0.0, 0.5]]).unwrap();
        let att = FrameScores::new(3, 2, vec![0.0; 6]).unwrap();
        let w = attention_pool(&strong, &att, SoftmaxAxis::Time).unwrap();
        assert!((w[0] - 0.5).abs() < 1e-6 && (w[1] - 0.5).abs() < 1e-6, "{w:?}");
        // One dominant frame: its value.
        let att = FrameScores::from_columns(&[vec![0.0, 50.0, 0.0], vec![50.0, 0.0, 0.0]]).unwrap();
        let w = attention_pool(&strong, &att, SoftmaxAxis::Time).unwrap();
        assert!((w[0] - 0.4).abs() < 1e-5 && (w[1] - 1.0).abs() < 1e-5, "{w:?}");
    }

    #[test]
    fn sed_attention_pool_class_axis_matches_torch_formula() {
        // torch: sof = softmax(att, -1).clamp(1e-7, 1); weak = (strong*sof).sum(0)/sof.sum(0)
        let strong = FrameScores::new(2, 2, vec![0.1, 0.7, 0.9, 0.3]).unwrap();
        let att = FrameScores::new(2, 2, vec![1.0, 0.0, -1.0, 2.0]).unwrap();
        let w = attention_pool(&strong, &att, SoftmaxAxis::Classes).unwrap();
        let sm = |a: f64, b: f64| (a.exp() / (a.exp() + b.exp()), b.exp() / (a.exp() + b.exp()));
        let (a00, a01) = sm(1.0, 0.0);
        let (a10, a11) = sm(-1.0, 2.0);
        let w0 = (0.1 * a00 + 0.9 * a10) / (a00 + a10);
        let w1 = (0.7 * a01 + 0.3 * a11) / (a01 + a11);
        assert!((w[0] as f64 - w0).abs() < 1e-6 && (w[1] as f64 - w1).abs() < 1e-6, "{w:?} vs {w0} {w1}");
        assert!(attention_pool(&strong, &FrameScores::new(1, 2, vec![0.0; 2]).unwrap(), SoftmaxAxis::Time).is_err());
    }

    #[test]
    fn sed_linear_softmax_pool() {
        let s = FrameScores::from_columns(&[vec![0.5, 0.5], vec![0.0, 0.0], vec![1.0, 0.0]]).unwrap();
        assert_eq!(linear_softmax_pool(&s), vec![0.5, 0.0, 1.0]);
    }
}
