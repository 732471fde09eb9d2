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
// Backward (issue #18), dy [B, O, Ho, Wo]:
//   da[b, c, h, w] = Σ_{o, i, j} W[c, o, i, j]·dy[b, o, h·sh + i, w·sw + j]
//   dW[c, o, i, j] = Σ_{b, h, w} a[b, c, h, w]·dy[b, o, h·sh + i, w·sw + j]
//   with z recomputed as above (z includes + t for Add) and leaky'(z) = z > 0 ? 1 : slope (PyTorch):
//   dz = da·leaky'(z) (no time / Add) or da·t·leaky'(z) (Gate); dx = dz·scale[c] (no pre: dx = da).
//   dscale, dshift and dt (Σ_w dz for Add, Σ_w da·leaky(z) for Gate) are reductions of the per-element
//   dz, dz·x and da·leaky(z) that data_bwd writes; the launcher reduces them on the device with the
//   runtime's binary::mul and reduce::sum ops (v1; no host round trip).
//   data_bwd v1 — one thread per input element (b, c, h, w) (w fastest): the O·sh·sw-long dot
//        product over its output pixels, then the pre-activation terms. Writes dx, and with has_pre
//        dz and a (the activation, the rows weight_bwd reads), and for Gate g = da·leaky(z).
//        Bytes (minimum): 4·(B·O·Ho·Wo + C·O·sh·sw + B·C·H·W·(1 + has_pre)) read, 4·B·C·H·W·(1 + 2·has_pre
//        + gate) written; flops 2·B·C·H·W·O·sh·sw.
//   weight_bwd v1 — one 256-thread block per weight element (c, o, i, j): a strided loop over the
//        B·H·W source pixels, then a warp-shuffle + shared-memory block sum (fixed order, deterministic).
//        Every a and dy element is read O·sh·sw and C times resp. (through L2). Flops 2·B·C·H·W·O·sh·sw.
//   Not done (yet): both as GEMMs (the CPU forward's formulation) with smem tiles.
//
// Forward bytes per launch as the emulator counts them (every load and store), with N = B·O·(H·sh)·(W·sw):
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

// data_bwd v1. Launch: grid (⌈B·C·H·W / 256⌉) × block (256), every size < 2^31 (checked on the host).
// Thread i owns the input element (b, c, h, w) = i (flattened NCHW). Pointers: x [B, C, H, W],
// w [C, O, sh, sw], scale [C] / shift [C] or [B, C] (read only when has_pre), time [B, C, H] (read only
// when time_mode ≠ 0), dy [B, O, Ho, Wo]; out: dx [B, C, H, W]; dz, act [B, C, H, W] (written only when
// has_pre); gt [B, C, H, W] (da·leaky(z), written only when time_mode = 2).
extern "C" __global__ void __launch_bounds__(256)
    conv_transpose_data_bwd_f32_v1(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ scale,
                                   const float* __restrict__ shift, const float* __restrict__ time, const float* __restrict__ dy,
                                   float* __restrict__ dx, float* __restrict__ dz, float* __restrict__ act, float* __restrict__ gt,
                                   const ConvTransposeParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int n = p.batch * p.cin * p.h * p.w;
    if (i >= n) return;
    const int wi = i % p.w;
    const int hi = (i / p.w) % p.h;
    const int bc = i / (p.w * p.h);  // b·C + c
    const int c = bc % p.cin, b = bc / p.cin;
    const int taps = p.sh * p.sw;
    // All offsets fit in int (every tensor < 2^31 elements, checked on the host).
    const float* wp = w + c * p.cout * taps;
    const int plane = p.ho * p.wo;
    const float* gp = dy + b * p.cout * plane + hi * p.sh * p.wo + wi * p.sw;
    float da = 0.0f;
    for (int o = 0; o < p.cout; ++o, gp += plane, wp += taps) {
        for (int r = 0; r < p.sh; ++r)
            for (int s = 0; s < p.sw; ++s) da = fmaf(wp[r * p.sw + s], gp[r * p.wo + s], da);
    }
    if (!p.has_pre) {
        dx[i] = da;
        return;
    }
    const float xv = x[i];
    float z = __fadd_rn(__fmul_rn(xv, scale[c]), shift[(long long)b * p.shift_bstride + c]);
    const float t = p.time_mode ? time[(long long)bc * p.h + hi] : 0.0f;
    if (p.time_mode == 1) z = __fadd_rn(z, t);
    const float lz = z < 0.0f ? __fmul_rn(z, p.slope) : z;
    const float dl = z > 0.0f ? 1.0f : p.slope;
    float d;
    if (p.time_mode == 2) {
        act[i] = __fmul_rn(lz, t);
        gt[i] = __fmul_rn(da, lz);
        d = __fmul_rn(__fmul_rn(da, t), dl);
    } else {
        act[i] = lz;
        d = __fmul_rn(da, dl);
    }
    dz[i] = d;
    dx[i] = __fmul_rn(d, scale[c]);
}

// weight_bwd v1. Launch: grid (C·O·sh·sw) × block (256). Block k owns dW[k] = dW[c, o, r, s]
// (flattened); its threads stride over the B·H·W source pixels, then sum (warp shuffles, then warp 0
// over the 8 warp sums). Pointers: a [B, C, H, W] (the activation, or x without pre-activation),
// dy [B, O, Ho, Wo], dw [C, O, sh, sw].
extern "C" __global__ void __launch_bounds__(256) conv_transpose_weight_bwd_f32_v1(const float* __restrict__ a, const float* __restrict__ dy,
                                                                                   float* __restrict__ dw, const ConvTransposeParams p) {
    __shared__ float s_part[8];
    const int k = blockIdx.x;
    const int taps = p.sh * p.sw;
    const int s = k % p.sw, r = (k / p.sw) % p.sh;
    const int co = k / taps;  // c·O + o
    const int o = co % p.cout, c = co / p.cout;
    const int hw = p.h * p.w;
    const int n = p.batch * hw;
    float acc = 0.0f;
    for (int q = threadIdx.x; q < n; q += blockDim.x) {
        const int b = q / hw, pix = q - b * hw;
        const int hi = pix / p.w, wi = pix - hi * p.w;
        const float av = a[((long long)b * p.cin + c) * hw + pix];
        const float gv = dy[(((long long)b * p.cout + o) * p.ho + (long long)hi * p.sh + r) * p.wo + (long long)wi * p.sw + s];
        acc = fmaf(av, gv, acc);
    }
    acc = warp_sum(acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) s_part[warp] = acc;
    __syncthreads();
    if (warp == 0) {
        float v = lane < (int)(blockDim.x >> 5) ? s_part[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) dw[k] = v;
    }
}
