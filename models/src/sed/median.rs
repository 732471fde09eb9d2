//! Per-class median filter over frames, bit-exact with `scipy.ndimage.median_filter(x, size=(w, 1),
//! mode='reflect')` (the DESED baseline's post-processing), for any window w ≥ 1:
//!
//! - window of output frame t: input frames t − ⌊w/2⌋ … t − ⌊w/2⌋ + w − 1 (scipy's origin 0; for odd
//!   w the centred window t − w/2 … t + w/2);
//! - value: the element of rank ⌊w/2⌋ of the sorted window (the median for odd w; for even w scipy
//!   takes the upper of the two middle values — no averaging);
//! - outside the clip, mode 'reflect' (`d c b a | a b c d | d c b a`: the edge frame repeated),
//!   applied periodically when the window is longer than the clip.
//!
//! w = 0 or 1 leaves a class unchanged. Verified against scipy 1.17 by the golden fixture
//! `tests/golden/fixtures/sed.safetensors` (tests/golden/sed.py).

use super::{FrameScores, Result, SedError};

/// scipy's 'reflect' index for position `i` of a line of length `n` (n ≥ 1).
pub fn reflect_index(i: isize, n: usize) -> usize {
    let n = n as isize;
    let p = 2 * n;
    let m = i.rem_euclid(p);
    (if m >= n { p - 1 - m } else { m }) as usize
}

/// A value the median filter sorts: f32 frame scores, f64 score tables (the metrics).
pub trait MedianValue: Copy {
    fn total_order(&self, other: &Self) -> std::cmp::Ordering;
}

impl MedianValue for f32 {
    fn total_order(&self, other: &Self) -> std::cmp::Ordering {
        self.total_cmp(other)
    }
}

impl MedianValue for f64 {
    fn total_order(&self, other: &Self) -> std::cmp::Ordering {
        self.total_cmp(other)
    }
}

/// Median-filters one sequence with window `w` (scipy semantics above).
pub fn median_filter_1d<T: MedianValue>(x: &[T], w: usize) -> Vec<T> {
    let n = x.len();
    if w <= 1 || n == 0 {
        return x.to_vec();
    }
    let half = (w / 2) as isize;
    let mut buf = vec![x[0]; w];
    (0..n)
        .map(|t| {
            for (k, b) in buf.iter_mut().enumerate() {
                *b = x[reflect_index(t as isize - half + k as isize, n)];
            }
            let (_, m, _) = buf.select_nth_unstable_by(w / 2, |a, b| a.total_order(b));
            *m
        })
        .collect()
}

/// Filters every class c with its own window `windows[c]` (frames). `windows` has one entry per
/// class, or a single entry used for all classes.
pub fn median_filter(scores: &FrameScores, windows: &[usize]) -> Result<FrameScores> {
    let c = scores.classes;
    if windows.len() != c && windows.len() != 1 {
        return Err(SedError::Invalid(format!("{} median windows for {c} classes (give one per class, or one for all)", windows.len())));
    }
    let mut out = scores.clone();
    for k in 0..c {
        let w = if windows.len() == 1 { windows[0] } else { windows[k] };
        if w <= 1 {
            continue;
        }
        for (t, v) in median_filter_1d(&scores.column(k), w).into_iter().enumerate() {
            out.data[t * c + k] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sed_median_reflect_indices() {
        // n = 4, i = −5 … 9: … 3 | 3 2 1 0 | 0 1 2 3 | 3 2 1 0 | 0 1 …
        let got: Vec<usize> = (-5..10).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(got, vec![3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0, 1]);
        assert!((-7..7).all(|i| reflect_index(i, 1) == 0));
    }

    #[test]
    fn sed_median_removes_a_one_frame_blip_and_fills_a_one_frame_gap() {
        let x = [0.1, 0.1, 0.9, 0.1, 0.1, 0.8, 0.8, 0.2, 0.8, 0.8];
        let y = median_filter_1d(&x, 3);
        assert_eq!(y, vec![0.1, 0.1, 0.1, 0.1, 0.1, 0.8, 0.8, 0.8, 0.8, 0.8]);
    }

    #[test]
    fn sed_median_edges_repeat_the_edge_frame() {
        // Window 5 at t = 0 sees x[1], x[0], x[0], x[1], x[2] (reflect).
        let x = [0.9, 0.9, 0.1, 0.1, 0.1];
        let y = median_filter_1d(&x, 5);
        assert_eq!(y[0], 0.9);
        assert_eq!(y[4], 0.1);
        // An event at the clip start survives filtering.
        assert_eq!(median_filter_1d(&[0.9, 0.9, 0.1, 0.1, 0.1, 0.1], 3), vec![0.9, 0.9, 0.1, 0.1, 0.1, 0.1]);
    }

    #[test]
    fn sed_median_per_class_windows() {
        let s = FrameScores::from_columns(&[vec![0.0, 1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0, 0.0]]).unwrap();
        let y = median_filter(&s, &[1, 3]).unwrap();
        assert_eq!(y.column(0), vec![0.0, 1.0, 0.0, 0.0]);
        assert_eq!(y.column(1), vec![0.0, 0.0, 0.0, 0.0]);
        assert!(median_filter(&s, &[1, 3, 5]).is_err());
    }

    /// Golden values from scipy 1.17.1 (tests/golden/sed.py, numpy seed 0):
    /// ```python
    /// scipy.ndimage.median_filter(x[:, c], size=w, mode='reflect')  # per class c, window w
    /// scipy.ndimage.median_filter(x, (7, 1), mode='reflect')        # case b, the DESED call
    /// ```
    #[test]
    fn sed_median_matches_scipy_golden() {
        let f = aural_runtime::testing::fixture("sed.safetensors");
        for case in ["a", "b", "short"] {
            let x = &f[&format!("{case}.x")];
            let s = FrameScores::from_tensor(x).unwrap();
            let windows: Vec<usize> = f[&format!("{case}.windows")].to_vec().unwrap().iter().map(|&w| w as usize).collect();
            let got = median_filter(&s, &windows).unwrap();
            assert_eq!(got.data, f[&format!("{case}.out")].to_vec().unwrap(), "median filter case {case} (windows {windows:?})");
        }
    }
}
