//! Backward of [`super::complex_mask`] (f32): gradients of the network output `x` and of the
//! out_conv weight and bias; `spec` (the mixture) and `gate` are constants.
//!
//! With G_r[c] = gate·Σ_o W[o, c]·grad_re[o] (gate·grad_re[c] without out_conv), G_i likewise, per
//! bin (b, s, c, f < F − 1, t < T) and the forward's intermediates (module doc of `complex_mask`):
//! ```text
//! dA  = G_r·(cos·mc − sin·ms) + G_i·(sin·mc + cos·ms)
//! dmc = A·(G_r·cos + G_i·sin),  dms = A·(G_i·cos − G_r·sin)
//! dmm = dA·|X| where |X|·mm > 0 (relu), else 0;          dx0 = dmm·mm·(1 − mm)
//! n = sqrt(mr² + mi²) ≥ 1e-10:  dmr = dmc/n − mr·(dmc·mr + dms·mi)/n³,  dmi = dms/n − mi·(…)/n³
//!                               (evaluated as dmr = mi·k, dmi = −mr·k, k = (dmc·mi − dms·mr)/n³)
//! n < 1e-10 (the clamp):       dmr = dmc/1e-10,  dmi = dms/1e-10
//! dx1 = dmr·(1 − mr²),  dx2 = dmi·(1 − mi²);  dx = 0 at the padded frames T ≤ t < T′
//! dW[o, c] = Σ_{b,s,f<F,t<T} gate·(grad_re[o]·y_re[c] + grad_im[o]·y_im[c])
//! dbias[o] = Σ_{b,s,f<F,t<T} gate·(grad_re[o] + grad_im[o])
//! ```
//! (the Nyquist bin has y = 0, so it adds nothing to dW, but the bias is added there too).
//!
//! CPU: `cpu.rs` (rayon over (b, s) and blocks of frames; dW/dbias in f64 per task, summed in task
//! order). CUDA: `complex_mask_data_bwd_f32_v1` (dx) and, with out_conv,
//! `complex_mask_weight_bwd_f32_v1` + `complex_mask_wsum_bwd_f32_v1` (deterministic two-pass sums).

use super::{cpu, cuda, mask_geom, OutConv};
use crate::{DType, Device, Error, Result, Tensor};

/// Gradients of [`super::complex_mask`].
#[derive(Debug, Clone)]
pub struct MaskGrads {
    /// (B, S·C·3, T′, F − 1), x's shape.
    pub dx: Tensor,
    /// The out_conv weight's shape ((O, C) or (O, C, 1, 1)); None without out_conv.
    pub dweight: Option<Tensor>,
    /// (O); None without out_conv.
    pub dbias: Option<Tensor>,
}

/// Backward of [`super::complex_mask`]`(spec, x, targets, out_conv, gate)` for the output gradient
/// `grad` (B, S, O, 2, F, T); f32 `spec` and `x`.
pub fn complex_mask_bwd(spec: &Tensor, x: &Tensor, targets: usize, out_conv: Option<&OutConv>, gate: Option<&Tensor>, grad: &Tensor) -> Result<MaskGrads> {
    const OP: &str = "complex_mask_bwd";
    let g = mask_geom(OP, spec, x, targets, out_conv, gate)?;
    if spec.dtype() != DType::F32 || grad.dtype() != DType::F32 {
        return Err(Error::DType { op: OP, got: if spec.dtype() != DType::F32 { spec.dtype() } else { grad.dtype() }, msg: "the backward is f32 only".into() });
    }
    crate::tensor::same_device(OP, &[spec, grad])?;
    if grad.shape() != g.out_shape() {
        return Err(Error::shape(OP, format!("grad {:?} must be the forward's output shape {:?}", grad.shape(), g.out_shape())));
    }
    match spec.device() {
        Device::Cpu => {
            let (dx, wg) = cpu::complex_mask_bwd(spec, x, out_conv, gate, grad.cpu_f32()?, &g)?;
            let (dweight, dbias) = match (wg, out_conv) {
                (Some((dw, db)), Some(oc)) => (Some(Tensor::from_vec(dw, oc.weight.shape())?), Some(Tensor::from_vec(db, oc.bias.shape())?)),
                _ => (None, None),
            };
            Ok(MaskGrads { dx, dweight, dbias })
        }
        Device::Cuda(_) | Device::Emu => {
            let (dx, wg) = cuda::complex_mask_bwd(spec, x, out_conv, gate, grad, &g)?;
            let (dweight, dbias) = wg.map_or((None, None), |[w, b]| (Some(w), Some(b)));
            Ok(MaskGrads { dx, dweight, dbias })
        }
    }
}
