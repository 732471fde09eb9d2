//! Label selection of the S5 system: from the tagger's clip probabilities to the label slots the
//! separator is queried with — the DCASE 2025 task 4 baseline's `M2dAt._get_top_prob`
//! (src/models/m2dat/m2dat.py) followed by `S5.predict_label`'s naming and padding
//! (src/models/s5/s5.py), called there with `pthre = 0.5`, `nevent_range = [1, 3]`.
//!
//! The rule, for one probability vector `p` over the classes and `range = (lo, hi)`:
//! 1. `selected` = the classes with `p ≥ threshold` (the comparison is in f32, as torch compares an
//!    f32 tensor with a Python float: the threshold is an `f32` here);
//! 2. if `|selected| < lo`: the `lo` most probable classes overall (`argsort(p, descending)[:lo]`);
//!    otherwise the `hi` most probable of `selected` (`selected[argsort(p[selected], descending)[:hi]]`);
//! 3. the chosen classes become a multi-hot vector, which loses the probability order: the labels come
//!    out in **class-index order**;
//! 4. padded with `"silence"` to `hi` slots (never truncated: with `lo > hi` — which the baseline
//!    never uses, and accepts — step 2 can choose `lo > hi` classes and all of them are returned).
//!
//! Ties. `torch.argsort(descending=True)` (stable=False) leaves the order of equal probabilities
//! undefined. What it does in practice: on CPU (torch 2.9.1, checked) it behaves as libstdc++'s
//! `std::sort`: an insertion sort — stable, equal values in index order — for up to 16 elements, and
//! an introsort that permutes ties for 17 or more (the full 18-class vector of step 2's first branch:
//! an all-zero 18-vector gives class 9 first, not class 0); on CUDA, where the baseline's
//! `evaluate.py` runs the tagger, current PyTorch sorts unstable slices of up to 32 elements with a
//! bitonic network, with yet another tie order. Here ties are always broken by the lower class
//! index (a stable sort). That agrees with torch on CPU whenever the sorted vector has at most 16
//! entries, and in every case where no tie straddles the cut (`lo` or `hi`) — tied probabilities
//! that both sit inside or both outside the chosen set give the same multi-hot vector in any order.
//! Exact ties of sigmoid outputs at a cut are vanishingly rare in real data. `-0.0` and `0.0` are
//! equal, as in torch.
//!
//! NaN probabilities (or a NaN threshold) are an error: torch would order NaN above every number and
//! select that class, which is never what a caller wants from a broken model output.

/// The label of an empty slot.
pub const SILENCE: &str = "silence";

/// Why a selection could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectError {
    #[error("label selection: {probs} probabilities for {classes} classes")]
    Length { probs: usize, classes: usize },
    #[error("label selection: the probability of class {index} ({class}) is NaN")]
    NaN { index: usize, class: String },
    #[error("label selection: the threshold is NaN")]
    NaNThreshold,
}

impl From<SelectError> for aural_runtime::Error {
    fn from(e: SelectError) -> Self {
        aural_runtime::Error::Msg(e.to_string())
    }
}

/// The class indices `_get_top_prob` sets in its multi-hot vector, in increasing index order (steps
/// 1–3 of the module doc). `classes` only names a NaN in the error; pass `None` to name it by index.
pub fn select_indices(probs: &[f32], classes: Option<&[String]>, threshold: f32, range: (usize, usize)) -> Result<Vec<usize>, SelectError> {
    if let Some(c) = classes {
        if c.len() != probs.len() {
            return Err(SelectError::Length { probs: probs.len(), classes: c.len() });
        }
    }
    if threshold.is_nan() {
        return Err(SelectError::NaNThreshold);
    }
    if let Some(index) = probs.iter().position(|p| p.is_nan()) {
        let class = classes.map_or_else(|| format!("#{index}"), |c| c[index].clone());
        return Err(SelectError::NaN { index, class });
    }
    let (lo, hi) = range;
    // argsort(descending) with ties by the lower index: `sort_by` is stable and the candidates start
    // in index order.
    let by_prob_desc = |mut idx: Vec<usize>| {
        idx.sort_by(|&a, &b| probs[b].partial_cmp(&probs[a]).expect("no NaN"));
        idx
    };
    let selected: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] >= threshold).collect();
    let mut chosen: Vec<usize> = if selected.len() < lo {
        by_prob_desc((0..probs.len()).collect()).into_iter().take(lo).collect()
    } else {
        by_prob_desc(selected).into_iter().take(hi).collect()
    };
    chosen.sort_unstable();
    Ok(chosen)
}

/// The label slots of one probability vector: the chosen classes' names in class-index order,
/// padded with [`SILENCE`] to `range.1` slots (steps 1–4 of the module doc). `probs` and `classes`
/// must have one entry per class.
///
/// ```
/// use aural_models::s5::select::select_labels;
/// let classes: Vec<String> = ["A", "B", "C", "D", "E"].iter().map(|s| s.to_string()).collect();
/// // Four at or above 0.5: the three most probable (D, A, E), returned in class order.
/// let p = [0.8, 0.5, 0.1, 0.9, 0.6];
/// assert_eq!(select_labels(&p, &classes, 0.5, (1, 3)).unwrap(), ["A", "D", "E"]);
/// // None reaches 0.5: the single most probable, padded.
/// let p = [0.2, 0.4, 0.1, 0.3, 0.0];
/// assert_eq!(select_labels(&p, &classes, 0.5, (1, 3)).unwrap(), ["B", "silence", "silence"]);
/// ```
pub fn select_labels(probs: &[f32], classes: &[String], threshold: f32, range: (usize, usize)) -> Result<Vec<String>, SelectError> {
    let idx = select_indices(probs, Some(classes), threshold, range)?;
    let mut labels: Vec<String> = idx.iter().map(|&i| classes[i].clone()).collect();
    while labels.len() < range.1 {
        labels.push(SILENCE.to_string());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn rules() {
        let c = names(6);
        // Exactly at the threshold counts.
        assert_eq!(select_labels(&[0.5, 0.0, 0.0, 0.0, 0.0, 0.0], &c, 0.5, (1, 3)).unwrap(), ["c0", "silence", "silence"]);
        // Ties at the cut among ≤ 16 entries: the lower index wins (torch on CPU agrees).
        assert_eq!(select_labels(&[0.7, 0.6, 0.6, 0.6, 0.9, 0.0], &c, 0.5, (1, 3)).unwrap(), ["c0", "c1", "c4"]);
        // lo = 0 and nothing selected: all silence.
        assert_eq!(select_labels(&[0.1; 6], &c, 0.5, (0, 3)).unwrap(), ["silence"; 3]);
        // lo > hi: lo classes, no truncation.
        assert_eq!(select_labels(&[0.1, 0.2, 0.3, 0.4, 0.0, 0.0], &c, 0.5, (3, 2)).unwrap(), ["c1", "c2", "c3"]);
        // -0.0 == 0.0: a tie, the lower index first.
        assert_eq!(select_indices(&[0.0, -0.0, 0.0], None, 0.5, (1, 3)).unwrap(), [0]);
    }

    #[test]
    fn errors() {
        let c = names(3);
        assert_eq!(select_labels(&[0.1, f32::NAN, 0.2], &c, 0.5, (1, 3)), Err(SelectError::NaN { index: 1, class: "c1".into() }));
        assert_eq!(select_labels(&[0.1, 0.2], &c, 0.5, (1, 3)), Err(SelectError::Length { probs: 2, classes: 3 }));
        assert_eq!(select_labels(&[0.1, 0.2, 0.3], &c, f32::NAN, (1, 3)), Err(SelectError::NaNThreshold));
        let e: aural_runtime::Error = SelectError::NaNThreshold.into();
        assert!(e.to_string().contains("NaN"));
    }
}
