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
