// layernorm.cu — layer normalisation over the last dimension (torch.nn.functional.layer_norm).
//
// Math: μ_r = Σ_j x[r, j] / L, σ²_r = Σ_j (x[r, j] − μ_r)² / L (biased), y[r, j] = (x[r, j] − μ_r) ·
// 1/√(σ²_r + eps) · w[j] + b[j]; w, b optional (flags bit 0 / bit 1). Two-pass mean/variance in f32
// (no E[x²] − μ² cancellation). Layouts: x, y: [R, L] row-major (R = leading dims flattened);
// w, b: [L]. Build: compiled at run time by NVRTC; under the emulator as C++.
//
// Versions (llm.c style, one line each):
//   v1 — one thread per row, three passes over the row (mean, variance, write). The naive port of the
//        CPU op; uncoalesced (adjacent threads are L apart), kept as the reference.
//   v2 — one warp per row (8 rows per 256-thread block): lanes stride the row (coalesced), the two
//        sums reduced with __shfl_xor_sync butterflies; the row's re-reads hit L1. The default.
//   Not yet: a block-per-row variant for very long rows (L ≫ 1024; AST rows are 768) and a
//   Welford single-pass variant (two passes cost one extra cached read, no measurable loss at 768).
//
// Measured (aural bench, H100, 1214×768): v1 0.319 ms, v2 0.020 ms.
//
// Bytes per launch (minimum): 4·R·L read + 4·R·L written + 8·L for w and b.

#include "common.cuh"

struct LayerNormParams {
    int rows;
    int len;
    float eps;
    int flags;  // bit 0: weight present, bit 1: bias present
};
static_assert(sizeof(LayerNormParams) == 16, "LayerNormParams must match runtime/src/ops/layernorm/cuda.rs");

// v1. Launch: 1-D grid × 128 threads, grid-stride over rows. One thread owns one row.
// x: [rows, len]; w, b: [len] (read only when flagged); y: [rows, len].
extern "C" __global__ void layernorm_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ w,
                                                const float* __restrict__ b, float* __restrict__ y,
                                                const LayerNormParams p) {
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < p.rows; r += gridDim.x * blockDim.x) {
        const float* xr = x + (size_t)r * p.len;
        float* yr = y + (size_t)r * p.len;
        float s = 0.0f;
        for (int j = 0; j < p.len; ++j) s += xr[j];
        const float mean = s / (float)p.len;
        float q = 0.0f;
        for (int j = 0; j < p.len; ++j) {
            const float d = xr[j] - mean;
            q += d * d;
        }
        const float rstd = 1.0f / sqrtf(q / (float)p.len + p.eps);
        for (int j = 0; j < p.len; ++j) {
            float v = (xr[j] - mean) * rstd;
            if (p.flags & 1) v *= w[j];
            if (p.flags & 2) v += b[j];
            yr[j] = v;
        }
    }
}

// v2. Launch: 1-D grid × 256 threads (8 warps); warp w of block g owns row g·8 + w (grid-stride over
// rows in steps of gridDim.x·8); lane l handles columns l, l + 32, ….
// x: [rows, len]; w, b: [len] (read only when flagged); y: [rows, len].
extern "C" __global__ void layernorm_fwd_f32_v2(const float* __restrict__ x, const float* __restrict__ w,
                                                const float* __restrict__ b, float* __restrict__ y,
                                                const LayerNormParams p) {
    const int lane = threadIdx.x & 31;
    const int warps = blockDim.x >> 5;
    for (int r = blockIdx.x * warps + (threadIdx.x >> 5); r < p.rows; r += gridDim.x * warps) {
        const float* xr = x + (size_t)r * p.len;
        float* yr = y + (size_t)r * p.len;
        float s = 0.0f;
        for (int j = lane; j < p.len; j += 32) s += xr[j];
        const float mean = warp_sum(s) / (float)p.len;
        float q = 0.0f;
        for (int j = lane; j < p.len; j += 32) {
            const float d = xr[j] - mean;
            q += d * d;
        }
        const float rstd = 1.0f / sqrtf(warp_sum(q) / (float)p.len + p.eps);
        for (int j = lane; j < p.len; j += 32) {
            float v = (xr[j] - mean) * rstd;
            if (p.flags & 1) v *= w[j];
            if (p.flags & 2) v += b[j];
            yr[j] = v;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Backward (autograd, issue #7). Appended; the forward kernels above are unchanged.
//
// layernorm_bwd: with x̂ = (x − μ_r)·rstd_r, rstd_r = 1/√(σ²_r + eps) (recomputed, two-pass as the
// forward), g = dy·w (w = 1 when absent):
//   dx[r, j]  = rstd_r · (g[r, j] − mean_j g[r, ·] − x̂[r, j] · mean_j (g·x̂)[r, ·])
//   dw[j]     = Σ_r dy[r, j]·x̂[r, j],   db[j] = Σ_r dy[r, j]
// dw and db are column sums over rows: each block writes its partial sums over its LNB_ROWS rows to
// dw_part / db_part ([blocks, L]); the host reduces them over blocks with the reduce family (no float
// atomics, so results are deterministic and the emulator's three thread orders agree).
//   v1 — block of 256 threads owns LNB_ROWS = 32 consecutive rows. Phase 1: a warp per row (lanes stride
//        the row, shuffles) computes μ, rstd (kept in shared memory) and writes dx. Phase 2 (after a
//        barrier): thread t owns columns t, t + 256, … and sums dy·x̂ and dy down its block's rows
//        (coalesced across threads; x and dy re-read, mostly from L2). g = dy·w is rounded with
//        __fmul_rn: a contracted fma(dy, w, −mean(g)) would leave g's rounding error in g − mean(g),
//        which is exactly 0 for L = 1 (found on an H100: dx = 5e-6 instead of 0 with rstd = 316).
// Bytes per launch (minimum): 2·(8·R·L) read (two phases) + 4·R·L + 8·L·⌈R/32⌉ written.

#define LNB_ROWS 32

struct LayerNormBwdParams {
    int rows;
    int len;
    float eps;
    int flags;  // bit 0: weight present
    int rows_per_block;  // must equal LNB_ROWS (checked by the launcher)
    int _pad0;
    int _pad1;
    int _pad2;
};
static_assert(sizeof(LayerNormBwdParams) == 32, "LayerNormBwdParams must match runtime/src/ops/layernorm/backward.rs");

// layernorm_bwd v1. Launch: grid ⌈rows/32⌉ × 256 threads (8 warps); block b owns rows 32·b … 32·b + 31.
// Shared: 64 floats (static). x, dy, dx: [rows, len]; w: [len] (read only when flagged);
// dw_part, db_part: [gridDim.x, len].
extern "C" __global__ void layernorm_bwd_f32_v1(const float* __restrict__ x, const float* __restrict__ w,
                                                const float* __restrict__ dy, float* __restrict__ dx,
                                                float* __restrict__ dw_part, float* __restrict__ db_part,
                                                const LayerNormBwdParams p) {
    __shared__ float s_mean[LNB_ROWS];
    __shared__ float s_rstd[LNB_ROWS];
    const int lane = threadIdx.x & 31;
    const int warps = blockDim.x >> 5;
    const int r0 = blockIdx.x * LNB_ROWS;
    const int nr = min(LNB_ROWS, p.rows - r0);
    const float inv_len = 1.0f / (float)p.len;
    // Phase 1: one warp per row.
    for (int i = threadIdx.x >> 5; i < nr; i += warps) {
        const size_t off = (size_t)(r0 + i) * p.len;
        const float* xr = x + off;
        const float* gr = dy + off;
        float* dr = dx + off;
        float s = 0.0f;
        for (int j = lane; j < p.len; j += 32) s += xr[j];
        const float mean = warp_sum(s) * inv_len;
        float q = 0.0f;
        for (int j = lane; j < p.len; j += 32) {
            const float d = xr[j] - mean;
            q += d * d;
        }
        const float rstd = 1.0f / sqrtf(warp_sum(q) * inv_len + p.eps);
        float c1 = 0.0f, c2 = 0.0f;
        for (int j = lane; j < p.len; j += 32) {
            const float g = (p.flags & 1) ? __fmul_rn(gr[j], w[j]) : gr[j];
            c1 += g * (xr[j] - mean) * rstd;
            c2 += g;
        }
        c1 = warp_sum(c1) * inv_len;
        c2 = warp_sum(c2) * inv_len;
        for (int j = lane; j < p.len; j += 32) {
            const float g = (p.flags & 1) ? __fmul_rn(gr[j], w[j]) : gr[j];
            const float xh = (xr[j] - mean) * rstd;
            dr[j] = rstd * (g - c2 - xh * c1);
        }
        if (lane == 0) {
            s_mean[i] = mean;
            s_rstd[i] = rstd;
        }
    }
    __syncthreads();
    // Phase 2: column partial sums over this block's rows.
    for (int j = threadIdx.x; j < p.len; j += blockDim.x) {
        float aw = 0.0f, ab = 0.0f;
        for (int i = 0; i < nr; ++i) {
            const size_t off = (size_t)(r0 + i) * p.len + j;
            const float g = dy[off];
            aw += g * (x[off] - s_mean[i]) * s_rstd[i];
            ab += g;
        }
        dw_part[(size_t)blockIdx.x * p.len + j] = aw;
        db_part[(size_t)blockIdx.x * p.len + j] = ab;
    }
}
