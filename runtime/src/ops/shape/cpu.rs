//! CPU reference of the shape ops: rayon over runs of output rows, `copy_from_slice` of every
//! contiguous run; generic over the element type (f32, f16 — pure data movement).

use rayon::prelude::*;

use super::{PermKind, PermPlan};

/// Elements per rayon task: large enough that scheduling costs vanish.
const CHUNK: usize = 1 << 14;

/// Copies `src` into `dst` (equal lengths), in parallel when long.
fn copy_run<T: Copy + Send + Sync>(dst: &mut [T], src: &[T]) {
    if dst.len() > 2 * CHUNK {
        dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| d.copy_from_slice(s));
    } else {
        dst.copy_from_slice(src);
    }
}

/// The output is `rows` runs of `run` elements; run `i` is `src[map(i)..map(i) + run]`.
pub(super) fn gather<T, F>(src: &[T], rows: usize, run: usize, map: F) -> Vec<T>
where
    T: Copy + Default + Send + Sync,
    F: Fn(usize) -> usize + Sync,
{
    let mut out = vec![T::default(); rows * run];
    if out.is_empty() {
        return out;
    }
    let per_task = (CHUNK / run).max(1);
    out.par_chunks_mut(per_task * run).enumerate().for_each(|(t, chunk)| {
        for (k, d) in chunk.chunks_mut(run).enumerate() {
            let s = map(t * per_task + k);
            copy_run(d, &src[s..s + run]);
        }
    });
    out
}

/// torch.cat of `srcs`, each viewed as (outer, rows[k], inner), into (outer, Σ rows, inner).
pub(super) fn concat<T: Copy + Default + Send + Sync>(srcs: &[&[T]], rows: &[usize], outer: usize, inner: usize) -> Vec<T> {
    let total: usize = rows.iter().sum();
    let slab = total * inner;
    let mut out = vec![T::default(); outer * slab];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(slab).enumerate().for_each(|(o, d)| {
        let mut off = 0;
        for (s, &r) in srcs.iter().zip(rows) {
            let len = r * inner;
            copy_run(&mut d[off..off + len], &s[o * len..(o + 1) * len]);
            off += len;
        }
    });
    out
}

/// Permutation of `src` by a reduced plan (see `PermPlan`).
pub(super) fn permute<T: Copy + Default + Send + Sync>(src: &[T], plan: &PermPlan) -> Vec<T> {
    let n = src.len();
    match plan.kind {
        PermKind::Identity => src.to_vec(),
        PermKind::Rows { inner } => {
            let r = plan.out_dims.len();
            gather(src, n / inner.max(1), inner, |row| {
                let (mut rem, mut off) = (row, 0);
                for d in (0..r - 1).rev() {
                    off += (rem % plan.out_dims[d]) * plan.in_strides[d];
                    rem /= plan.out_dims[d];
                }
                off
            })
        }
        PermKind::Transpose { b: _, r, c } => {
            // (B, R, C) → (B, C, R), blocked 32×32 so reads and writes both stay in cache.
            const T32: usize = 32;
            let mut out = vec![T::default(); n];
            if n == 0 {
                return out;
            }
            out.par_chunks_mut(r * c).zip(src.par_chunks(r * c)).for_each(|(d, s)| {
                d.par_chunks_mut(T32 * r).enumerate().for_each(|(cb, dblk)| {
                    let c0 = cb * T32;
                    let cn = dblk.len() / r;
                    for r0 in (0..r).step_by(T32) {
                        for ci in 0..cn {
                            for ri in r0..(r0 + T32).min(r) {
                                dblk[ci * r + ri] = s[ri * c + c0 + ci];
                            }
                        }
                    }
                });
            });
            out
        }
        PermKind::General => {
            let r = plan.out_dims.len();
            let mut out = vec![T::default(); n];
            out.par_chunks_mut(CHUNK).enumerate().for_each(|(t, chunk)| {
                // Multi-index of the chunk's first element, then advanced like an odometer.
                let mut idx = vec![0usize; r];
                let mut rem = t * CHUNK;
                let mut off = 0;
                for d in (0..r).rev() {
                    idx[d] = rem % plan.out_dims[d];
                    rem /= plan.out_dims[d];
                    off += idx[d] * plan.in_strides[d];
                }
                for y in chunk.iter_mut() {
                    *y = src[off];
                    for d in (0..r).rev() {
                        idx[d] += 1;
                        off += plan.in_strides[d];
                        if idx[d] < plan.out_dims[d] {
                            break;
                        }
                        off -= idx[d] * plan.in_strides[d];
                        idx[d] = 0;
                    }
                }
            });
            out
        }
    }
}
