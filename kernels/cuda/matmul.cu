// matmul.cu — batched GEMM with a fused bias + GELU epilogue: C = act(op(A)·op(B) + bias).
//
// Math: C[z, m, n] = act( Σ_k A'[z, m, k] · B'[z, k, n] + bias[n] ), accumulated in f32, where
// A' = A (stored M×K row-major) or Aᵀ (trans_a: A stored K×M), B' = B (stored K×N) or Bᵀ (trans_b: B
// stored N×K — nn.Linear's weight layout). act: none, or exact GELU 0.5·x·(1 + erf(x/√2)).
// Layouts: row-major; axis letters M (rows of C), N (cols of C), K (reduction), z (batch, gridDim.z,
// element strides a_batch_stride / b_batch_stride (0: one B shared by every batch) / c_batch_stride).
// Output: f32 always. Inputs: f32 (v1, v2) or f16 (v3).
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs) for compute_80 / compute_90; under
// the emulator (kernels/emu) as C++. No inline PTX, static shared memory only.
//
// Versions (llm.c style):
//   v1 — naive: one thread per output element, a 16×16 thread block per 16×16 output tile, the K loop
//        reading A and B straight from global memory (L1/L2 catch the reuse). The port of the CPU
//        reference; stays as the correctness baseline. ~2 global loads per FMA: memory-bound, a few
//        percent of peak.
//   v2 — shared-memory tiled f32 SGEMM: a 64×64 output tile per 256-thread block, K in steps of 16;
//        each step stages a 64×16 A tile and a 16×64 B tile in shared memory (k-major, so both are
//        read as rows), and each thread accumulates a 4×4 register micro-tile whose rows/cols are
//        strided by 16 (conflict-free shared reads, coalesced 16-wide stores). 8 shared loads per 16
//        FMAs. Transposes are handled in the load path (the global→shared index mapping follows the
//        stored layout so loads stay coalesced); partial tiles at every edge are zero-filled. Fused
//        bias + GELU epilogue in registers. Chosen for f32.
//        Considered and not done (yet): 128×128 tiles with 8×8 micro-tiles and float4 loads (higher
//        peak, but twice the tile waste on the 1210-row AST GEMMs and a register-spill risk), double
//        buffering with cp.async (needs inline PTX or <cuda_pipeline.h>, which the emulator lacks).
//   v3 — f16 tensor cores via WMMA (nvcuda::wmma 16×16×16, half inputs, f32 accumulate): a 64×64
//        output tile per 128-thread block (4 warps, each 32×32 = 2×2 fragments), K in steps of 32
//        staged in shared memory as half (zero-padded where M, N or K is not a multiple of the tile,
//        so any shape works), then the accumulators are stored to a shared f32 staging tile and the
//        epilogue (bias, GELU, bounds) is applied while writing C. Chosen for f16.
//        Lost/not done: loading fragments straight from global memory (needs 16-aligned M, N, K and
//        ldm, so it cannot handle the 1210-row edge tiles); mma.sync via inline PTX (emulator).
//
// Measured (H100 80GB HBM3, `aural bench --op matmul --device cuda`, median per call including launch
// and stream sync; M×K×N = 1210×768×768 / 1210×768×3072): v1 4.8 / 5.2 TFLOP/s, v2 15.5 / 20.8,
// v3 (f16) 24.8 / 47.9. cuBLAS via torch 2.11 on the same GPU (CUDA events, kernel only): f32 22.2 /
// 36.7, f16 42.4 / 170.9 — v2 is 56–70% of cuBLAS f32, v3 is far from cuBLAS f16 (no async copies,
// no double buffering, 64×64 tiles): the next version to write.
//
// Flops per launch: 2·M·N·K·batch. Bytes (minimum): (M·K + K·N)·elt + 4·M·N per batch; v1 moves
// ~2·elt·M·N·K through L1/L2, v2 re-reads A N/64 times and B M/64 times from L2.

#include <cuda_fp16.h>
#include <mma.h>
#include "common.cuh"

struct MatmulParams {
    int M, N, K;
    int trans_a;  // 1: A stored K×M
    int trans_b;  // 1: B stored N×K
    int has_bias; // 1: bias[N] is valid
    int act;      // 0: none, 1: exact GELU
    int _pad;
    int a_batch_stride;  // elements between batches of A
    int b_batch_stride;  // of B (0: shared)
    int c_batch_stride;  // of C
    int _pad2;
};
static_assert(sizeof(MatmulParams) == 48, "MatmulParams must match runtime/src/ops/matmul/cuda.rs");

// The epilogue: bias then activation.
__device__ __forceinline__ float matmul_epilogue(float v, int col, const float* __restrict__ bias, const MatmulParams& p) {
    if (p.has_bias) v += bias[col];
    if (p.act == 1) v = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    return v;
}

// A'(m, k) and B'(k, n) as stored.
template <typename T>
__device__ __forceinline__ float load_a(const T* A, int m, int k, const MatmulParams& p) {
    return (float)(p.trans_a ? A[(long long)k * p.M + m] : A[(long long)m * p.K + k]);
}
template <typename T>
__device__ __forceinline__ float load_b(const T* B, int k, int n, const MatmulParams& p) {
    return (float)(p.trans_b ? B[(long long)n * p.K + k] : B[(long long)k * p.N + n]);
}

// ---------------------------------------------------------------------------------------------
// v1. Launch: grid (⌈N/16⌉, ⌈M/16⌉, batch) × block (16, 16). One thread owns C[z, m, n] with
// m = blockIdx.y·16 + threadIdx.y, n = blockIdx.x·16 + threadIdx.x.
// A: [batch|1, M, K] (or [.., K, M]), B: [batch|1, K, N] (or [.., N, K]), bias: [N] or null, C: [batch, M, N].
extern "C" __global__ void matmul_fwd_f32_v1(const float* __restrict__ A, const float* __restrict__ B,
                                             const float* __restrict__ bias, float* __restrict__ C,
                                             const MatmulParams p) {
    const int m = blockIdx.y * blockDim.y + threadIdx.y;
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    if (m >= p.M || n >= p.N) return;
    const int z = blockIdx.z;
    const float* a = A + (long long)z * p.a_batch_stride;
    const float* b = B + (long long)z * p.b_batch_stride;
    float acc = 0.0f;
    for (int k = 0; k < p.K; ++k) acc = fmaf(load_a(a, m, k, p), load_b(b, k, n, p), acc);
    C[(long long)z * p.c_batch_stride + (long long)m * p.N + n] = matmul_epilogue(acc, n, bias, p);
}

// ---------------------------------------------------------------------------------------------
// v2. Launch: grid (⌈N/64⌉, ⌈M/64⌉, batch) × 256 threads. A block owns the 64×64 tile of C at
// (blockIdx.y·64, blockIdx.x·64); thread t = ty·16 + tx owns rows ty + 16·i and cols tx + 16·j,
// i, j ∈ 0..4 (a 4×4 register micro-tile). Shared: As[16][64+4], Bs[16][64+4] (k-major), 8.5 KiB.
// Pointers as v1.
#define V2_BM 64
#define V2_BN 64
#define V2_BK 16
#define V2_PAD 4
#define V2_THREADS 256

extern "C" __global__ void __launch_bounds__(V2_THREADS) matmul_fwd_f32_v2(const float* __restrict__ A,
                                                                         const float* __restrict__ B,
                                                                         const float* __restrict__ bias,
                                                                         float* __restrict__ C, const MatmulParams p) {
    __shared__ float As[V2_BK][V2_BM + V2_PAD];
    __shared__ float Bs[V2_BK][V2_BN + V2_PAD];
    const int tid = threadIdx.x;
    const int tx = tid % 16, ty = tid / 16;
    const int m0 = blockIdx.y * V2_BM, n0 = blockIdx.x * V2_BN;
    const int z = blockIdx.z;
    const float* a = A + (long long)z * p.a_batch_stride;
    const float* b = B + (long long)z * p.b_batch_stride;

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < p.K; k0 += V2_BK) {
        // Stage A' tile (64 × 16): 1024 elements, 4 per thread; consecutive threads read consecutive
        // stored addresses (k fastest when A is M×K, m fastest when A is K×M).
#pragma unroll
        for (int r = 0; r < (V2_BM * V2_BK) / V2_THREADS; ++r) {
            const int e = tid + r * V2_THREADS;
            int mm, kk;
            if (p.trans_a) { kk = e / V2_BM; mm = e % V2_BM; }
            else { mm = e / V2_BK; kk = e % V2_BK; }
            const int gm = m0 + mm, gk = k0 + kk;
            As[kk][mm] = (gm < p.M && gk < p.K) ? load_a(a, gm, gk, p) : 0.0f;
        }
        // Stage B' tile (16 × 64).
#pragma unroll
        for (int r = 0; r < (V2_BK * V2_BN) / V2_THREADS; ++r) {
            const int e = tid + r * V2_THREADS;
            int nn, kk;
            if (p.trans_b) { nn = e / V2_BK; kk = e % V2_BK; }
            else { kk = e / V2_BN; nn = e % V2_BN; }
            const int gn = n0 + nn, gk = k0 + kk;
            Bs[kk][nn] = (gn < p.N && gk < p.K) ? load_b(b, gk, gn, p) : 0.0f;
        }
        __syncthreads();
        tile64_fma_4x4<V2_BK, V2_BM + V2_PAD>(As, Bs, acc, tx, ty);
        __syncthreads();
    }

    float* c = C + (long long)z * p.c_batch_stride;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int gm = m0 + ty + 16 * i;
        if (gm >= p.M) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int gn = n0 + tx + 16 * j;
            if (gn < p.N) c[(long long)gm * p.N + gn] = matmul_epilogue(acc[i][j], gn, bias, p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// v3. Launch: grid (⌈N/64⌉, ⌈M/64⌉, batch) × 128 threads (4 warps). A block owns the 64×64 tile of
// C at (blockIdx.y·64, blockIdx.x·64); warp w owns the 32×32 sub-tile at rows (w/2)·32, cols (w%2)·32
// as 2×2 WMMA 16×16 f32 accumulators. Per K step of 32: As[64][32+8] and Bs[32][64+8] half tiles
// (zero-padded past M, N, K), then 2×2×2 mma_sync per warp. Epilogue through Cs[64][64+4] f32.
// Shared: 5 + 4.5 + 17 KiB. A: [batch|1, M, K] half (or K×M), B: [batch|1, K, N] half (or N×K),
// bias: [N] f32 or null, C: [batch, M, N] f32.
#define V3_BM 64
#define V3_BN 64
#define V3_BK 32
#define V3_APAD 8
#define V3_BPAD 8
#define V3_CPAD 4
#define V3_THREADS 128

extern "C" __global__ void __launch_bounds__(V3_THREADS) matmul_fwd_f16_v3(const __half* __restrict__ A,
                                                                         const __half* __restrict__ B,
                                                                         const float* __restrict__ bias,
                                                                         float* __restrict__ C, const MatmulParams p) {
    using namespace nvcuda;
    // WMMA pointers must be 256-bit aligned; the row pitches (80, 144, 272 bytes) keep every fragment
    // origin (rows multiple of 16, cols multiple of 16) on a 32-byte boundary.
    __shared__ __align__(32) __half As[V3_BM][V3_BK + V3_APAD];
    __shared__ __align__(32) __half Bs[V3_BK][V3_BN + V3_BPAD];
    __shared__ __align__(32) float Cs[V3_BM][V3_BN + V3_CPAD];
    const int tid = threadIdx.x;
    const int warp = tid / 32;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
    const int m0 = blockIdx.y * V3_BM, n0 = blockIdx.x * V3_BN;
    const int z = blockIdx.z;
    const __half* a = A + (long long)z * p.a_batch_stride;
    const __half* b = B + (long long)z * p.b_batch_stride;
    const __half zero = __float2half(0.0f);

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int k0 = 0; k0 < p.K; k0 += V3_BK) {
        // Stage A' (64 × 32): 2048 halves, 16 per thread, coalesced along the stored fast axis.
        for (int r = 0; r < (V3_BM * V3_BK) / V3_THREADS; ++r) {
            const int e = tid + r * V3_THREADS;
            int mm, kk;
            if (p.trans_a) { kk = e / V3_BM; mm = e % V3_BM; }
            else { mm = e / V3_BK; kk = e % V3_BK; }
            const int gm = m0 + mm, gk = k0 + kk;
            __half v = zero;
            if (gm < p.M && gk < p.K) v = p.trans_a ? a[(long long)gk * p.M + gm] : a[(long long)gm * p.K + gk];
            As[mm][kk] = v;
        }
        // Stage B' (32 × 64).
        for (int r = 0; r < (V3_BK * V3_BN) / V3_THREADS; ++r) {
            const int e = tid + r * V3_THREADS;
            int nn, kk;
            if (p.trans_b) { nn = e / V3_BK; kk = e % V3_BK; }
            else { kk = e / V3_BN; nn = e % V3_BN; }
            const int gn = n0 + nn, gk = k0 + kk;
            __half v = zero;
            if (gn < p.N && gk < p.K) v = p.trans_b ? b[(long long)gn * p.K + gk] : b[(long long)gk * p.N + gn];
            Bs[kk][nn] = v;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < V3_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &As[wm + 16 * i][kk], V3_BK + V3_APAD);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &Bs[kk][wn + 16 * j], V3_BN + V3_BPAD);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&Cs[wm + 16 * i][wn + 16 * j], acc[i][j], V3_BN + V3_CPAD, wmma::mem_row_major);
    __syncthreads();

    float* c = C + (long long)z * p.c_batch_stride;
    for (int r = 0; r < (V3_BM * V3_BN) / V3_THREADS; ++r) {
        const int e = tid + r * V3_THREADS;
        const int mm = e / V3_BN, nn = e % V3_BN;
        const int gm = m0 + mm, gn = n0 + nn;
        if (gm < p.M && gn < p.N) c[(long long)gm * p.N + gn] = matmul_epilogue(Cs[mm][nn], gn, bias, p);
    }
}
