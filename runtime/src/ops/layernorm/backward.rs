//! Backward of layer norm over the last dim (autograd, issue #7). With x̂ = (x − μ)·rstd recomputed
//! from `x` (two-pass, as the forward) and g = dy·w:
//! `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))`, `dweight = Σ_rows dy·x̂`, `dbias = Σ_rows dy`.
//! CPU: rayon over row chunks, column partials summed in chunk order (deterministic). CUDA:
//! `layernorm_bwd_f32_v1` in `kernels/cuda/layernorm.cu` (dx and per-block column partials), then the
//! partials are summed over blocks with [`crate::ops::reduce::sum`].

use rayon::prelude::*;

use crate::gpu::{backend, Launch};
use crate::ops::reduce::sum_f32;
use crate::tensor::{expect_dtype, same_device};
use crate::{DType, Device, Error, Result, Tensor};

/// Mirrors `LayerNormBwdParams` in layernorm.cu (size checked on both sides).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LayerNormBwdParams {
    pub rows: i32,
    pub len: i32,
    pub eps: f32,
    /// Bit 0: weight present.
    pub flags: i32,
    pub rows_per_block: i32,
    pub _pad: [i32; 3],
}
const _: () = assert!(std::mem::size_of::<LayerNormBwdParams>() == 32);

/// Rows per block of `layernorm_bwd_f32_v1` (`LNB_ROWS` in the .cu).
const LNB_ROWS: usize = 32;

/// Gradients of [`super::layernorm`].
#[derive(Debug, Clone)]
pub struct LayerNormGrads {
    /// Same shape as x.
    pub dx: Tensor,
    /// [L]: Σ over rows of dy·x̂ (the weight's gradient; computed also when there is no weight).
    pub dweight: Tensor,
    /// [L]: Σ over rows of dy.
    pub dbias: Tensor,
}

/// Gradients of `layernorm(x, weight, _, eps)` given the output gradient `dy` (the bias does not enter).
pub fn layernorm_bwd(x: &Tensor, weight: Option<&Tensor>, dy: &Tensor, eps: f32) -> Result<LayerNormGrads> {
    let op = "layernorm_bwd";
    expect_dtype(op, x, DType::F32)?;
    expect_dtype(op, dy, DType::F32)?;
    if x.shape() != dy.shape() || x.rank() == 0 {
        return Err(Error::Shape { op, msg: format!("x {:?} and dy {:?} must have one shape of rank ≥ 1", x.shape(), dy.shape()) });
    }
    let len = *x.shape().last().unwrap();
    let rows = if len == 0 { 0 } else { x.numel() / len };
    let mut ts = vec![x, dy];
    if let Some(w) = weight {
        expect_dtype(op, w, DType::F32)?;
        if w.shape() != [len] {
            return Err(Error::Shape { op, msg: format!("weight {:?} must be [{len}] for x {:?}", w.shape(), x.shape()) });
        }
        ts.push(w);
    }
    match same_device(op, &ts)? {
        Device::Cpu => cpu(x.cpu_f32()?, weight.map(|w| w.cpu_f32()).transpose()?, dy.cpu_f32()?, eps, rows, len, x.shape()),
        Device::Cuda(_) | Device::Emu => cuda(x, weight, dy, eps, rows, len),
    }
}

fn cpu(x: &[f32], w: Option<&[f32]>, dy: &[f32], eps: f32, rows: usize, len: usize, shape: &[usize]) -> Result<LayerNormGrads> {
    let mut dx = vec![0f32; x.len()];
    if rows == 0 || len == 0 {
        return Ok(LayerNormGrads {
            dx: Tensor::from_vec(dx, shape)?,
            dweight: Tensor::from_vec(vec![0.0; len], &[len])?,
            dbias: Tensor::from_vec(vec![0.0; len], &[len])?,
        });
    }
    let per = (8192 / len).max(1) * len;
    let inv = 1.0 / len as f32;
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(per)
        .zip(x.par_chunks(per).zip(dy.par_chunks(per)))
        .map(|(d, (xs, gs))| {
            let (mut pw, mut pb) = (vec![0f32; len], vec![0f32; len]);
            let mut xh = vec![0f32; len];
            let mut g = vec![0f32; len];
            for ((dr, xr), gr) in d.chunks_exact_mut(len).zip(xs.chunks_exact(len)).zip(gs.chunks_exact(len)) {
                let mean = sum_f32(xr) * inv;
                for (t, &v) in xh.iter_mut().zip(xr) {
                    *t = (v - mean) * (v - mean);
                }
                let rstd = 1.0 / (sum_f32(&xh) * inv + eps).sqrt();
                for (t, &v) in xh.iter_mut().zip(xr) {
                    *t = (v - mean) * rstd;
                }
                for j in 0..len {
                    g[j] = match w {
                        Some(w) => gr[j] * w[j],
                        None => gr[j],
                    };
                    pw[j] += gr[j] * xh[j];
                    pb[j] += gr[j];
                }
                let c2 = sum_f32(&g) * inv;
                // dr holds g·x̂ first, then dx.
                for j in 0..len {
                    dr[j] = g[j] * xh[j];
                }
                let c1 = sum_f32(dr) * inv;
                for j in 0..len {
                    dr[j] = rstd * (g[j] - c2 - xh[j] * c1);
                }
            }
            (pw, pb)
        })
        .collect();
    let (mut dw, mut db) = (vec![0f32; len], vec![0f32; len]);
    for (pw, pb) in &partials {
        dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    Ok(LayerNormGrads { dx: Tensor::from_vec(dx, shape)?, dweight: Tensor::from_vec(dw, &[len])?, dbias: Tensor::from_vec(db, &[len])? })
}

fn cuda(x: &Tensor, weight: Option<&Tensor>, dy: &Tensor, eps: f32, rows: usize, len: usize) -> Result<LayerNormGrads> {
    let op = "layernorm_bwd";
    let n = x.numel();
    if n > i32::MAX as usize {
        return Err(Error::shape(op, format!("shape {:?} exceeds the CUDA kernel's i32 indexing", x.shape())));
    }
    let dev = x.device();
    let be = backend(dev)?;
    let dx = be.alloc(n * 4)?;
    if rows == 0 || len == 0 {
        let z = Tensor::zeros(&[len], DType::F32, dev)?;
        return Ok(LayerNormGrads { dx: Tensor::from_gpu(dx, x.shape(), DType::F32, dev), dweight: z.clone(), dbias: z });
    }
    let blocks = rows.div_ceil(LNB_ROWS);
    let dw_part = be.alloc(blocks * len * 4)?;
    let db_part = be.alloc(blocks * len * 4)?;
    let xb = x.gpu_buf()?;
    let wb = weight.map(|w| w.gpu_buf()).transpose()?.unwrap_or(xb);
    let p = LayerNormBwdParams { rows: rows as i32, len: len as i32, eps, flags: weight.is_some() as i32, rows_per_block: LNB_ROWS as i32, _pad: [0; 3] };
    Launch::new(op, "layernorm", "layernorm_bwd_f32_v1")
        .grid(blocks as u32, 1, 1)
        .block(256, 1, 1)
        .buf(xb)
        .buf(wb)
        .buf(dy.gpu_buf()?)
        .buf(&dx)
        .buf(&dw_part)
        .buf(&db_part)
        .param(&p)
        .run(&be)?;
    let dw_part = Tensor::from_gpu(dw_part, &[blocks, len], DType::F32, dev);
    let db_part = Tensor::from_gpu(db_part, &[blocks, len], DType::F32, dev);
    Ok(LayerNormGrads {
        dx: Tensor::from_gpu(dx, x.shape(), DType::F32, dev),
        dweight: crate::ops::reduce::sum(&dw_part, 0, false)?,
        dbias: crate::ops::reduce::sum(&db_part, 0, false)?,
    })
}
