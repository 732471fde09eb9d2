//! The separator's spectral ends (ResUNet30, DESIGN.md §6.5): [`magnitude_input`] turns the mixture's
//! STFT planes into the network's input, [`complex_mask`] applies the network's complex masks to the
//! mixture and mixes the microphone channels (`out_conv`) — each one fused pass over the spectrogram.
//!
//! Layouts: `spec` is [`crate::ops::stft::stft`]'s output for a (B, C, L) mixture, (B, C, 2, F, T):
//! real and imaginary planes, frequency-major, F = n_fft/2 + 1. The network works on (B, ·, T′, F − 1)
//! (time, frequency; T′ ≥ T is the time length padded to the network's multiple, the Nyquist bin
//! dropped).
//!
//! [`magnitude_input`]: `out[b, c, t, f] = |X|·scale[f] + shift[f]` for t < T, f < F − 1 (bn0: an
//! eval-mode BatchNorm over the F bins, folded), and 0 for T ≤ t < T′ (the time padding comes after
//! bn0), with `|X| = sqrt(max(re² + im², 1e-10))`. Output (B, C, T′, F − 1).
//!
//! [`complex_mask`], per target s < S, input channel c < C, frame t < T and bin f < F, with the
//! network output `x` (B, S·C·3, T′, F − 1) read as `x_k = x[b, (s·C + c)·3 + k, t, f]` (0 at
//! f = F − 1, the bin the network does not produce):
//! ```text
//! |X| = sqrt(max(re² + im², 1e-10)),  cos = re/|X|,  sin = im/|X|
//! mm = sigmoid(x0),  mr = tanh(x1),  mi = tanh(x2),  |m| = sqrt(mr² + mi²)
//! mc = mr / max(|m|, 1e-10),  ms = mi / max(|m|, 1e-10)
//! A  = relu(|X|·mm)
//! y_c = A·(cos·mc − sin·ms)  +  j·A·(sin·mc + cos·ms)
//! Y[b, s, o] = gate[b, s] · (bias[o] + Σ_c W[o, c]·y_c)        (out_conv, separately on re and im)
//! Y[b, s, c] = gate[b, s] · y_c                                 (no out_conv: O = C)
//! ```
//! Output (B, S, O, 2, F, T) f32, ready for [`crate::ops::stft::istft`]. `gate` (B, S) is the
//! source mask (1 for a queried slot, 0 for silence; the iSTFT is linear, so gating the spectrum is
//! gating the waveform). `spec` and `x` are both f32, or both f16 (GPU storage; the math is f32
//! either way, the CPU converts f16 to f32 first).
//!
//! CPU: `cpu.rs` (rayon over (b, s) and blocks of frames). CUDA: `cuda.rs` launching
//! `kernels/cuda/complex_mask.cu` (`mag_input_fwd_f32_v1`, `complex_mask_fwd_f32_v1` and
//! `complex_mask_fwd_f16_v1`: a block per (b, s, output channel, 32 frames × 128 bins), each thread one
//! frame × 4 bins looping over the C channels, the mask maps staged through shared memory; see the .cu).
//!
//! Bytes moved, the DCASE baseline on one 10 s 4-channel clip (n_fft 1024, hop 160: C = 4, S = 1,
//! out_conv 4 → 1, F = 513, T = 2001, T′ = 2016; N = C·F·T = 4,106,052). The fused kernel reads x
//! (3·C maps, frames < T) and spec once and writes the output once: 90,258,516 B with f32 storage
//! (x 49.18 MB + spec 32.85 MB + out 8.21 MB + out_conv weights re-read per block 0.02 MB),
//! 49,246,020 B with f16 spec and x. The unfused PyTorch chain — sigmoid, 2 × tanh, magphase of the
//! mask (|m|, cos, sin), out_cos, out_sin, out_mag (mul + relu_), out_real, out_imag, 2 × out_conv,
//! plus the mixture's |X|, cos, sin kept from the STFT — reads 24·N and writes 15.5·N elements:
//! 648,756,216 B in f32 (7.2× the fused f32 kernel), 324,378,108 B in f16. The per-op breakdown and
//! the exact per-launch formulas are in the kernel's header; `aural bench --model-gpu` prints them
//! (case `10s_analytic`) beside emulator-counted small cases.
//!
//! Backward (`backward.rs`, f32): [`complex_mask_bwd`] gives the gradients of `x`, the out_conv
//! weight and bias (`spec` and `gate` are constants), for training the separator with a waveform
//! loss through [`crate::ops::stft::istft_bwd`]; kernels `complex_mask_data_bwd_f32_v1`,
//! `complex_mask_weight_bwd_f32_v1` and `complex_mask_wsum_bwd_f32_v1`.

mod backward;
mod cpu;
mod cuda;

pub use backward::*;

use crate::tensor::same_device;
use crate::{DType, Device, Error, Result, Tensor};

/// The 1×1 convolution mixing the C input channels' masked spectra into O outputs (`out_conv`).
#[derive(Debug, Clone, Copy)]
pub struct OutConv<'a> {
    /// (O, C) or (O, C, 1, 1).
    pub weight: &'a Tensor,
    /// (O).
    pub bias: &'a Tensor,
}

/// Resolved geometry of [`complex_mask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaskGeom {
    pub batch: usize,
    pub targets: usize,
    pub cin: usize,
    pub cout: usize,
    pub freq: usize,
    pub frames: usize,
    /// The network output's time length T′ (≥ frames).
    pub net_frames: usize,
    pub has_out_conv: bool,
    pub has_gate: bool,
}

impl MaskGeom {
    pub fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.targets, self.cout, 2, self.freq, self.frames]
    }
}

fn spec_dims(op: &'static str, spec: &Tensor) -> Result<(usize, usize, usize, usize)> {
    match spec.shape() {
        [b, c, 2, f, t] if *f >= 2 => Ok((*b, *c, *f, *t)),
        s => Err(Error::shape(op, format!("spec must be STFT planes (B, C, 2, F ≥ 2, T), got {s:?}"))),
    }
}

/// The network input; see the module doc. `scale`, `shift`: (F). Output (B, C, `net_frames`, F − 1).
pub fn magnitude_input(spec: &Tensor, scale: &Tensor, shift: &Tensor, net_frames: usize) -> Result<Tensor> {
    magnitude_input_version(spec, scale, shift, net_frames, None)
}

/// [`magnitude_input`] forcing kernel version `v` (1) on a GPU device.
pub fn magnitude_input_version(spec: &Tensor, scale: &Tensor, shift: &Tensor, net_frames: usize, v: Option<u32>) -> Result<Tensor> {
    const OP: &str = "magnitude_input";
    same_device(OP, &[spec, scale, shift])?;
    for t in [spec, scale, shift] {
        if t.dtype() != DType::F32 {
            return Err(Error::DType { op: OP, got: t.dtype(), msg: "spec, scale and shift must be f32".into() });
        }
    }
    let (b, c, f, t) = spec_dims(OP, spec)?;
    if scale.shape() != [f] || shift.shape() != [f] {
        return Err(Error::shape(
            OP,
            format!("bn0 scale {:?} and shift {:?} must be [{f}] (the frequency bins of spec {:?})", scale.shape(), shift.shape(), spec.shape()),
        ));
    }
    if net_frames < t {
        return Err(Error::shape(OP, format!("net_frames {net_frames} is shorter than the {t} frames of spec")));
    }
    let shape = [b, c, net_frames, f - 1];
    match spec.device() {
        Device::Cpu => cpu::magnitude_input(spec.cpu_f32()?, scale.cpu_f32()?, shift.cpu_f32()?, (b * c, f, t, net_frames), &shape),
        Device::Cuda(_) | Device::Emu => cuda::magnitude_input(spec, scale, shift, (b * c, f, t, net_frames), &shape, v),
    }
}

/// The masked, channel-mixed spectra; see the module doc. `x`: the network output
/// (B, S·C·3, T′, F − 1); `gate`: (B, S). Output (B, S, O, 2, F, T).
pub fn complex_mask(spec: &Tensor, x: &Tensor, targets: usize, out_conv: Option<&OutConv>, gate: Option<&Tensor>) -> Result<Tensor> {
    complex_mask_version(spec, x, targets, out_conv, gate, None)
}

/// [`complex_mask`] forcing kernel version `v` (1) on a GPU device.
pub fn complex_mask_version(spec: &Tensor, x: &Tensor, targets: usize, out_conv: Option<&OutConv>, gate: Option<&Tensor>, v: Option<u32>) -> Result<Tensor> {
    let g = mask_geom("complex_mask", spec, x, targets, out_conv, gate)?;
    match spec.device() {
        Device::Cpu => cpu::complex_mask(spec, x, out_conv, gate, &g),
        Device::Cuda(_) | Device::Emu => cuda::complex_mask(spec, x, out_conv, gate, &g, v),
    }
}

/// Checks the operands of [`complex_mask`] (and of its backward) and resolves the geometry.
pub(crate) fn mask_geom(op: &'static str, spec: &Tensor, x: &Tensor, targets: usize, out_conv: Option<&OutConv>, gate: Option<&Tensor>) -> Result<MaskGeom> {
    let mut ts = vec![spec, x];
    if let Some(oc) = out_conv {
        ts.extend([oc.weight, oc.bias]);
    }
    ts.extend(gate);
    same_device(op, &ts)?;
    if spec.dtype() != x.dtype() {
        return Err(Error::DType { op, got: x.dtype(), msg: format!("spec is {} and x is {}: both f32 or both f16", spec.dtype(), x.dtype()) });
    }
    for t in &ts[2..] {
        if t.dtype() != DType::F32 {
            return Err(Error::DType { op, got: t.dtype(), msg: "out_conv and gate must be f32".into() });
        }
    }
    let (b, c, f, t) = spec_dims(op, spec)?;
    if targets == 0 {
        return Err(Error::shape(op, "needs at least one target"));
    }
    let xs = x.shape();
    if xs.len() != 4 || xs[0] != b || xs[1] != targets * c * 3 || xs[2] < t || xs[3] != f - 1 {
        return Err(Error::shape(
            op,
            format!(
                "network output {xs:?} must be ({b}, {targets}·{c}·3 = {}, ≥ {t}, {}) for spec {:?} and {targets} target(s)",
                targets * c * 3,
                f - 1,
                spec.shape()
            ),
        ));
    }
    let cout = match out_conv {
        None => c,
        Some(oc) => {
            let ws = oc.weight.shape();
            let o = ws.first().copied().unwrap_or(0);
            let ok = ws == [o, c] || ws == [o, c, 1, 1];
            if !ok || o == 0 || oc.bias.shape() != [o] {
                return Err(Error::shape(op, format!("out_conv weight {ws:?} and bias {:?} must be (O, {c}) or (O, {c}, 1, 1) and (O)", oc.bias.shape())));
            }
            o
        }
    };
    if let Some(gt) = gate {
        if gt.shape() != [b, targets] {
            return Err(Error::shape(op, format!("gate {:?} must be [{b}, {targets}]", gt.shape())));
        }
    }
    Ok(MaskGeom { batch: b, targets, cin: c, cout, freq: f, frames: t, net_frames: xs[2], has_out_conv: out_conv.is_some(), has_gate: gate.is_some() })
}

/// Benchmark cases: the DCASE baseline's mask on a 10 s 4-channel mixture (n_fft 1024, hop 160:
/// F = 513, T = 2001, T′ = 2016, out_conv 4 → 1), f32 and f16 storage, and its backward (f32); and
/// the network input.
pub fn bench_cases(device: Device) -> Result<Vec<crate::bench::BenchCase>> {
    use crate::bench::{version_cases, Work};
    use crate::testing::rand_tensor;
    let (c, f, t, tp) = (4usize, 513usize, 2001usize, 2016usize);
    let spec = rand_tensor(&[1, c, 2, f, t], 951);
    let x = rand_tensor(&[1, 3 * c, tp, f - 1], 952);
    let (w, bias) = (rand_tensor(&[1, c], 953), rand_tensor(&[1], 954));
    let (sc, sh) = (rand_tensor(&[f], 955), rand_tensor(&[f], 956));
    // Minimum bytes (f32): read the 2 planes and the 3 mask maps of every channel, write 2 planes.
    let min = |elt: f64| elt * (c * f * t * 5) as f64 + 4.0 * (2 * f * t) as f64;
    let mut out = Vec::new();
    let ins = vec![spec.clone(), x.clone(), w.clone(), bias.clone()];
    let call = |t: &[Tensor], v: Option<u32>| complex_mask_version(&t[0], &t[1], 1, Some(&OutConv { weight: &t[2], bias: &t[3] }), None, v);
    out.extend(version_cases("complex_mask", "4ch_513x2001_outconv", device, DType::F32, Work::Bytes(min(4.0)), &[1], (1e-5, 1e-5), ins, call)?);
    if !device.is_cpu() {
        let h = vec![crate::ops::unary::to_f16(&spec)?, crate::ops::unary::to_f16(&x)?, w, bias];
        // The CPU reference of the f16 case reads the same f16 values (converted), so only the f32
        // math differs in order and intrinsics: 1e-4.
        out.extend(version_cases("complex_mask", "4ch_513x2001_outconv", device, DType::F16, Work::Bytes(min(2.0)), &[1], (1e-4, 1e-4), h, call)?);
    }
    // Backward (f32): dx, dW, dbias of the same case; the timed output checked is dx.
    let gy = rand_tensor(&[1, 1, 1, 2, f, t], 957);
    let ins = vec![spec.clone(), x.clone(), rand_tensor(&[1, c], 953), rand_tensor(&[1], 954), gy];
    // Minimum bytes: read the 3 mask maps and 2 planes of every channel and the 2 gradient planes,
    // write dx (3 maps of T′ frames per channel).
    let bwd_bytes = 4.0 * (c * f * t * 5 + 2 * f * t + 3 * c * tp * (f - 1)) as f64;
    out.extend(version_cases("complex_mask_bwd", "4ch_513x2001_outconv", device, DType::F32, Work::Bytes(bwd_bytes), &[1], (1e-4, 1e-3), ins, |t, _| {
        complex_mask_bwd(&t[0], &t[1], 1, Some(&OutConv { weight: &t[2], bias: &t[3] }), None, &t[4]).map(|g| g.dx)
    })?);
    let ins = vec![spec, sc, sh];
    let bytes = 4.0 * (c * f * t * 2 + c * tp * (f - 1)) as f64;
    out.extend(version_cases("magnitude_input", "4ch_513x2001", device, DType::F32, Work::Bytes(bytes), &[1], (1e-5, 1e-5), ins, move |t, v| {
        magnitude_input_version(&t[0], &t[1], &t[2], tp, v)
    })?);
    Ok(out)
}
