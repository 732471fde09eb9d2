//! CPU reference of the binary ops: rayon over chunks of the output.

use rayon::prelude::*;

use super::BinaryOp;
use crate::ops::{Broadcast, BroadcastKind};
use crate::{Result, Tensor};

/// Elements per rayon task: large enough that scheduling costs vanish.
const CHUNK: usize = 1 << 14;

pub(super) fn binary(op: BinaryOp, a: &[f32], b: &[f32], bc: &Broadcast) -> Result<Tensor> {
    let n: usize = bc.out.iter().product();
    let mut out = vec![0f32; n];
    match bc.kind {
        BroadcastKind::Same => out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
            let s = c * CHUNK;
            for (i, y) in o.iter_mut().enumerate() {
                *y = op.apply(a[s + i], b[s + i]);
            }
        }),
        BroadcastKind::SuffixB | BroadcastKind::SuffixA => {
            let (full_is_a, small) = if bc.kind == BroadcastKind::SuffixB { (true, b) } else { (false, a) };
            let full = if full_is_a { a } else { b };
            let m = small.len().max(1);
            out.par_chunks_mut(m.max(CHUNK / m * m)).enumerate().for_each(|(c, o)| {
                let s = c * m.max(CHUNK / m * m);
                for (i, y) in o.iter_mut().enumerate() {
                    let (x, z) = (full[s + i], small[(s + i) % m]);
                    *y = if full_is_a { op.apply(x, z) } else { op.apply(z, x) };
                }
            })
        }
        BroadcastKind::General => {
            let r = bc.out.len();
            out.par_chunks_mut(CHUNK).enumerate().for_each(|(c, o)| {
                let mut idx = vec![0usize; r];
                for (i, y) in o.iter_mut().enumerate() {
                    let mut lin = c * CHUNK + i;
                    let (mut ia, mut ib) = (0, 0);
                    for d in (0..r).rev() {
                        idx[d] = lin % bc.out[d];
                        lin /= bc.out[d];
                        ia += idx[d] * bc.a_strides[d];
                        ib += idx[d] * bc.b_strides[d];
                    }
                    *y = op.apply(a[ia], b[ib]);
                }
            })
        }
    }
    Tensor::from_vec(out, &bc.out)
}
