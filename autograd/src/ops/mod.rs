//! Ops on [`Var`](crate::Var)s, one module per runtime op family, each with its backward rule
//! (DESIGN.md §2: `autograd/src/ops/<family>.rs`). Every function computes the forward with the
//! runtime op of the same name and records one tape entry. Backward rules are runtime ops (so they
//! run on every device) except where noted: layer norm, softmax and GELU call their backward kernels
//! (`runtime::ops::{layernorm,softmax,unary}::*_bwd`); a few masks (relu, abs, clamp, max/min) are
//! computed on the host (a round trip on GPU devices — a kernel would be better; not written yet).
//! Sequence ops: `gru` (one (bi)GRU layer, backpropagation through time: `gru_bwd_f32_v1`),
//! `attention_qkv` / `attention_heads` (recompute-based backward, `attention_bwd_f32_v1` for short
//! sequences) and `patch_embed` (parameter gradients via im2col + GEMM).
//! Separator ops: `avg_pool2d` (`avg_pool2d_bwd_f32_v1`) and `conv_transpose2d` with its fused
//! pre-activation (`conv_transpose_{data,weight}_bwd_f32_v1`; dscale/dshift/dtime by runtime reductions);
//! `batchnorm` (BatchNorm folded to a pre-activation's scale/shift, training or evaluation mode: runtime
//! reductions + host algebra); `spectral` (the network input, the complex mask + out_conv, the iSTFT:
//! `complex_mask_{data,weight,wsum}_bwd_f32_v1`, `istft_{ola,frames}_bwd_f32_v1`); `s5ops` (the CP-JKU
//! extensions' bilinear resize, GroupNorm, standardised add and PReLU: `resize_bilinear_data_bwd_f32_v1`,
//! `group_norm_data_bwd_f32_v1`, `standardize_add_data_bwd_f32_v1`); `loss::neg_snr` (the separation loss).

pub mod attention;
pub mod avg_pool2d;
pub mod batchnorm;
pub mod binary;
pub mod conv2d;
pub mod conv_transpose;
pub mod gru;
pub mod layernorm;
pub mod loss;
pub mod matmul;
pub mod patch_embed;
pub mod pool;
pub mod reduce;
pub mod s5ops;
pub mod shape;
pub mod softmax;
pub mod spectral;
pub mod unary;

pub use attention::{attention_heads, attention_qkv};
pub use avg_pool2d::avg_pool2d;
pub use batchnorm::{batch_norm_fold, BnFold, BnStats};
pub use binary::{add, add_scalar, div, maximum, minimum, mul, scale, sub};
pub use conv2d::conv2d;
pub use conv_transpose::conv_transpose2d;
pub use gru::{gru, GruDirParams, GruParams};
pub use layernorm::layernorm;
pub use loss::{bce, mse, neg_snr};
pub use matmul::{linear, matmul, matmul_opts};
pub use patch_embed::patch_embed;
pub use pool::attention_pool;
pub use reduce::{mean, mean_all, sum, sum_all};
pub use s5ops::{group_norm, prelu, resize_bilinear, standardize_add};
pub use shape::{concat, permute, repeat_interleave, reshape, slice, transpose};
pub use softmax::softmax;
pub use spectral::{complex_mask, istft, magnitude_input, stft};
pub use unary::{abs, affine, clamp, exp, gelu, gelu_tanh, leaky_relu, log, neg, relu, sigmoid, sqrt, tanh};

use aural_runtime::ops::reduce as rr;
use aural_runtime::{Device, Result, Tensor};

/// Sums a gradient of the broadcast output shape down to an operand's `shape` (NumPy broadcasting:
/// leading dims summed away, size-1 dims summed with keepdim).
pub(crate) fn reduce_to(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let r = g.rank();
    let pad = r - shape.len();
    let mut t = g.clone();
    if pad > 0 {
        let lead: usize = g.shape()[..pad].iter().product();
        let mut s2 = vec![lead];
        s2.extend_from_slice(&g.shape()[pad..]);
        t = rr::sum(&t.reshape(&s2)?, 0, false)?;
    }
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && t.shape()[i] != 1 {
            t = rr::sum(&t, i as isize, true)?;
        }
    }
    t.reshape(shape)
}

/// `f(a[i], b[i])` elementwise on the host, result on `a`'s device (for masks that have no runtime op).
pub(crate) fn host_map2(a: &Tensor, b: &Tensor, f: impl Fn(f32, f32) -> f32) -> Result<Tensor> {
    let (av, bv) = (a.to_vec()?, b.to_vec()?);
    let out: Vec<f32> = av.iter().zip(&bv).map(|(&x, &y)| f(x, y)).collect();
    Tensor::from_vec(out, a.shape())?.to_device(a.device())
}

/// The single value of a one-element tensor.
pub(crate) fn scalar_of(t: &Tensor) -> Result<f32> {
    Ok(t.to_vec()?[0])
}

/// A scalar tensor of shape [1] on `device` (broadcasts against anything).
pub(crate) fn scalar_tensor(v: f32, device: Device) -> Result<Tensor> {
    Tensor::full(&[1], v, device)
}
