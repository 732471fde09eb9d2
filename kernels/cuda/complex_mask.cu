// complex_mask.cu — the separator's spectral ends (ResUNet30, DESIGN.md §6.5): the network input
// (magnitude + bn0 + time padding, transposed to time-major) and the fused complex mask + out_conv.
//
// Math. spec = the mixture's STFT planes, X = re + j·im, |X| = sqrt(max(re² + im², 1e-10)).
//   mag_input:    out[p, t, f] = |X[p, f, t]|·scale[f] + shift[f]   (t < T, f < F − 1)
//                 out[p, t, f] = 0                                   (T ≤ t < T′: padding after bn0)
//   complex_mask, per item b, target s < S, input channel c < C, bin f < F, frame t < T, with the
//   network output read as x_k = x[b, (s·C + c)·3 + k, t, f] (x_k = 0 at f = F − 1, the Nyquist bin
//   the network does not produce):
//     cos = re/|X|, sin = im/|X|                      (0 in digital silence: re = im = 0)
//     mm = sigmoid(x0) = 1/(1 + e^{−x0}), mr = tanh(x1), mi = tanh(x2), |m| = sqrt(mr² + mi²)
//     mc = mr / max(|m|, 1e-10),  ms = mi / max(|m|, 1e-10)
//     A  = relu(|X|·mm)
//     y_c = A·(cos·mc − sin·ms) + j·A·(sin·mc + cos·ms)
//     Y[b, s, o] = gate[b, s]·(bias[o] + Σ_c W[o, c]·y_c)   (out_conv, on re and im separately)
//     Y[b, s, c] = gate[b, s]·y_c                          (no out_conv: O = C)
//   (gate = 1 when absent.) At the Nyquist bin mm = ½, mr = mi = 0, so y_c = 0 and Y = gate·bias.
//   The operations and their order are the CPU's (runtime/src/ops/complex_mask/cpu.rs): products and
//   sums are rounded separately (__fmul_rn/__fadd_rn: no FMA contraction), expf/tanhf/sqrtf and the
//   divisions are the accurate ones (no fast-math intrinsics). Under the emulator (glibc's expf/tanhf,
//   as Rust's) the results equal the CPU's; on a GPU expf/tanhf differ by ≤ 2 ulp.
// Layouts (axis letters): spec [B, C, 2, F, T] (re plane then im plane, time fastest); x
//   [B, S·C·3, T′, F − 1] (frequency fastest); W [O, C] (= Conv2d (O, C, 1, 1)); bias [O]; gate
//   [B, S]; complex_mask out [B, S, O, 2, F, T] (time fastest, ready for the iSTFT); mag_input
//   scale/shift [F] (bn0 folded; the Nyquist entry unused), out [B·C, T′, F − 1]. spec and x are f32
//   (…_f32_v1) or f16 (…_f16_v1, `__half` storage, converted on load; the math is f32); everything
//   else is f32.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style):
//   mag_input v1 — shared-memory tile transpose: a 32 (t) × 32 (f) tile per 32×8-thread block. Load
//     phase: lane ↔ t, coalesced reads of the time-contiguous spec rows; the magnitude goes to
//     tile[f][t] (stride 33: no bank conflicts). Write phase: lane ↔ f, coalesced writes of the
//     frequency-contiguous output rows, bn0 applied with scale/shift staged once per block. So both
//     the reads and the writes are coalesced.
//   complex_mask v1 — one thread per (b, s, t, f) output bin with t fastest (lane ↔ t), looping over
//     the C input channels: the spec reads and the output writes are coalesced (time-contiguous). The
//     network output x is frequency-contiguous, so for each channel the block first stages its three
//     32 × 32 maps in shared memory (lane ↔ f, coalesced) — the same tile transpose as mag_input —
//     then every thread reads its x0/x1/x2 from there. Block = 32×8 threads over a 32 (t) × 32 (f)
//     tile, each thread owning 4 bins (f = f0 + ty + 8j). With out_conv a block accumulates
//     CM_OCHUNK = 1 output o in registers (re and im of its 4 bins); O > 1 outputs take O blocks
//     along grid.z, each recomputing y_c and re-reading spec and x — out_conv in the real models
//     (DCASE baseline, CP-JKU) has O = 1. Tried: chunks of 4 outputs per block cost 112 registers
//     (2 blocks of 256 threads per SM) and of 2 outputs 80 (3 blocks), against 58 (4 blocks) for
//     one, all for accumulators that O = 1 leaves idle. The out_conv weights W[o, c] are staged in
//     shared memory once per block and channel, bias and gate once per block. spec is re-read by
//     each of the S targets (grid.z runs over (b, s)). f16: the same template with `__half` loads.
//   Not done (yet): reading spec once for all S targets (only ResUNetK has S > 1); vector loads.
//   Backward (end of this file): complex_mask_data_bwd_f32_v1 (dx, one thread per element) and
//     complex_mask_weight_bwd_f32_v1 + complex_mask_wsum_bwd_f32_v1 (dW, dbias: per-block partial sums,
//     then a fixed-order sum; deterministic).
//
// Bytes per launch, exactly as the emulator counts them (elt = 4 for f32, 2 for f16 storage):
//   mag_input:    8·P·T·(F − 1) [spec, the Nyquist row never read] + 8·(F − 1)·P·⌈T′/32⌉ [scale,
//                 shift: once per block] + 4·P·T′·(F − 1) [out], P = B·C.
//   complex_mask: with K = ⌈O/CM_OCHUNK⌉ = O blocks per tile along z (K = 1 without out_conv) and
//     nblk = ⌈T/32⌉·⌈F/32⌉ tiles,
//     B·S·( K·elt·(3·C·T·(F − 1) [x, frames < T only] + 2·C·F·T [spec])
//           + 4·has_out_conv·(C + 1)·O·nblk [W and bias, once per block]
//           + 4·has_gate·K·nblk [gate] + 8·O·F·T [out] ).
//   Minimum (each input once, each output once): elt·(2·B·C·F·T + 3·B·S·C·T·(F − 1))
//     + 4·(O·C + O)·has_out_conv + 4·B·S·has_gate + 8·B·S·O·F·T.
//
// Fused vs unfused, the DCASE 2025 baseline on one 10 s 4-channel clip (n_fft 1024, hop 160:
// C = 4, S = 1, O = 1 (out_conv 4 → 1), F = 513, T = 2001, T′ = 2016), N = C·F·T = 4,106,052:
//   PyTorch chain (each op reads and writes full (C, T, F) tensors; counts in units of N elements):
//     sigmoid(x0) 1 r + 1 w | tanh(x1) 1 + 1 | tanh(x2) 1 + 1 | magphase(mr, mi) → |m|, cos, sin 2 + 3
//     | out_cos = cos·mc − sin·ms 4 + 1 | out_sin 4 + 1 | out_mag = relu(|X|·mm) (mul, then relu_)
//     2 + 1, 1 + 1 | out_real = out_mag·out_cos 2 + 1 | out_imag 2 + 1 | out_conv(real), out_conv(imag)
//     1 + ¼ each | the mixture's |X|, cos, sin kept from the STFT (magphase of re, im) 2 + 3
//     = 24 N read + 15.5 N written = 39.5 N elements
//     f32: 158·N = 648,756,216 B (649 MB);  f16 storage throughout: 79·N = 324,378,108 B (324 MB).
//     (A lower bound for eager PyTorch: out_cos/out_sin run as 3 kernels each, magphase as ~6, and
//     the pad (F − 1 → F) and the crop (T′ → T) of the 12-channel x are two more copies.)
//   Fused complex_mask_fwd (K = 1, nblk = 63·17 = 1071, no gate):
//     f32: x 49,176,576 + spec 32,848,416 + W/bias 21,420 + out 8,212,104 = 90,258,516 B (90 MB)
//     f16: x 24,588,288 + spec 16,424,208 + W/bias 21,420 + out 8,212,104 = 49,246,020 B (49 MB)
//   i.e. 7.2× less traffic than the f32 chain (f16: 6.6× less than an f16 chain, 13.2× less than
//   the f32 one). `aural bench --model-gpu` prints these full-size numbers (case 10s_analytic: rows
//   complex_mask_unfused_f32/_f16 and complex_mask_fwd_f32/f16_v1) beside the emulator-counted small
//   cases that check the formula.
// Flops: ≈ 30 per (b, s, c, f, t) (counting expf/tanhf/sqrtf/division as one each) + 4·O per
// (b, s, c, f, t) for out_conv; memory-bound by a wide margin.

#include <cuda_fp16.h>
#include "common.cuh"

struct MagInputParams {
    int planes;      // P = B·C
    int freq;        // F
    int frames;      // T
    int net_frames;  // T′ ≥ T
    int fo;          // F − 1
    int _pad0, _pad1, _pad2;
};
static_assert(sizeof(MagInputParams) == 32, "MagInputParams must match runtime/src/ops/complex_mask/cuda.rs");

struct ComplexMaskParams {
    int batch, targets, cin, cout;  // B, S, C, O (O = C without out_conv)
    int freq, frames, net_frames;   // F, T, T′
    int fo;                         // F − 1
    int has_out_conv, has_gate;
    int o_chunks;                   // ⌈O / CM_OCHUNK⌉ with out_conv, else 1
    int chunks;                     // backward weight v1: partial sums per output (P); 0 in the forward
};
static_assert(sizeof(ComplexMaskParams) == 48, "ComplexMaskParams must match runtime/src/ops/complex_mask/cuda.rs");

#define CM_TILE 32   // frames and bins per block tile (= threads along x)
#define CM_ROWS 8    // threads along y
#define CM_FPT 4     // bins per thread = CM_TILE / CM_ROWS
#define CM_OCHUNK 1  // out_conv outputs per block (see the header: more cost registers)

namespace {

__device__ __forceinline__ float cm_load(const float* p) { return *p; }
__device__ __forceinline__ float cm_load(const __half* p) { return __half2float(*p); }

// sqrt(max(re² + im², 1e-10)), rounded as the CPU rounds it.
__device__ __forceinline__ float cm_mag(float re, float im) {
    return sqrtf(fmaxf(__fadd_rn(__fmul_rn(re, re), __fmul_rn(im, im)), 1e-10f));
}

// y_c of one bin (see the header); x0..x2 are 0 at the Nyquist bin.
__device__ __forceinline__ void cm_bin(float re, float im, float x0, float x1, float x2, float& yr, float& yi) {
    const float mag = cm_mag(re, im);
    const float cs = re / mag, sn = im / mag;
    const float mm = 1.0f / (1.0f + expf(-x0));
    const float mr = tanhf(x1), mi = tanhf(x2);
    const float mn = fmaxf(sqrtf(__fadd_rn(__fmul_rn(mr, mr), __fmul_rn(mi, mi))), 1e-10f);
    const float mc = mr / mn, ms = mi / mn;
    const float a = fmaxf(__fmul_rn(mag, mm), 0.0f);
    yr = __fmul_rn(a, __fsub_rn(__fmul_rn(cs, mc), __fmul_rn(sn, ms)));
    yi = __fmul_rn(a, __fadd_rn(__fmul_rn(sn, mc), __fmul_rn(cs, ms)));
}

// The body of complex_mask_fwd_<dt>_v1 (launch shape and pointers there). xs, wsm, bsm, gsm are the
// kernel's shared arrays: the x tile [3][t][f], W[o0 + i, c], bias[o0 + i], gate[b, s].
template <typename T>
__device__ __forceinline__ void complex_mask_v1(const T* __restrict__ spec, const T* __restrict__ x, const float* __restrict__ w,
                                                const float* __restrict__ bias, const float* __restrict__ gate, float* __restrict__ out,
                                                const ComplexMaskParams& p, float (*xs)[CM_TILE][CM_TILE + 1], float* wsm, float* bsm,
                                                float* gsm) {
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * CM_TILE + tx;
    const int t0 = blockIdx.x * CM_TILE, f0 = blockIdx.y * CM_TILE;
    const int chunk = blockIdx.z % p.o_chunks;
    const int bs = blockIdx.z / p.o_chunks;  // b·S + s
    const int b = bs / p.targets;
    const int o0 = chunk * CM_OCHUNK;
    const int nout = p.has_out_conv ? min(CM_OCHUNK, p.cout - o0) : 0;
    const long long ft = (long long)p.freq * p.frames;
    const long long xplane = (long long)p.net_frames * p.fo;
    const T* specb = spec + (long long)b * p.cin * 2 * ft;
    const T* xbs = x + (long long)bs * p.cin * 3 * xplane;
    float* outbs = out + (long long)bs * p.cout * 2 * ft;
    const int t = t0 + tx;
    const bool t_ok = t < p.frames;

    if (tid == 0) gsm[0] = p.has_gate ? gate[bs] : 1.0f;
    if (tid < nout) bsm[tid] = bias[o0 + tid];
    __syncthreads();
    const float g = gsm[0];

    float acc_r[CM_OCHUNK][CM_FPT], acc_i[CM_OCHUNK][CM_FPT];
#pragma unroll
    for (int o = 0; o < CM_OCHUNK; ++o)
#pragma unroll
        for (int j = 0; j < CM_FPT; ++j) acc_r[o][j] = acc_i[o][j] = o < nout ? bsm[o] : 0.0f;

    for (int c = 0; c < p.cin; ++c) {
        // Stage x0, x1, x2 of channel c over the tile: lane ↔ f (x rows are frequency-contiguous).
        const T* xc = xbs + (long long)c * 3 * xplane;
        const int fx = f0 + tx;
        for (int r = ty; r < 3 * CM_TILE; r += CM_ROWS) {
            const int k = r / CM_TILE, tl = r % CM_TILE, tt = t0 + tl;
            xs[k][tl][tx] = (tt < p.frames && fx < p.fo) ? cm_load(xc + k * xplane + (long long)tt * p.fo + fx) : 0.0f;
        }
        if (tid < nout) wsm[tid] = w[(o0 + tid) * p.cin + c];
        __syncthreads();
        // Lane ↔ t: spec reads and output writes are time-contiguous.
        const T* re_p = specb + (long long)c * 2 * ft + t;
#pragma unroll
        for (int j = 0; j < CM_FPT; ++j) {
            const int fl = ty + CM_ROWS * j, f = f0 + fl;
            float yr = 0.0f, yi = 0.0f;
            const bool ok = t_ok && f < p.freq;
            if (ok) cm_bin(cm_load(re_p + (long long)f * p.frames), cm_load(re_p + ft + (long long)f * p.frames), xs[0][tx][fl], xs[1][tx][fl], xs[2][tx][fl], yr, yi);
            if (p.has_out_conv) {
#pragma unroll
                for (int o = 0; o < CM_OCHUNK; ++o) {
                    if (o < nout) {
                        acc_r[o][j] = __fadd_rn(acc_r[o][j], __fmul_rn(wsm[o], yr));
                        acc_i[o][j] = __fadd_rn(acc_i[o][j], __fmul_rn(wsm[o], yi));
                    }
                }
            } else if (ok) {
                float* oc = outbs + (long long)c * 2 * ft + (long long)f * p.frames + t;
                oc[0] = __fmul_rn(g, yr);
                oc[ft] = __fmul_rn(g, yi);
            }
        }
        __syncthreads();  // before the next channel overwrites xs and wsm
    }

    if (p.has_out_conv && t_ok) {
#pragma unroll
        for (int o = 0; o < CM_OCHUNK; ++o) {
            if (o >= nout) break;
            float* oo = outbs + (long long)(o0 + o) * 2 * ft + t;
#pragma unroll
            for (int j = 0; j < CM_FPT; ++j) {
                const int f = f0 + ty + CM_ROWS * j;
                if (f < p.freq) {
                    oo[(long long)f * p.frames] = __fmul_rn(g, acc_r[o][j]);
                    oo[ft + (long long)f * p.frames] = __fmul_rn(g, acc_i[o][j]);
                }
            }
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// mag_input v1. Launch: grid (⌈T′/32⌉, ⌈(F − 1)/32⌉, P = B·C) × block (32, 8). A block owns the
// 32 (t) × 32 (f) tile at (blockIdx.x·32, blockIdx.y·32) of plane blockIdx.z; thread (tx, ty) loads
// (f = f0 + ty + 8k, t = t0 + tx) and writes (t = t0 + ty + 8k, f = f0 + tx), k < 4. Shared:
// tile[32][33] + scale/shift[32], 4.4 KiB. Pointers: spec [P, 2, F, T] f32, scale [F], shift [F],
// out [P, T′, F − 1].
extern "C" __global__ void __launch_bounds__(CM_TILE * CM_ROWS) mag_input_fwd_f32_v1(const float* __restrict__ spec, const float* __restrict__ scale,
                                                                                    const float* __restrict__ shift, float* __restrict__ out,
                                                                                    const MagInputParams p) {
    __shared__ float tile[CM_TILE][CM_TILE + 1];  // [f_local][t_local]: |X|
    __shared__ float ssc[CM_TILE], ssh[CM_TILE];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int t0 = blockIdx.x * CM_TILE, f0 = blockIdx.y * CM_TILE, pl = blockIdx.z;
    const long long ft = (long long)p.freq * p.frames;
    const float* re = spec + (long long)pl * 2 * ft;
    if (ty == 0 && f0 + tx < p.fo) {
        ssc[tx] = scale[f0 + tx];
        ssh[tx] = shift[f0 + tx];
    }
    // Load: lane ↔ t (spec rows are time-contiguous).
    const int t = t0 + tx;
    if (t < p.frames) {
        for (int k = ty; k < CM_TILE; k += CM_ROWS) {
            const int f = f0 + k;
            if (f < p.fo) tile[k][tx] = cm_mag(re[(long long)f * p.frames + t], re[ft + (long long)f * p.frames + t]);
        }
    }
    __syncthreads();
    // Write: lane ↔ f (output rows are frequency-contiguous); bn0, then zeros past T.
    const int f = f0 + tx;
    if (f < p.fo) {
        const float sc = ssc[tx], sh = ssh[tx];
        float* o = out + (long long)pl * p.net_frames * p.fo + f;
        for (int k = ty; k < CM_TILE; k += CM_ROWS) {
            const int tt = t0 + k;
            if (tt < p.net_frames) o[(long long)tt * p.fo] = tt < p.frames ? __fadd_rn(__fmul_rn(tile[tx][k], sc), sh) : 0.0f;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// complex_mask v1 (f32 and f16 storage). Launch: grid (⌈T/32⌉, ⌈F/32⌉, B·S·K) × block (32, 8),
// K = ⌈O/CM_OCHUNK⌉ (= O) with out_conv, else 1; blockIdx.z = (b·S + s)·K + chunk. A block owns
// frames t0..t0+32, bins f0..f0+32 of item b, target s, outputs o0 = CM_OCHUNK·chunk ..
// o0 + CM_OCHUNK (all C outputs without out_conv); thread (tx, ty) owns t = t0 + tx and
// f = f0 + ty + 8j, j < 4. Shared: x tile [3][32][33] f32 (12.4 KiB) + W/bias/gate. Pointers: spec [B, C, 2, F, T] and x
// [B, S·C·3, T′, F − 1] (float or __half), w [O, C], bias [O] (null without out_conv), gate [B, S]
// (null without a gate), out [B, S, O, 2, F, T] f32.
#define COMPLEX_MASK_V1(dt, T)                                                                                                  \
    extern "C" __global__ void __launch_bounds__(CM_TILE * CM_ROWS)                                                            \
        complex_mask_fwd_##dt##_v1(const T* __restrict__ spec, const T* __restrict__ x, const float* __restrict__ w,          \
                                   const float* __restrict__ bias, const float* __restrict__ gate, float* __restrict__ out,    \
                                   const ComplexMaskParams p) {                                                                 \
        __shared__ float xs[3][CM_TILE][CM_TILE + 1];                                                                           \
        __shared__ float wsm[CM_OCHUNK], bsm[CM_OCHUNK], gsm[1];                                                                \
        complex_mask_v1<T>(spec, x, w, bias, gate, out, p, xs, wsm, bsm, gsm);                                                  \
    }

COMPLEX_MASK_V1(f32, float)
COMPLEX_MASK_V1(f16, __half)

// ---------------------------------------------------------------------------------------------
// Backward (spec and gate are constants: gradients of x, W and bias only; f32). With
// G_r[c] = gate·Σ_o W[o, c]·grad_re[o] (gate·grad_re[c] without out_conv), G_i likewise, per bin:
//   dA = G_r·(cos·mc − sin·ms) + G_i·(sin·mc + cos·ms),  dmc = A·(G_r·cos + G_i·sin),
//   dms = A·(G_i·cos − G_r·sin),  dmm = dA·|X| where |X|·mm > 0 (relu) else 0,  dx0 = dmm·mm·(1 − mm),
//   n = sqrt(mr² + mi²) ≥ 1e-10: dmr = dmc/n − mr·(dmc·mr + dms·mi)/n³ (dmi likewise), evaluated as
//   dmr = mi·k, dmi = −mr·k, k = (dmc·mi − dms·mr)/n³; else dmr = dmc/1e-10 (the clamp);
//   dx1 = dmr·(1 − mr²), dx2 = dmi·(1 − mi²); dx = 0 at padded frames t ≥ T.
//   dW[o, c] = Σ_{b,s,f<F,t<T} gate·(grad_re[o]·y_re[c] + grad_im[o]·y_im[c]),
//   dbias[o] = Σ_{b,s,f<F,t<T} gate·(grad_re[o] + grad_im[o]).
// Versions:
//   data v1 — one thread per dx element (b, s, c, t < T′, f < F − 1), f fastest (coalesced x reads
//     and dx writes; spec and grad reads strided by T: a naive port of the CPU). O·2 + 5 loads.
//   weight v1 — deterministic two-pass reduction: complex_mask_weight_bwd_f32_v1 writes one partial
//     sum per (block chunk, output (o, c) or bias o) over a fixed grid-stride of the (b, s, f, t)
//     bins (t fastest: coalesced), complex_mask_wsum_bwd_f32_v1 sums each output's partials in
//     chunk order. No atomics.

namespace {

// One bin of one channel: y = (yr, yi) and dx0..dx2 from the upstream (gr, gi) (already gated and
// mixed through W). The CPU's mask_bin_bwd.
__device__ __forceinline__ void cm_bin_bwd(float re, float im, float x0, float x1, float x2, float gr, float gi, float& yr, float& yi,
                                           float& d0, float& d1, float& d2) {
    const float mag = cm_mag(re, im);
    const float cs = re / mag, sn = im / mag;
    const float mm = 1.0f / (1.0f + expf(-x0));
    const float mr = tanhf(x1), mi = tanhf(x2);
    const float n = sqrtf(mr * mr + mi * mi);
    const float mn = fmaxf(n, 1e-10f);
    const float mc = mr / mn, ms = mi / mn;
    const float am = mag * mm;
    const float a = fmaxf(am, 0.0f);
    const float pr = cs * mc - sn * ms, pi = sn * mc + cs * ms;
    const float da = gr * pr + gi * pi;
    const float dmc = a * (gr * cs + gi * sn);
    const float dms = a * (gi * cs - gr * sn);
    const float dmm = am > 0.0f ? da * mag : 0.0f;
    float dmr, dmi;
    if (n >= 1e-10f) {
        // dmc/n − mr·(dmc·mr + dms·mi)/n³ = mi·k, dms/n − mi·(…)/n³ = −mr·k (n² = mr² + mi²): the
        // tangential part only, without the long form's cancellation. As the CPU.
        const float k = (dmc * mi - dms * mr) / (n * n * n);
        dmr = mi * k;
        dmi = -mr * k;
    } else {
        dmr = dmc / 1e-10f;
        dmi = dms / 1e-10f;
    }
    yr = a * pr;
    yi = a * pi;
    d0 = dmm * mm * (1.0f - mm);
    d1 = dmr * (1.0f - mr * mr);
    d2 = dmi * (1.0f - mi * mi);
}

}  // namespace

// data v1. Launch: 1-D grid × 256, grid-stride over B·S·C·T′·(F − 1) (dx's layout, f fastest); a
// thread owns dx0..dx2 of one (b, s, c, t, f). Pointers: spec [B, C, 2, F, T], x [B, S·C·3, T′, F − 1],
// w [O, C] (null without out_conv), gate [B, S] (null without a gate), grad [B, S, O, 2, F, T],
// dx [B, S·C·3, T′, F − 1]. Bytes per thread (t < T): 12 (x) + 8 (spec) + 8·O (grad) + 4·O (W,
// cached) read, 12 written.
extern "C" __global__ void complex_mask_data_bwd_f32_v1(const float* __restrict__ spec, const float* __restrict__ x, const float* __restrict__ w,
                                                       const float* __restrict__ gate, const float* __restrict__ grad, float* __restrict__ dx,
                                                       const ComplexMaskParams p) {
    const int fo = p.fo, tp = p.net_frames, C = p.cin, F = p.freq, T = p.frames;
    const long long ft = (long long)F * T;
    const long long xplane = (long long)tp * fo;
    const long long total = (long long)p.batch * p.targets * C * xplane;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < total; idx += (long long)gridDim.x * blockDim.x) {
        const int f = (int)(idx % fo);
        const int t = (int)((idx / fo) % tp);
        const int c = (int)((idx / xplane) % C);
        const long long bs = idx / (xplane * C);
        const long long b = bs / p.targets;
        float* d = dx + (bs * C + c) * 3 * xplane + (long long)t * fo + f;
        if (t >= T) {
            d[0] = 0.0f;
            d[xplane] = 0.0f;
            d[2 * xplane] = 0.0f;
            continue;
        }
        const float gv = p.has_gate ? gate[bs] : 1.0f;
        const float* gb = grad + bs * p.cout * 2 * ft + (long long)f * T + t;
        float gr = 0.0f, gi = 0.0f;
        if (p.has_out_conv) {
            for (int o = 0; o < p.cout; ++o) {
                const float wv = w[o * C + c];
                gr += wv * gb[(long long)(2 * o) * ft];
                gi += wv * gb[(long long)(2 * o + 1) * ft];
            }
        } else {
            gr = gb[(long long)(2 * c) * ft];
            gi = gb[(long long)(2 * c + 1) * ft];
        }
        const float* sp = spec + (b * C + c) * 2 * ft + (long long)f * T + t;
        const float* xc = x + (bs * C + c) * 3 * xplane + (long long)t * fo + f;
        float yr, yi, d0, d1, d2;
        cm_bin_bwd(sp[0], sp[ft], xc[0], xc[xplane], xc[2 * xplane], gv * gr, gv * gi, yr, yi, d0, d1, d2);
        d[0] = d0;
        d[xplane] = d1;
        d[2 * xplane] = d2;
    }
}

#define CM_WBWD_THREADS 256

// weight v1, pass 1. Launch: grid (P = p.chunks, O·(C + 1)) × 256. Block (q, j) owns output j =
// o·(C + 1) + c (c = C: the bias) and the bins n = q·256 + tid + k·P·256 of the B·S·F·T (b, s, f, t)
// bins (t fastest); it writes partial[j·P + q]. Pointers: spec, x, gate, grad as in data v1;
// partial [O·(C + 1), P]. Bytes per bin and block: 8 (grad) + 8 (spec) + 12 (x) read (the bias
// blocks: 8).
extern "C" __global__ void __launch_bounds__(CM_WBWD_THREADS)
    complex_mask_weight_bwd_f32_v1(const float* __restrict__ spec, const float* __restrict__ x, const float* __restrict__ gate,
                                   const float* __restrict__ grad, float* __restrict__ partial, const ComplexMaskParams p) {
    __shared__ float red[CM_WBWD_THREADS / 32];
    const int C = p.cin, F = p.freq, T = p.frames, fo = p.fo, tp = p.net_frames;
    const int q = blockIdx.x, j = blockIdx.y, P = gridDim.x;
    const int o = j / (C + 1), c = j % (C + 1);
    const long long ft = (long long)F * T;
    const long long xplane = (long long)tp * fo;
    const long long total = (long long)p.batch * p.targets * ft;
    float acc = 0.0f;
    for (long long n = (long long)q * CM_WBWD_THREADS + threadIdx.x; n < total; n += (long long)P * CM_WBWD_THREADS) {
        const int t = (int)(n % T), f = (int)((n / T) % F);
        const long long bs = n / ft, b = bs / p.targets;
        const float gv = p.has_gate ? gate[bs] : 1.0f;
        const float* gb = grad + (bs * p.cout + o) * 2 * ft + (long long)f * T + t;
        const float gr = gb[0], gi = gb[ft];
        if (c == C) {
            acc += gv * (gr + gi);
        } else {
            const float* sp = spec + (b * C + c) * 2 * ft + (long long)f * T + t;
            float x0 = 0.0f, x1 = 0.0f, x2 = 0.0f;
            if (f < fo) {
                const float* xc = x + (bs * C + c) * 3 * xplane + (long long)t * fo + f;
                x0 = xc[0];
                x1 = xc[xplane];
                x2 = xc[2 * xplane];
            }
            float yr, yi;
            cm_bin(sp[0], sp[ft], x0, x1, x2, yr, yi);
            acc += gv * (gr * yr + gi * yi);
        }
    }
    acc = warp_sum(acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) red[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int k = 0; k < CM_WBWD_THREADS / 32; ++k) s += red[k];
        partial[(long long)j * P + q] = s;
    }
}

// weight v1, pass 2. Launch: 1-D grid × 256 over J = O·(C + 1) outputs; thread j sums its P =
// p.chunks partials in order and writes dw[o·C + c] (c < C) or dbias[o] (c = C). Pointers: partial
// [J, P], dw [O, C], dbias [O]. Bytes: 4·J·P read, 4·J written.
extern "C" __global__ void complex_mask_wsum_bwd_f32_v1(const float* __restrict__ partial, float* __restrict__ dw, float* __restrict__ dbias,
                                                       const ComplexMaskParams p) {
    const int C = p.cin, J = p.cout * (C + 1), P = p.chunks;
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < J; j += gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (int q = 0; q < P; ++q) s += partial[(long long)j * P + q];
        const int o = j / (C + 1), c = j % (C + 1);
        if (c == C) {
            dbias[o] = s;
        } else {
            dw[o * C + c] = s;
        }
    }
}
