// softmax.cu — softmax over the last dimension, numerically stable, PyTorch semantics.
//
// Math: y[r, j] = exp(x[r, j] − m_r) / Σ_k exp(x[r, k] − m_r), m_r = max_k x[r, k], f32 throughout.
// A row of all −inf has m = −inf, so x − m is NaN and the row comes out NaN (as torch); a NaN anywhere in
// a row makes the row NaN (the max propagates NaN). Layouts: x, y: [R, L] row-major (R = every leading
// dim flattened, L = the last dim). Build: compiled at run time by NVRTC; under the emulator as C++.
//
// Versions (llm.c style, one line each):
//   v1 — one thread per row, three passes (max, Σexp, write). The naive port of the CPU op. Adjacent
//        threads read addresses L apart, so loads are uncoalesced; fine only for very short rows.
//   v2 — one warp per row (8 rows per 256-thread block): lanes stride the row (coalesced), max and sum
//        combined with __shfl_xor_sync butterflies. The default for L < 1024; lanes idle when L < 32
//        (the 13-wide frequency attention rows use 13 of 32), still far better than v1's access pattern.
//   v3 — one 256-thread block per row: each thread strides the row, warp shuffles then a shared-memory
//        pass across the 8 warps. For long rows (L ≥ 1024, e.g. attention over 1214 tokens), where a
//        single warp per row leaves too few rows in flight per SM to hide latency.
//   Not kept: an online (single-pass max+sum) variant — the row is re-read from L1/L2 anyway, and the
//   extra exp rescaling costs more than the saved pass for L ≤ 1214.
//
// Measured (aural bench, H100): 12×1214×1214 — v1 0.644 ms, v2 0.114 ms, v3 0.089 ms;
// 1212×13 rows — v1 0.013 ms, v2 0.011 ms, v3 0.013 ms (launch-bound).
//
// Bytes per launch (minimum): 4·R·L read + 4·R·L written (re-reads hit the cache).

#include "common.cuh"

struct SoftmaxParams {
    int rows;
    int len;
};
static_assert(sizeof(SoftmaxParams) == 8, "SoftmaxParams must match runtime/src/ops/softmax/cuda.rs");

#define NEG_INF __int_as_float(0xff800000)

namespace {  // helpers: internal linkage (no clashes with other families under the emulator)

// max that propagates NaN from either side (fmaxf would drop it).
__device__ __forceinline__ float max_nan(float a, float b) { return (a > b || a != a) ? a : b; }

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

}  // namespace

// v1. Launch: 1-D grid × 128 threads, grid-stride over rows. One thread owns one row.
// x: [rows, len]; y: [rows, len].
extern "C" __global__ void softmax_fwd_f32_v1(const float* __restrict__ x, float* __restrict__ y, const SoftmaxParams p) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < p.rows; r += gridDim.x * blockDim.x) {
        const float* xr = x + (size_t)r * p.len;
        float* yr = y + (size_t)r * p.len;
        float m = NEG_INF;
        for (int j = 0; j < p.len; ++j) m = max_nan(m, xr[j]);
        float s = 0.0f;
        for (int j = 0; j < p.len; ++j) s += expf(xr[j] - m);
        for (int j = 0; j < p.len; ++j) yr[j] = expf(xr[j] - m) / s;
    }
}

// v2. Launch: 1-D grid × 256 threads (8 warps); warp w of block b owns row b·8 + w (grid-stride over
// rows in steps of gridDim.x·8). Lane l handles columns l, l + 32, …. x: [rows, len]; y: [rows, len].
extern "C" __global__ void softmax_fwd_f32_v2(const float* __restrict__ x, float* __restrict__ y, const SoftmaxParams p) {
    const int lane = threadIdx.x & 31;
    const int warps = blockDim.x >> 5;
    for (int r = blockIdx.x * warps + (threadIdx.x >> 5); r < p.rows; r += gridDim.x * warps) {
        const float* xr = x + (size_t)r * p.len;
        float* yr = y + (size_t)r * p.len;
        float m = NEG_INF;
        for (int j = lane; j < p.len; j += 32) m = max_nan(m, xr[j]);
        m = warp_max(m);
        float s = 0.0f;
        for (int j = lane; j < p.len; j += 32) s += expf(xr[j] - m);
        s = warp_sum(s);
        for (int j = lane; j < p.len; j += 32) yr[j] = expf(xr[j] - m) / s;
    }
}

namespace {

// Block-wide reduction through 32 floats of shared memory (blockDim.x a multiple of 32, ≤ 1024).
// Every thread of the block must call it; all get the result.
template <bool IsMax>
__device__ float block_reduce(float v, float* smem) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = IsMax ? warp_max(v) : warp_sum(v);
    if (lane == 0) smem[w] = v;
    __syncthreads();
    if (w == 0) {
        float t = lane < nw ? smem[lane] : (IsMax ? NEG_INF : 0.0f);
        t = IsMax ? warp_max(t) : warp_sum(t);
        if (lane == 0) smem[32] = t;
    }
    __syncthreads();
    const float r = smem[32];
    __syncthreads();  // smem is reused by the next call
    return r;
}

}  // namespace

// v3. Launch: 1-D grid (≤ rows) × 256 threads; block b owns rows b, b + gridDim.x, …; thread t handles
// columns t, t + 256, …. Shared: 33 floats (static). x: [rows, len]; y: [rows, len].
extern "C" __global__ void softmax_fwd_f32_v3(const float* __restrict__ x, float* __restrict__ y, const SoftmaxParams p) {
    __shared__ float smem[33];
    for (int r = blockIdx.x; r < p.rows; r += gridDim.x) {
        const float* xr = x + (size_t)r * p.len;
        float* yr = y + (size_t)r * p.len;
        float m = NEG_INF;
        for (int j = threadIdx.x; j < p.len; j += blockDim.x) m = max_nan(m, xr[j]);
        m = block_reduce<true>(m, smem);
        float s = 0.0f;
        for (int j = threadIdx.x; j < p.len; j += blockDim.x) s += expf(xr[j] - m);
        s = block_reduce<false>(s, smem);
        for (int j = threadIdx.x; j < p.len; j += blockDim.x) yr[j] = expf(xr[j] - m) / s;
    }
}

// ---------------------------------------------------------------------------------------------------
// Backward (autograd, issue #7). Appended; the forward kernels above are unchanged.
//
// softmax_bwd: given y = softmax(x) and dy, dx[r, j] = y[r, j] · (dy[r, j] − Σ_k y[r, k]·dy[r, k]).
// Layouts: y, dy, dx: [R, L] row-major.
//   v1 — one warp per row (8 rows per 256-thread block), as the forward's v2: lanes stride the row,
//        the dot product reduced with __shfl_xor_sync; the second pass re-reads the row from L1/L2.
//        No thread-per-row version: it would only be slower (uncoalesced), and the CPU is the reference.
// Bytes per launch (minimum): 8·R·L read + 4·R·L written.

// softmax_bwd v1. Launch: 1-D grid × 256 threads (8 warps); warp w of block b owns row b·8 + w
// (grid-stride over rows in steps of gridDim.x·8); lane l handles columns l, l + 32, ….
// y: [rows, len]; dy: [rows, len]; dx: [rows, len].
extern "C" __global__ void softmax_bwd_f32_v1(const float* __restrict__ y, const float* __restrict__ dy,
                                              float* __restrict__ dx, const SoftmaxParams p) {
    const int lane = threadIdx.x & 31;
    const int warps = blockDim.x >> 5;
    for (int r = blockIdx.x * warps + (threadIdx.x >> 5); r < p.rows; r += gridDim.x * warps) {
        const float* yr = y + (size_t)r * p.len;
        const float* gr = dy + (size_t)r * p.len;
        float* dr = dx + (size_t)r * p.len;
        float s = 0.0f;
        for (int j = lane; j < p.len; j += 32) s += yr[j] * gr[j];
        s = warp_sum(s);
        for (int j = lane; j < p.len; j += 32) dr[j] = yr[j] * (gr[j] - s);
    }
}
