// conv_transpose.cu — transposed 2-D convolution with kernel = stride and no padding (ResUNet30's
// decoder upsampling, ConvTranspose2d(C, O, kernel_size = stride = (sh, sw), bias = False)), with
// the decoder block's pre-activation (BatchNorm folded + FiLM β, the optional time-FiLM term, then
// LeakyReLU) fused into the read.
//
// Math (NCHW, H = time, W = frequency):
//   z[b, c, h, w] = x[b, c, h, w]·scale[c] + shift[b·shift_bstride + c]                   (has_pre)
//   a[b, c, h, w] = leaky(z, slope)                     time_mode 0 (no time-FiLM)
//                 = leaky(z + t[b, c, h], slope)        time_mode 1 (Add: CP-JKU's additive time-FiLM)
//                 = leaky(z, slope)·t[b, c, h]          time_mode 2 (Gate)
//   a = x                                               (no pre-activation; time_mode is then 0)
//   out[b, o, oh, ow] = Σ_c W[c, o, oh % sh, ow % sw] · a[b, c, oh / sh, ow / sw]
// Because kernel = stride, every output pixel has exactly one source pixel (oh/sh, ow/sw) and one
// kernel tap, its phase (oh % sh, ow % sw): a C-long dot product, no overlap-add.
// leaky(v) = v < 0 ? v·slope : v; each operation rounded on its own, in this order (x·scale, + shift,
// + t, the LeakyReLU product, ·t; no FMA), as the CPU does. t is per input row h (time, before the
// upsampling) and constant along W.
// Layouts: x [B, C, H, W]; W [C, O, sh, sw] (PyTorch's ConvTranspose2d weight); scale [C];
// shift [C] (shift_bstride = 0) or [B, C] (shift_bstride = C); time [B, C, H] (null when time_mode
// is 0); out [B, O, H·sh, W·sw]. f32, f32
// accumulation (fmaf, in channel order c = 0..C−1; the CPU's gemm sums in its own order).
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style):
//   v1 — one thread per output element (b, o, oh, ow), 1-D grid of 256-thread blocks over the
//        flattened output (ow fastest, so a warp writes 32 consecutive floats and reads ⌈32/sw⌉
//        consecutive source pixels per channel — neighbours of the same phase share them). The
//        channel loop reads x, the weight tap and (has_pre) scale/shift through L1/L2. The naive port
//        of the CPU reference: every source pixel is re-read O·sh·sw times (from cache).
//   Not done (yet): a tiled version that keeps the activated (C × pixels) tile in shared memory and
//   the (O·sh·sw × C) weight in registers/shared memory, i.e. the CPU's GEMM formulation. Decoder
//   block 6 (64 → 32 at 1008 × 256 → 2016 × 512) is 2.1 GFLOP per clip, small beside the 3×3 convs.
//
// Bytes per launch as the emulator counts them (every load and store), with N = B·O·(H·sh)·(W·sw):
//   4·N·(C·(2 + 2·has_pre + has_time) + 1)   (x, W, scale, shift, time per channel per output; the
//   output once), has_time = (time_mode ≠ 0).
// Minimum: 4·(B·C·H·W + C·O·sh·sw + has_pre·(C + |shift|) + has_time·B·C·H) read + 4·N written.
// Flops: 2·N·C (+ (3 + has_time)·N·C for the pre-activation, recomputed per output).

#include "common.cuh"

struct ConvTransposeParams {
    int batch, cin, h, w;
    int cout, sh, sw;
    int ho, wo;           // H·sh, W·sw
    int has_pre;          // 1: scale/shift/slope are used
    int shift_bstride;    // 0: shift is [C]; C: shift is [B, C]
    float slope;          // LeakyReLU negative slope
    int time_mode;        // 0: no time-FiLM (time null); 1: Add, leaky(z + t); 2: Gate, leaky(z)·t
};
static_assert(sizeof(ConvTransposeParams) == 52, "ConvTransposeParams must match runtime/src/ops/conv_transpose/cuda.rs");

// v1. Launch: grid (⌈N / 256⌉) × block (256), N = B·O·Ho·Wo < 2^31 (checked on the host). Thread
// i owns out[i] = out[b, o, oh, ow] (flattened NCHW). Pointers: x [B, C, H, W], w [C, O, sh, sw],
// scale [C] and shift [C] or [B, C] (read only when has_pre; may be null otherwise), time [B, C, H]
// (read only when time_mode ≠ 0; may be null otherwise), out [B, O, Ho, Wo].
extern "C" __global__ void __launch_bounds__(256) conv_transpose_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ w,
                                                                            const float* __restrict__ scale, const float* __restrict__ shift,
                                                                            const float* __restrict__ time, float* __restrict__ out,
                                                                            const ConvTransposeParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int n = p.batch * p.cout * p.ho * p.wo;
    if (i >= n) return;
    const int ow = i % p.wo;
    const int oh = (i / p.wo) % p.ho;
    const int bo = i / (p.wo * p.ho);  // b·O + o
    const int o = bo % p.cout, b = bo / p.cout;
    const int hi = oh / p.sh, wi = ow / p.sw;
    const int tap = (oh - hi * p.sh) * p.sw + (ow - wi * p.sw);  // (i, j) phase in the sh×sw kernel
    const long long hw = (long long)p.h * p.w;
    const float* xp = x + (long long)b * p.cin * hw + (long long)hi * p.w + wi;
    const float* wp = w + (long long)o * p.sh * p.sw + tap;
    const long long wstride = (long long)p.cout * p.sh * p.sw;  // between consecutive c
    float acc = 0.0f;
    if (p.has_pre) {
        const float* shp = shift + (long long)b * p.shift_bstride;
        // t[b, c, hi] = tp[c·H] (the source pixel's row).
        const float* tp = p.time_mode ? time + (long long)b * p.cin * p.h + hi : time;
        for (int c = 0; c < p.cin; ++c) {
            float a = __fadd_rn(__fmul_rn(xp[c * hw], scale[c]), shp[c]);
            if (p.time_mode == 1) a = __fadd_rn(a, tp[(long long)c * p.h]);
            a = a < 0.0f ? __fmul_rn(a, p.slope) : a;
            if (p.time_mode == 2) a = __fmul_rn(a, tp[(long long)c * p.h]);
            acc = fmaf(wp[c * wstride], a, acc);
        }
    } else {
        for (int c = 0; c < p.cin; ++c) acc = fmaf(wp[c * wstride], xp[c * hw], acc);
    }
    out[i] = acc;
}
