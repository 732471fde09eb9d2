// groupnorm.cu — group normalisation (nn.GroupNorm) with an optional residual added to the output:
// the CP-JKU separator's DPRNN, `out = x + GroupNorm(rnn_out)` (eps 1e-8, one group).
//
// Math: per item n and group g of Cg = C/G channels, over the m = Cg·S values of the group (S = the
// product of the spatial dims): μ = Σ x / m, σ² = Σ (x − μ)² / m (biased), rstd = 1/√(σ² + eps), all in
// f64 (two passes, so no E[x²] − μ² cancellation: eps 1e-8 leaves no slack for a poor variance). Per
// channel c: a_c = (f32)(rstd·w[c]); per value d = (f32)(x − μ) (f64 subtraction), y = d·a_c + b[c]
// (f32, product and sum rounded separately), then y += r[...] when a residual is given. The CPU
// (runtime/src/ops/groupnorm/cpu.rs) does the same operations; only the order of the f64 sums differs.
// Layouts: x, r, y [N, C, S] (the group (n, g) is the contiguous run [(n·C + g·Cg)·S, + m)); w, b [C].
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style):
//   v1 — one 256-thread block per (n, g): pass 1 sums x (f64 per thread, block_sum_f64), pass 2 sums
//        (x − μ)², pass 3 writes y. The group is read three times (the re-reads hit L2 for groups
//        up to tens of MB). Simple, but only N·G blocks: with N = G = 1 one SM does all the work.
//   v2 — each group split into K chunks of L = ⌈m / K⌉ values (K chosen on the host, ≈ m / 4096, ≤ 256)
//        and two launches over grid (N·G, K): `groupnorm_stats_fwd_f32_v2` writes each chunk's count-
//        free moments (mean_k, M2_k = Σ (x − mean_k)², two passes over the chunk, f64) to a scratch
//        buffer; `groupnorm_fwd_f32_v2` has every thread combine its group's K partials in chunk order
//        (exactly: μ = Σ n_k·mean_k / m, M2 = Σ M2_k + Σ n_k·(mean_k − μ)², f64 — deterministic) and
//        then normalises its chunk as v1's pass 3. N·G·K blocks fill the GPU when N·G is small (the
//        DPRNN: N = G = 1, m = 387 072 → 95 chunks). The dispatcher picks v2 when N·G < 256 and
//        m ≥ 8192 (fewer groups than two per SM, each long enough to split), else v1 — an occupancy
//        argument, not yet a measurement.
//
// Bytes per launch (minimum): 4·N·C·S read + 4·N·C·S written (+ 4·N·C·S residual read) + 8·C.
// v1 reads x three times (two re-reads from L2); v2 reads x twice from DRAM (once per launch, the
// stats kernel's second pass from L1/L2) plus 16·N·G·K bytes of partials written and K times read.
// Flops: about 8 per value (two f64 adds, one f64 multiply-add, one f64 subtraction, f32 multiply-add).

#include "common.cuh"

struct GroupNormParams {
    int items;     // N
    int channels;  // C
    int groups;    // G (divides C)
    int spatial;   // S
    float eps;
    int flags;     // bit 0: residual present
};
static_assert(sizeof(GroupNormParams) == 24, "GroupNormParams must match runtime/src/ops/groupnorm/cuda.rs");

// v1. Launch: grid (N·G) × block (256). Block (n, g) = blockIdx.x = n·G + g owns its whole group;
// thread t handles values t, t + 256, … of it. N·C·S < 2^31 (checked on the host).
// Pointers: x [N, C, S]; w, b [C]; r [N, C, S] (read only with flags bit 0; else any valid address);
// y [N, C, S].
extern "C" __global__ void __launch_bounds__(256) groupnorm_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ w,
                                                                       const float* __restrict__ b, const float* __restrict__ r,
                                                                       float* __restrict__ y, const GroupNormParams p) {
    const int cg = p.channels / p.groups;
    const int m = cg * p.spatial;
    const int g = blockIdx.x % p.groups;
    const long long base = (long long)blockIdx.x * m;  // = (n·C + g·Cg)·S
    const float* xg = x + base;
    double v[1] = {0.0};
    for (int j = threadIdx.x; j < m; j += blockDim.x) v[0] += (double)xg[j];
    block_sum_f64<1>(v);
    const double mean = v[0] / (double)m;
    v[0] = 0.0;
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        const double d = (double)xg[j] - mean;
        v[0] += d * d;
    }
    block_sum_f64<1>(v);
    const double rstd = 1.0 / sqrt(v[0] / (double)m + (double)p.eps);
    const bool res = p.flags & 1;
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        const int c = g * cg + j / p.spatial;
        const float a = (float)(rstd * (double)w[c]);
        const float d = (float)((double)xg[j] - mean);
        float o = __fadd_rn(__fmul_rn(d, a), b[c]);
        if (res) o = __fadd_rn(o, r[base + j]);
        y[base + j] = o;
    }
}

// v2, launch 1 of 2. Launch: grid (N·G, K) × block (256); chunk = blockIdx.y covers values
// [k·L, min((k + 1)·L, m)) of group blockIdx.x (L = chunk_len ≥ 1, K·L ≥ m, every chunk non-empty).
// Pointers: x [N, C, S]; part [N·G, K, 2] f64 (mean_k, M2_k) written.
extern "C" __global__ void __launch_bounds__(256) groupnorm_stats_fwd_f32_v2(const float* __restrict__ x, double* __restrict__ part,
                                                                             const GroupNormParams p, const int chunk_len) {
    const int m = p.channels / p.groups * p.spatial;
    const int lo = blockIdx.y * chunk_len, hi = min(lo + chunk_len, m);
    const float* xg = x + (long long)blockIdx.x * m;
    double v[1] = {0.0};
    for (int j = lo + threadIdx.x; j < hi; j += blockDim.x) v[0] += (double)xg[j];
    block_sum_f64<1>(v);
    const double mean = v[0] / (double)(hi - lo);
    v[0] = 0.0;
    for (int j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        const double d = (double)xg[j] - mean;
        v[0] += d * d;
    }
    block_sum_f64<1>(v);
    if (threadIdx.x == 0) {
        double* o = part + ((long long)blockIdx.x * gridDim.y + blockIdx.y) * 2;
        o[0] = mean;
        o[1] = v[0];
    }
}

// v2, launch 2 of 2. Launch: grid (N·G, K) × block (256), the same chunks as launch 1. Every thread
// combines the K partials of group blockIdx.x in chunk order (same loads and operations in every
// thread: one result), then normalises chunk blockIdx.y as v1's pass 3.
// Pointers: x [N, C, S]; part [N·G, K, 2] f64; w, b [C]; r [N, C, S] (read only with flags bit 0);
// y [N, C, S].
extern "C" __global__ void __launch_bounds__(256) groupnorm_fwd_f32_v2(const float* __restrict__ x, const double* __restrict__ part,
                                                                       const float* __restrict__ w, const float* __restrict__ b,
                                                                       const float* __restrict__ r, float* __restrict__ y,
                                                                       const GroupNormParams p, const int chunk_len) {
    const int cg = p.channels / p.groups;
    const int m = cg * p.spatial;
    const int g = blockIdx.x % p.groups;
    const int nk = gridDim.y;
    const double* pg = part + (long long)blockIdx.x * nk * 2;
    double s = 0.0;
    for (int k = 0; k < nk; ++k) s += (double)(min((k + 1) * chunk_len, m) - k * chunk_len) * pg[2 * k];
    const double mean = s / (double)m;
    double q = 0.0;
    for (int k = 0; k < nk; ++k) {
        const double d = pg[2 * k] - mean;
        q += pg[2 * k + 1] + (double)(min((k + 1) * chunk_len, m) - k * chunk_len) * d * d;
    }
    const double rstd = 1.0 / sqrt(q / (double)m + (double)p.eps);
    const long long base = (long long)blockIdx.x * m;
    const bool res = p.flags & 1;
    const int lo = blockIdx.y * chunk_len, hi = min(lo + chunk_len, m);
    for (int j = lo + threadIdx.x; j < hi; j += blockDim.x) {
        const int c = g * cg + j / p.spatial;
        const float a = (float)(rstd * (double)w[c]);
        const float d = (float)((double)x[base + j] - mean);
        float o = __fadd_rn(__fmul_rn(d, a), b[c]);
        if (res) o = __fadd_rn(o, r[base + j]);
        y[base + j] = o;
    }
}

// ---------------------------------------------------------------------------------------------------
// Backward (runtime/src/ops/groupnorm/backward.rs): nn.GroupNorm's. Per group (n, g), with μ and
// rstd as the forward and x̂ = (x − μ)·rstd (f64): per channel c of the group sdy[c] = Σ_s dy,
// sdyx[c] = Σ_s dy·x̂ (the partials of dbias and dweight, written per (n, c)); A = Σ_c w[c]·sdy[c],
// B = Σ_c w[c]·sdyx[c]; dx = rstd·(dy·w[c] − A/m − x̂·B/m) in f64, rounded once.
// Layouts: x, dy, dx [N, C, S]; w [C]; pdw, pdb [N, C].
//
// Versions:
//   v1 — one 256-thread block per (n, g): pass 1 Σ x, pass 2 Σ (x − μ)² (two-pass, f64 block sums), pass 3
//        one warp per channel of the group (Σ dy, Σ dy·x̂ over its S values; shuffles, no barriers),
//        the warps' shares of A and B added in warp order, pass 4 dx. The group is read four times
//        (re-reads from L2). A first try with one block reduction per channel (2·Cg barriers) made
//        ptxas keep block_sum_f64 as a call and spill; lanes idle when S < 32 (rank-2 inputs).
//
// Bytes per launch (minimum): 4·N·C·S·3 (x, dy read; dx written) + 8·N·C (partials) + 4·C.
// Flops: about 14 per value (f64).

// v1. Launch: grid (N·G) × block (256). Block blockIdx.x = n·G + g owns group (n, g): dx over its m =
// Cg·S values and pdw/pdb[n, g·Cg .. (g + 1)·Cg]. N·C·S < 2^31 (checked on the host).
// Pointers: x, dy, dx [N, C, S]; w [C]; pdw, pdb [N, C].
extern "C" __global__ void __launch_bounds__(256) group_norm_data_bwd_f32_v1(const float* __restrict__ x, const float* __restrict__ w,
                                                                             const float* __restrict__ dy, float* __restrict__ dx,
                                                                             float* __restrict__ pdw, float* __restrict__ pdb,
                                                                             const GroupNormParams p) {
    const int cg = p.channels / p.groups;
    const int m = cg * p.spatial;
    const int g = blockIdx.x % p.groups;
    const long long base = (long long)blockIdx.x * m;  // = (n·C + g·Cg)·S
    const float* xg = x + base;
    const float* gg = dy + base;
    double s1[1] = {0.0};
    for (int j = threadIdx.x; j < m; j += blockDim.x) s1[0] += (double)xg[j];
    block_sum_f64<1>(s1);
    const double mean = s1[0] / (double)m;
    s1[0] = 0.0;
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        const double d = (double)xg[j] - mean;
        s1[0] += d * d;
    }
    block_sum_f64<1>(s1);
    const double rstd = 1.0 / sqrt(s1[0] / (double)m + (double)p.eps);
    // Pass 3: warp w reduces channels w, w + 8, … (lanes stride over the channel's S values; butterfly
    // shuffles), accumulating its share of A and B; then thread 0 adds the warps' shares in order and
    // broadcasts them through shared memory. Fixed order: deterministic.
    __shared__ double ab[2][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    double a = 0.0, b = 0.0;
    const long long pc = (long long)blockIdx.x * cg;  // = n·C + g·Cg
    for (int k = warp; k < cg; k += nw) {
        double sg = 0.0, sgx = 0.0;
        for (int j = k * p.spatial + lane; j < (k + 1) * p.spatial; j += 32) {
            const double gv = (double)gg[j];
            sg += gv;
            sgx += gv * (((double)xg[j] - mean) * rstd);
        }
        for (int o = 16; o > 0; o >>= 1) {
            sg += __shfl_xor_sync(0xffffffffu, sg, o);
            sgx += __shfl_xor_sync(0xffffffffu, sgx, o);
        }
        if (lane == 0) {
            pdb[pc + k] = (float)sg;
            pdw[pc + k] = (float)sgx;
        }
        const double wc = (double)w[g * cg + k];
        a += wc * sg;
        b += wc * sgx;
    }
    if (lane == 0) {
        ab[0][warp] = a;
        ab[1][warp] = b;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double sa = 0.0, sb = 0.0;
        for (int k = 0; k < nw; ++k) {
            sa += ab[0][k];
            sb += ab[1][k];
        }
        ab[0][0] = sa;
        ab[1][0] = sb;
    }
    __syncthreads();
    a = ab[0][0];
    b = ab[1][0];
    a /= (double)m;
    b /= (double)m;
    for (int j = threadIdx.x; j < m; j += blockDim.x) {
        const double wc = (double)w[g * cg + j / p.spatial];
        const double xh = ((double)xg[j] - mean) * rstd;
        dx[base + j] = (float)(rstd * ((double)gg[j] * wc - a - xh * b));
    }
}
