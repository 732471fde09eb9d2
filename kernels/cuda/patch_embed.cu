// patch_embed.cu — ViT/AST patch embedding, fused: im2col + GEMM + bias + position embedding, plus
// the prepended tokens (AST's cls and distillation tokens), writing the whole token tensor.
//
// Math: the input x is (B, T, M) = (batch, frames, mel) — AST's input_values; the conv sees the image
// img[b, m, t] = x[b, t, m] (HF: unsqueeze(1).transpose(2, 3)). With a kernel (ph over mel, pw over
// frames) and strides (fs, ts): F′ = (M − ph)/fs + 1, T′ = (T − pw)/ts + 1, patch p = f·T′ + t
// (frequency-major, HF's flatten(2)). Output rows r = 0..P+F′T′ (P prepended tokens):
//   out[b, r, n] = prefix[r, n] + pos[r, n]                                               (r < P)
//   out[b, r, n] = bias[n] + pos[r, n] + Σ_{i<ph, j<pw} W[n, i·pw + j] · x[b, t·ts + j, f·fs + i]
//                                                              (r ≥ P, p = r − P, f = p / T′, t = p % T′)
// pos is optional (has_pos). Layouts: x [B, T, M]; W [N, ph·pw] (Conv2d weight (N, 1, ph, pw)
// flattened); bias [N]; pos [P + F′T′, N]; prefix [P, N]; out [B, P + F′T′, N]. f32, f32 accumulation.
// The reduction runs over kk = j·ph + i (mel fastest), so consecutive threads gather consecutive
// mel bins of one frame (contiguous in x).
// Build: compiled at run time by NVRTC; under the emulator (kernels/emu) as C++.
//
// Versions (llm.c style):
//   v1 — naive fused: one thread per output element, the K loop gathering x and W from global memory
//        (L1/L2 catch the reuse). The port of the CPU reference.
//   v2 — tiled fused GEMM (as matmul v2): a 64×64 output tile per 256-thread block, K in steps of 16;
//        each step gathers the 64×16 im2col tile of x (zeros for prepended rows and past K) and the
//        16×64 weight tile into shared memory, 4×4 register micro-tiles, epilogue adds bias and pos
//        (or writes prefix + pos) in registers. No im2col matrix in global memory.
//   Not done (yet): an f16 WMMA version (the GEMM is only 2·1212·768·256 = 0.48 GFLOP per clip; the
//   encoder's GEMMs dominate).
//
// Measured (H100 80GB HBM3, `aural bench --op patch_embed --device cuda`, 1 clip, 1024 × 128 → 1212
// patches, N = 768, median per call incl. launch and sync): v1 0.539 ms, v2 0.072 ms (6.6 TFLOP/s).
//
// Flops per launch: 2·B·F′T′·N·ph·pw. Bytes (minimum): 4·(B·T·M + N·ph·pw + N + (P+F′T′)·N) read,
// 4·B·(P+F′T′)·N written.

#include "common.cuh"

struct PatchEmbedParams {
    int batch, frames, mel;
    int ph, pw, fs, ts;
    int fo, to;
    int n;        // output channels (hidden size)
    int prefix;   // prepended tokens P
    int has_pos;  // 1: pos is valid
    int kdim;     // ph·pw
    int rows;     // P + F′·T′
    int _pad0, _pad1;
};
static_assert(sizeof(PatchEmbedParams) == 64, "PatchEmbedParams must match runtime/src/ops/patch_embed/cuda.rs");

namespace {

// im2col element A(r, kk) of batch b's x (0 for prepended rows).
__device__ __forceinline__ float pe_load_a(const float* __restrict__ xb, int r, int kk, const PatchEmbedParams& p) {
    if (r < p.prefix) return 0.0f;
    const int pi = r - p.prefix;
    const int f = pi / p.to, t = pi % p.to;
    const int i = kk % p.ph, j = kk / p.ph;
    return xb[(long long)(t * p.ts + j) * p.mel + f * p.fs + i];
}
// W'(kk, n) in the same reduction order.
__device__ __forceinline__ float pe_load_w(const float* __restrict__ w, int kk, int n, const PatchEmbedParams& p) {
    const int i = kk % p.ph, j = kk / p.ph;
    return w[(long long)n * p.kdim + i * p.pw + j];
}
__device__ __forceinline__ float pe_epilogue(float acc, int r, int n, const float* __restrict__ bias, const float* __restrict__ pos,
                                             const float* __restrict__ prefix, const PatchEmbedParams& p) {
    float v = r < p.prefix ? prefix[(long long)r * p.n + n] : acc + bias[n];
    if (p.has_pos) v += pos[(long long)r * p.n + n];
    return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// v1. Launch: grid (⌈N/16⌉, ⌈rows/16⌉, B) × block (16, 16). Thread owns out[b, r, n] with
// r = blockIdx.y·16 + threadIdx.y, n = blockIdx.x·16 + threadIdx.x. Pointers as the header.
extern "C" __global__ void patch_embed_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ w,
                                                  const float* __restrict__ bias, const float* __restrict__ pos,
                                                  const float* __restrict__ prefix, float* __restrict__ out,
                                                  const PatchEmbedParams p) {
    const int r = blockIdx.y * blockDim.y + threadIdx.y;
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= p.rows || n >= p.n) return;
    const int b = blockIdx.z;
    const float* xb = x + (long long)b * p.frames * p.mel;
    float acc = 0.0f;
    if (r >= p.prefix)
        for (int kk = 0; kk < p.kdim; ++kk) acc = fmaf(pe_load_a(xb, r, kk, p), pe_load_w(w, kk, n, p), acc);
    out[((long long)b * p.rows + r) * p.n + n] = pe_epilogue(acc, r, n, bias, pos, prefix, p);
}

// ---------------------------------------------------------------------------------------------
// v2. Launch: grid (⌈N/64⌉, ⌈rows/64⌉, B) × 256 threads. A block owns the 64×64 output tile at
// (blockIdx.y·64, blockIdx.x·64) of batch blockIdx.z; thread t = ty·16 + tx owns rows ty + 16·i and
// cols tx + 16·j, i, j ∈ 0..4. Shared: As[16][64+4] (im2col tile, k-major), Bs[16][64+4], 8.5 KiB.
#define PE_BM 64
#define PE_BN 64
#define PE_BK 16
#define PE_PAD 4
#define PE_THREADS 256

extern "C" __global__ void __launch_bounds__(PE_THREADS) patch_embed_fwd_f32_v2(const float* __restrict__ x, const float* __restrict__ w,
                                                                               const float* __restrict__ bias, const float* __restrict__ pos,
                                                                               const float* __restrict__ prefix, float* __restrict__ out,
                                                                               const PatchEmbedParams p) {
    __shared__ float As[PE_BK][PE_BM + PE_PAD];
    __shared__ float Bs[PE_BK][PE_BN + PE_PAD];
    const int tid = threadIdx.x;
    const int tx = tid % 16, ty = tid / 16;
    const int r0 = blockIdx.y * PE_BM, n0 = blockIdx.x * PE_BN;
    const int b = blockIdx.z;
    const float* xb = x + (long long)b * p.frames * p.mel;

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < p.kdim; k0 += PE_BK) {
        // im2col tile (64 rows × 16 kk): kk fastest across threads = consecutive mel bins.
#pragma unroll
        for (int rr = 0; rr < (PE_BM * PE_BK) / PE_THREADS; ++rr) {
            const int e = tid + rr * PE_THREADS;
            const int mm = e / PE_BK, kk = e % PE_BK;
            const int gr = r0 + mm, gk = k0 + kk;
            As[kk][mm] = (gr < p.rows && gk < p.kdim) ? pe_load_a(xb, gr, gk, p) : 0.0f;
        }
        // weight tile (16 kk × 64 n).
#pragma unroll
        for (int rr = 0; rr < (PE_BK * PE_BN) / PE_THREADS; ++rr) {
            const int e = tid + rr * PE_THREADS;
            const int nn = e / PE_BK, kk = e % PE_BK;
            const int gn = n0 + nn, gk = k0 + kk;
            Bs[kk][nn] = (gn < p.n && gk < p.kdim) ? pe_load_w(w, gk, gn, p) : 0.0f;
        }
        __syncthreads();
        tile64_fma_4x4<PE_BK, PE_BM + PE_PAD>(As, Bs, acc, tx, ty);
        __syncthreads();
    }

    float* ob = out + (long long)b * p.rows * p.n;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int gr = r0 + ty + 16 * i;
        if (gr >= p.rows) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int gn = n0 + tx + 16 * j;
            if (gn < p.n) ob[(long long)gr * p.n + gn] = pe_epilogue(acc[i][j], gr, gn, bias, pos, prefix, p);
        }
    }
}
