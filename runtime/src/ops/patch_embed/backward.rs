//! Backward of the patch embedding (autograd, issue #7), for the parameters: with G = ∂L/∂out
//! (B, P + F′T′, N) and G_p its patch rows (B·F′T′, N),
//! `dweight = G_pᵀ·cols` (N, ph·pw) reshaped to the weight's shape, `dbias = Σ_rows G_p`,
//! `dprefix = Σ_b G[b, :P]`, `dpos = Σ_b G[b]` (in pos's shape). cols (B·F′T′, ph·pw) is the im2col
//! of x (the same patch order as the forward), gathered with `shape::index_select` over the flattened
//! input, so the whole backward is runtime ops and runs on every device. The input x is AST's frozen
//! fbank: its gradient is not computed.

use super::{geometry, PatchEmbed};
use crate::ops::matmul::{matmul_opts, MatmulOpts};
use crate::ops::reduce::sum;
use crate::ops::shape::{index_select, slice};
use crate::{Error, Result, Tensor};

/// Gradients of [`super::patch_embed`]'s parameters.
#[derive(Debug, Clone)]
pub struct PatchEmbedGrads {
    /// The weight's shape ((N, 1, ph, pw) or (N, ph, pw)).
    pub dweight: Tensor,
    /// (N).
    pub dbias: Tensor,
    /// (P, N) when there are prefix tokens.
    pub dprefix: Option<Tensor>,
    /// pos's shape when there is a position embedding.
    pub dpos: Option<Tensor>,
}

/// The im2col of x: (B·F′T′, ph·pw), row (b, f, t), column i·pw + j = x[b, t·ts + j, f·fs + i].
pub fn patch_columns(x: &Tensor, pe: &PatchEmbed) -> Result<Tensor> {
    let g = geometry(x, pe)?;
    let (k, patches) = (g.kdim(), g.patches());
    let mut idx = Vec::with_capacity(patches * k);
    for p in 0..patches {
        let (f, t) = (p / g.to, p % g.to);
        for i in 0..g.ph {
            for j in 0..g.pw {
                idx.push(((t * g.ts + j) * g.mel + f * g.fs + i) as u32);
            }
        }
    }
    if g.frames * g.mel > u32::MAX as usize {
        return Err(Error::shape("patch_embed_bwd", format!("input {:?} too large for u32 indices", x.shape())));
    }
    let flat = x.reshape(&[g.batch, g.frames * g.mel])?;
    index_select(&flat, 1, &idx)?.reshape(&[g.batch * patches, k])
}

/// Gradients of the weight, bias, prefix tokens and position embedding of
/// `patch_embed(x, pe)` given `dy` = ∂L/∂out (B, P + F′T′, N).
pub fn patch_embed_bwd(x: &Tensor, pe: &PatchEmbed, dy: &Tensor) -> Result<PatchEmbedGrads> {
    let g = geometry(x, pe)?;
    if dy.shape() != g.out_shape().as_slice() {
        return Err(Error::shape("patch_embed_bwd", format!("dy has shape {:?}, the output {:?}", dy.shape(), g.out_shape())));
    }
    let (n, patches) = (g.n, g.patches());
    let gp = if g.prefix == 0 { dy.clone() } else { slice(dy, 1, g.prefix, patches)? };
    let gp = gp.reshape(&[g.batch * patches, n])?;
    let cols = patch_columns(x, pe)?;
    let dweight = matmul_opts(&gp, &cols, &MatmulOpts { trans_a: true, ..Default::default() })?.reshape(pe.weight.shape())?;
    let dbias = sum(&gp, 0, false)?;
    let dsum = sum(dy, 0, false)?; // (P + F′T′, N)
    let dprefix = match pe.prefix {
        Some(_) => Some(slice(&dsum, 0, 0, g.prefix)?),
        None => None,
    };
    let dpos = match pe.pos {
        Some(p) => Some(dsum.reshape(p.shape())?),
        None => None,
    };
    Ok(PatchEmbedGrads { dweight, dbias, dprefix, dpos })
}
