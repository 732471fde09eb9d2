// resize.cu — bilinear resizing of (N, C, H, W) maps, exactly F.interpolate(x, size=(Ho, Wo),
// mode='bilinear', align_corners=False) (no antialias), with an optional fused pre-activation: the
// CP-JKU separator's time-FiLM upsampling (B, C, 250, 1) → (B, C, T, 1) and its embedding injection
// (B, 768, 62, 5) → (B, 768, T', F') after BatchNorm + LeakyReLU.
//
// Math, per axis (in → out, f32): scale = in / out; src = max(scale·(d + 0.5) − 0.5, 0);
// i0 = min(⌊src⌋, in − 1); λ = clamp(src − i0, 0, 1); i1 = min(i0 + 1, in − 1).
// a = x, or leaky(x·scale_c[c] + shift[n·shift_stride + c], slope) with the pre-activation (flags bit 0),
// leaky(v) = v < 0 ? slope·v : v;
// out[p, oh, ow] = ((1−λw)·a[i0h, i0w] + λw·a[i0h, i1w])·(1−λh) + ((1−λw)·a[i1h, i0w] + λw·a[i1h, i1w])·λh.
// Every product and sum is rounded separately (__fmul_rn / __fadd_rn: no FMA contraction), in the
// CPU's order, so the kernel is bit-identical to runtime/src/ops/resize/cpu.rs.
// Layouts: x [P, H, W] (P = N·C planes, p = n·C + c), out [P, Ho, Wo]; scale_c [C]; shift [C] or [N, C].
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style):
//   v1 — one thread per output element, 1-D grid of 256-thread blocks over the flattened output (ow
//        fastest). Each thread recomputes its two axis coordinates (a few flops) and reads its four
//        taps; neighbouring threads share taps, which L1/L2 serve. Memory-bound: the output is written
//        once, the input is read about once from DRAM (upsampling) or partly skipped (downsampling).
//   Not yet: axis tables in shared memory, or several outputs per thread along W.
//
// Bytes per launch (minimum): 4·P·H·W read (upsampling; downsampling reads only the tapped rows and
// columns) + 4·P·Ho·Wo written (+ 4·C + 4·C or 4·N·C for the pre-activation).
// Flops: about 10 per output (+ 12 with the pre-activation: four taps).

#include "common.cuh"

struct ResizeParams {
    int planes;     // N·C
    int channels;   // C (pre-activation channel index: p mod C)
    int h, w;       // input
    int ho, wo;     // output
    float scale_h;  // H / Ho (f32 division, as PyTorch computes it)
    float scale_w;  // W / Wo
    float slope;    // LeakyReLU negative slope (pre-activation)
    int flags;      // bit 0: pre-activation; bit 1: shift is [N, C]
};
static_assert(sizeof(ResizeParams) == 40, "ResizeParams must match runtime/src/ops/resize/cuda.rs");

namespace {

// The source taps and weights of output index d along an axis of `in` samples.
__device__ __forceinline__ void rs_axis(int d, int in, float scale, int& i0, int& i1, float& l) {
    float src = __fadd_rn(__fmul_rn(scale, __fadd_rn((float)d, 0.5f)), -0.5f);
    if (src < 0.0f) src = 0.0f;
    i0 = min((int)floorf(src), in - 1);
    l = fminf(fmaxf(__fadd_rn(src, -(float)i0), 0.0f), 1.0f);
    i1 = min(i0 + 1, in - 1);
}

__device__ __forceinline__ float rs_act(float v, bool pre, float sc, float sh, float slope) {
    if (!pre) return v;
    const float a = __fadd_rn(__fmul_rn(v, sc), sh);
    return a < 0.0f ? __fmul_rn(a, slope) : a;
}

}  // namespace

// v1. Launch: grid (⌈P·Ho·Wo / 256⌉) × block (256); P·H·W and P·Ho·Wo < 2^31 (checked on the host).
// Thread i owns out[i] = out[p, oh, ow] (flattened, ow fastest).
// Pointers: x [P, H, W]; scale_c [C] and shift [C] or [N, C] (read only with flags bit 0; else any
// valid address); out [P, Ho, Wo].
extern "C" __global__ void __launch_bounds__(256) resize_bilinear_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ scale_c,
                                                                             const float* __restrict__ shift, float* __restrict__ out,
                                                                             const ResizeParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int n_out = p.planes * p.ho * p.wo;
    if (i >= n_out) return;
    const int ow = i % p.wo;
    const int oh = (i / p.wo) % p.ho;
    const int pl = i / (p.wo * p.ho);
    const bool pre = p.flags & 1;
    float sc = 0.0f, sh = 0.0f;
    if (pre) {
        const int c = pl % p.channels;
        sc = scale_c[c];
        sh = (p.flags & 2) ? shift[pl] : shift[c];  // [N, C] row-major: index n·C + c = pl
    }
    int h0, h1, w0, w1;
    float lh, lw;
    rs_axis(oh, p.h, p.scale_h, h0, h1, lh);
    rs_axis(ow, p.w, p.scale_w, w0, w1, lw);
    const float* src = x + (long long)pl * p.h * p.w;
    const float a00 = rs_act(src[h0 * p.w + w0], pre, sc, sh, p.slope);
    const float a01 = rs_act(src[h0 * p.w + w1], pre, sc, sh, p.slope);
    const float a10 = rs_act(src[h1 * p.w + w0], pre, sc, sh, p.slope);
    const float a11 = rs_act(src[h1 * p.w + w1], pre, sc, sh, p.slope);
    const float mw = __fadd_rn(1.0f, -lw), mh = __fadd_rn(1.0f, -lh);
    const float t0 = __fadd_rn(__fmul_rn(a00, mw), __fmul_rn(a01, lw));
    const float t1 = __fadd_rn(__fmul_rn(a10, mw), __fmul_rn(a11, lw));
    out[i] = __fadd_rn(__fmul_rn(t0, mh), __fmul_rn(t1, lh));
}

// ---------------------------------------------------------------------------------------------------
// Backward (runtime/src/ops/resize/backward.rs). The interpolation's adjoint as a gather: input element
// (p, h, w) sums the output gradients that tap it, da = Σ_{(oh, wh) ∈ H[h]} wh·(Σ_{(ow, ww) ∈ W[w]} ww·dy[p, oh, ow]),
// over the per-axis inverse tap lists built on the host (CSR: for input index i, the output indices d
// with i0(d) = i (weight 1 − λ) or i1(d) = i (weight λ), d ascending). No atomics: deterministic, and
// every product and sum is rounded separately in the CPU's order (bit-identical da).
// With the pre-activation (flags bit 0): z = x·scale_c[c] + shift (as the forward), dz = da·(z > 0 ? 1 : slope),
// dx = dz·scale_c[c], and per plane psc[p] = Σ dz·x, psh[p] = Σ dz (f64 block sums, stored as f32; the
// host reduces them over items).
// Layouts: dy [P, Ho, Wo]; x, dx [P, H, W]; tab i32 [off_h (H + 1) | idx_h (2·Ho) | off_w (W + 1) | idx_w (2·Wo)];
// wt f32 [wt_h (2·Ho) | wt_w (2·Wo)]; psc, psh [P].
//
// Versions:
//   v1 — one 256-thread block per plane; thread t handles input elements t, t + 256, … of it, each
//        reading its taps' output gradients (about (Ho/H)·(Wo/W) + a few values; neighbours share them
//        through L1/L2). Then one block reduction for the pre-activation sums (written inline: with
//        common.cuh's block_sum_f64 ptxas kept a call frame and spilled).
//
// Bytes per launch (minimum): 4·P·Ho·Wo read (dy) + 4·P·H·W written (+ 4·P·H·W read of x and 8·P
// written with the pre-activation) + the tables (≈ 12·(Ho + Wo)).
// Flops: about 2 per (input, tap) pair, i.e. ≈ 8 per output gradient (+ 6 per input with the pre-activation).

// v1. Launch: grid (P) × block (256). Block p owns plane p of dx (and psc[p], psh[p]).
// Pointers: dy [P, Ho, Wo]; x [P, H, W] (read with flags bit 0); scale_c [C] and shift [C] or [N, C]
// (read only with flags bit 0; else any valid address); tab, wt the tables above; dx [P, H, W];
// psc, psh [P] (written only with flags bit 0).
extern "C" __global__ void __launch_bounds__(256)
    resize_bilinear_data_bwd_f32_v1(const float* __restrict__ dy, const float* __restrict__ x, const float* __restrict__ scale_c,
                                    const float* __restrict__ shift, const int* __restrict__ tab, const float* __restrict__ wt,
                                    float* __restrict__ dx, float* __restrict__ psc, float* __restrict__ psh, const ResizeParams p) {
    const int pl = blockIdx.x;
    const int hw = p.h * p.w;
    const int* off_h = tab;
    const int* idx_h = off_h + p.h + 1;
    const int* off_w = idx_h + 2 * p.ho;
    const int* idx_w = off_w + p.w + 1;
    const float* wt_h = wt;
    const float* wt_w = wt + 2 * p.ho;
    const float* g = dy + (long long)pl * p.ho * p.wo;
    const float* xp = x + (long long)pl * hw;
    float* d = dx + (long long)pl * hw;
    const bool pre = p.flags & 1;
    float sc = 0.0f, sh = 0.0f;
    if (pre) {
        const int c = pl % p.channels;
        sc = scale_c[c];
        sh = (p.flags & 2) ? shift[pl] : shift[c];
    }
    double v[2] = {0.0, 0.0};
    for (int j = threadIdx.x; j < hw; j += blockDim.x) {
        const int h = j / p.w, w = j % p.w;
        float da = 0.0f;
        for (int eh = off_h[h]; eh < off_h[h + 1]; ++eh) {
            const float* row = g + (long long)idx_h[eh] * p.wo;
            float acc = 0.0f;
            for (int ew = off_w[w]; ew < off_w[w + 1]; ++ew) acc = __fadd_rn(acc, __fmul_rn(wt_w[ew], row[idx_w[ew]]));
            da = __fadd_rn(da, __fmul_rn(wt_h[eh], acc));
        }
        if (pre) {
            const float xv = xp[j];
            const float z = __fadd_rn(__fmul_rn(xv, sc), sh);
            const float dz = z > 0.0f ? da : __fmul_rn(da, p.slope);
            v[0] += (double)dz * (double)xv;
            v[1] += (double)dz;
            d[j] = __fmul_rn(dz, sc);
        } else {
            d[j] = da;
        }
    }
    if (pre) {  // uniform over the block: every thread reaches the barrier
        // Block sums written out inline (warp butterflies, then thread 0 adds the warps in order):
        // the shared block_sum_f64 helper, not inlined here, cost a call frame and register spills.
        __shared__ double part[2][32];
        for (int o = 16; o > 0; o >>= 1) {
            v[0] += __shfl_xor_sync(0xffffffffu, v[0], o);
            v[1] += __shfl_xor_sync(0xffffffffu, v[1], o);
        }
        if ((threadIdx.x & 31) == 0) {
            part[0][threadIdx.x >> 5] = v[0];
            part[1][threadIdx.x >> 5] = v[1];
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            double a = 0.0, b = 0.0;
            for (int k = 0; k < (int)(blockDim.x >> 5); ++k) {
                a += part[0][k];
                b += part[1][k];
            }
            psc[pl] = (float)a;
            psh[pl] = (float)b;
        }
    }
}
