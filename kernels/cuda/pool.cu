// pool.cu — 2-D average pooling with kernel = stride and no padding (F.avg_pool2d(x, (kh, kw)),
// ceil_mode = False): ResUNet30's encoder downsampling, (2, 2) and (1, 2) over (time, frequency).
//
// Math (NCHW): out[p, oh, ow] = (Σ_{i<kh} Σ_{j<kw} x[p, oh·kh + i, ow·kw + j]) / (kh·kw), p = b·C + c;
// Ho = ⌊H / kh⌋, Wo = ⌊W / kw⌋ (a trailing partial window is dropped, never read). The sum is
// accumulated in f32 in (i, j) order starting from 0 and then divided (IEEE division) by the f32
// value kh·kw — exactly the CPU's operations in the CPU's order, so the results are bit-identical.
// Layouts: x [P, H, W] (P = B·C planes), out [P, Ho, Wo]. f32.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style):
//   v1 — one thread per output element, 1-D grid of 256-thread blocks over the flattened output (ow
//        fastest: a warp writes 32 consecutive floats and reads kh rows of 32·kw consecutive floats).
//        Memory-bound; every input element inside the pooled area is read exactly once.
//
// Backward (issue #18), dx[p, h, w] = dy[p, h / kh, w / kw] / (kh·kw) for h < Ho·kh, w < Wo·kw, else 0
// (the rows/columns the floor dropped); the same IEEE division as the CPU, so bit-identical:
//   bwd v1 — one thread per input element, 1-D grid of 256-thread blocks over the flattened dx (w
//        fastest: a warp writes 32 consecutive floats and reads ⌈32/kw⌉ consecutive dy floats).
//        Bytes: 4·P·Ho·Wo read (each dy element by kh·kw threads, from cache) + 4·P·H·W written.
//
// Bytes per launch (counted = minimum): 4·P·Ho·Wo·kh·kw read + 4·P·Ho·Wo written.
// Flops: P·Ho·Wo·kh·kw (adds and the division).

#include "common.cuh"

struct PoolParams {
    int planes, h, w;
    int kh, kw;
    int ho, wo;
    int _pad;
};
static_assert(sizeof(PoolParams) == 32, "PoolParams must match runtime/src/ops/pool/cuda.rs");

// v1. Launch: grid (⌈P·Ho·Wo / 256⌉) × block (256); P·H·W and P·Ho·Wo < 2^31 (checked on the
// host). Thread i owns out[i] = out[p, oh, ow] (flattened). Pointers: x [P, H, W], out [P, Ho, Wo].
extern "C" __global__ void __launch_bounds__(256) avg_pool2d_fwd_f32_v1(const float* __restrict__ x, float* __restrict__ out,
                                                                        const PoolParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int n = p.planes * p.ho * p.wo;
    if (i >= n) return;
    const int ow = i % p.wo;
    const int oh = (i / p.wo) % p.ho;
    const int pl = i / (p.wo * p.ho);
    const float* src = x + ((long long)pl * p.h + (long long)oh * p.kh) * p.w + (long long)ow * p.kw;
    float s = 0.0f;
    for (int r = 0; r < p.kh; ++r)
        for (int c = 0; c < p.kw; ++c) s += src[(long long)r * p.w + c];
    out[i] = s / (float)(p.kh * p.kw);
}

// bwd v1. Launch: grid (⌈P·H·W / 256⌉) × block (256); P·H·W < 2^31 (checked on the host). Thread i
// owns dx[i] = dx[p, h, w] (flattened). Pointers: dy [P, Ho, Wo], dx [P, H, W].
extern "C" __global__ void __launch_bounds__(256) avg_pool2d_bwd_f32_v1(const float* __restrict__ dy, float* __restrict__ dx,
                                                                        const PoolParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    const int n = p.planes * p.h * p.w;
    if (i >= n) return;
    const int w = i % p.w;
    const int h = (i / p.w) % p.h;
    const int pl = i / (p.w * p.h);
    const int oh = h / p.kh, ow = w / p.kw;
    float v = 0.0f;
    if (oh < p.ho && ow < p.wo) v = dy[((long long)pl * p.ho + oh) * p.wo + ow] / (float)(p.kh * p.kw);
    dx[i] = v;
}
