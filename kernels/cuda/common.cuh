// Device code shared by several kernel families (`#include "common.cuh"`). NVRTC receives this file
// as an in-memory header (aural_kernels::HEADERS); the emulator compiles it into each .cu that
// includes it, so everything here is `inline` or a template (one definition per translation unit).
#pragma once

// Sum over the 32 lanes of a warp, every lane receiving it (butterfly shuffles; all lanes active).
// Used by the row reductions of softmax, layernorm and attention.
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// In-place iterative radix-2 DIT FFT of (re, im) in shared memory, input already in bit-reversed
// order; twc/tws: cos/sin(2πj/n), j < n/2 (shared). All threads of the block take part (grid-stride
// over the n/2 butterflies of each stage). Ends with a barrier. Used by fbank and stft.
__device__ inline void fft_radix2_smem(float* re, float* im, const float* twc, const float* tws, int n, int log2n) {
    for (int s = 1; s <= log2n; ++s) {
        const int half = 1 << (s - 1);
        const int tstep = n >> s;  // twiddle stride: W_len^j = W_n^(j·n/len)
        for (int b = threadIdx.x; b < (n >> 1); b += blockDim.x) {
            const int j = b & (half - 1);
            const int i0 = ((b >> (s - 1)) << s) + j;
            const int i1 = i0 + half;
            const float c = twc[j * tstep], sn = tws[j * tstep];
            // t = x1 · e^{−2πi j/len} = x1 · (c − i·sn)
            const float tr = re[i1] * c + im[i1] * sn;
            const float ti = im[i1] * c - re[i1] * sn;
            const float ar = re[i0], ai = im[i0];
            re[i0] = ar + tr; im[i0] = ai + ti;
            re[i1] = ar - tr; im[i1] = ai - ti;
        }
        __syncthreads();
    }
}

// The register micro-tile step of the 64×64-tile f32 GEMMs (matmul v2, patch_embed v1/v2): with the
// k-major shared tiles As[BK][LD] (64 rows of A') and Bs[BK][LD] (64 columns of B') staged, thread
// (tx, ty) ∈ 16×16 accumulates acc[i][j] += Σ_kk As[kk][ty + 16i] · Bs[kk][tx + 16j]. The caller
// synchronises before and after.
template <int BK, int LD>
__device__ __forceinline__ void tile64_fma_4x4(const float (*As)[LD], const float (*Bs)[LD], float (&acc)[4][4], int tx, int ty) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
        float ra[4], rb[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) ra[i] = As[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) rb[j] = Bs[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
    }
}

// Block-wide sums of K doubles per thread, every thread receiving the K totals: butterfly shuffles
// within each warp, then every thread adds the warps' partials in warp order (a fixed tree: the
// result does not depend on the order threads run in). blockDim.x must be a multiple of 32 (≤ 1024)
// and every thread of the block must call it. Starts with a barrier (so calls may follow each other);
// 256·K bytes of static shared memory. Used by the statistics of groupnorm and standardize.
template <int K>
__device__ inline void block_sum_f64(double (&v)[K]) {
    __shared__ double part[K][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
    for (int k = 0; k < K; ++k)
        for (int o = 16; o > 0; o >>= 1) v[k] += __shfl_xor_sync(0xffffffffu, v[k], o);
    __syncthreads();
    if (lane == 0)
#pragma unroll
        for (int k = 0; k < K; ++k) part[k][warp] = v[k];
    __syncthreads();
#pragma unroll
    for (int k = 0; k < K; ++k) {
        double s = 0.0;
        for (int w = 0; w < nw; ++w) s += part[k][w];
        v[k] = s;
    }
}
