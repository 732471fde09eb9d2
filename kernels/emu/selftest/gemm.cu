// Emulator selftests: tiled GEMM (correct and off-by-one), WMMA.
#include <cuda_fp16.h>
#include <mma.h>

#define TILE 16

// C[M,N] = A[M,K] B[K,N], row-major. Block 16x16 threads, grid (ceil(N/16), ceil(M/16)).
extern "C" __global__ void emu_test_gemm_tiled(const float* A, const float* B, float* C, int M, int N, int K) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        As[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : 0.0f;
        Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TILE; k++) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();
    }
    if (row < M && col < N) C[row * N + col] = acc;
}

// BROKEN on purpose: `k0 + tx <= K` reads one element past each row (and past the end of A).
extern "C" __global__ void emu_test_gemm_tiled_oob(const float* A, const float* B, float* C, int M, int N, int K) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        As[ty][tx] = (row < M && k0 + tx <= K) ? A[row * K + k0 + tx] : 0.0f;
        Bs[ty][tx] = (k0 + ty < K && col < N) ? B[(k0 + ty) * N + col] : 0.0f;
        __syncthreads();
        for (int k = 0; k < TILE; k++) acc += As[ty][k] * Bs[k][tx];
        __syncthreads();
    }
    if (row < M && col < N) C[row * N + col] = acc;
}

struct EmuGemmParams {
    int M, N, K;
    float alpha;
};

// One warp per 16x16 output tile: C = alpha * A(half, row-major MxK) B(half, col-major KxN), f32 out.
// Block 32 threads, grid (N/16, M/16). Struct parameter on purpose.
extern "C" __global__ void emu_test_wmma(const __half* A, const __half* B, float* C, const EmuGemmParams p) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> a;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> b;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> c;
    wmma::fill_fragment(c, 0.0f);
    const int tm = blockIdx.y * 16, tn = blockIdx.x * 16;
    for (int k0 = 0; k0 < p.K; k0 += 16) {
        wmma::load_matrix_sync(a, A + tm * p.K + k0, p.K);
        wmma::load_matrix_sync(b, B + tn * p.K + k0, p.K);
        wmma::mma_sync(c, a, b, c);
    }
    for (int i = 0; i < c.num_elements; i++) c.x[i] *= p.alpha;
    wmma::store_matrix_sync(C + tm * p.N + tn, c, p.N, wmma::mem_row_major);
}
