//! The op API, one module per op family (DESIGN.md §2). Each family's `mod.rs` is the only place
//! that matches on the device; `cpu.rs` is the reference; `cuda.rs` launches `kernels/cuda/<family>.cu`.

pub mod adamw;
pub mod attention;
pub mod binary;
pub mod complex_mask;
pub mod conv2d;
pub mod conv_transpose;
pub mod fbank;
pub mod groupnorm;
pub mod gru;
pub mod layernorm;
pub mod matmul;
pub mod melspec;
pub mod patch_embed;
pub mod pool;
pub mod reduce;
pub mod resize;
pub mod shape;
pub mod softmax;
pub mod standardize;
pub mod stft;
pub mod unary;

use crate::{Error, Result};

/// Maximum rank the strided CUDA kernels accept (host code accepts any rank).
pub const MAX_RANK: usize = 6;

/// Elementwise grid: `threads` per block, enough blocks for `n` elements, capped (grid-stride loops).
pub(crate) fn grid_1d(n: usize, threads: u32) -> u32 {
    (n.div_ceil(threads as usize)).clamp(1, 65535 * 8) as u32
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// How two shapes broadcast (NumPy rules: align on the right, a size-1 or missing dim stretches).
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub out: Vec<usize>,
    /// Per output dim, the element stride in each operand (0 where that operand is broadcast).
    pub a_strides: Vec<usize>,
    pub b_strides: Vec<usize>,
    pub kind: BroadcastKind,
}

/// The cases with faster kernels than the general strided one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastKind {
    /// Same shapes.
    Same,
    /// `b` is a trailing block of `a` repeated (bias over rows): b index = i mod numel(b).
    SuffixB,
    /// `a` is the repeated trailing block.
    SuffixA,
    /// Anything else.
    General,
}

pub fn broadcast(op: &'static str, a: &[usize], b: &[usize]) -> Result<Broadcast> {
    let r = a.len().max(b.len());
    let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat(1).take(r - s.len()).chain(s.iter().copied()).collect() };
    let (pa, pb) = (pad(a), pad(b));
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let (x, y) = (pa[i], pb[i]);
        out.push(if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return Err(Error::Shape { op, msg: format!("shapes {a:?} and {b:?} do not broadcast (dim {i}: {x} vs {y})") });
        });
    }
    let st = |p: &[usize]| -> Vec<usize> {
        let s = strides(p);
        (0..r).map(|i| if p[i] == 1 && out[i] != 1 { 0 } else { s[i] }).collect()
    };
    let (a_strides, b_strides) = (st(&pa), st(&pb));
    let is_suffix = |small: &[usize]| -> bool {
        // the non-1 part of `small` must equal the trailing dims of out, with only 1s before.
        let k = small.iter().position(|&d| d != 1).unwrap_or(small.len());
        small[k..] == out[k..]
    };
    let kind = if pa == pb {
        BroadcastKind::Same
    } else if pa == out && is_suffix(&pb) {
        BroadcastKind::SuffixB
    } else if pb == out && is_suffix(&pa) {
        BroadcastKind::SuffixA
    } else {
        BroadcastKind::General
    };
    Ok(Broadcast { out, a_strides, b_strides, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn broadcast_rules() {
        let b = broadcast("t", &[2, 3, 4], &[4]).unwrap();
        assert_eq!(b.out, vec![2, 3, 4]);
        assert_eq!(b.kind, BroadcastKind::SuffixB);
        assert_eq!(b.b_strides, vec![0, 0, 1]);
        let b = broadcast("t", &[3, 1], &[1, 4]).unwrap();
        assert_eq!(b.out, vec![3, 4]);
        assert_eq!(b.kind, BroadcastKind::General);
        assert_eq!(b.a_strides, vec![1, 0]);
        assert_eq!(b.b_strides, vec![0, 1]);
        assert_eq!(broadcast("t", &[5], &[2, 5]).unwrap().kind, BroadcastKind::SuffixA);
        assert_eq!(broadcast("t", &[2, 5], &[2, 5]).unwrap().kind, BroadcastKind::Same);
        assert!(broadcast("t", &[2, 3], &[4]).is_err());
    }
}
