// standardize.cu — per-map standardisation of two same-shaped maps and their weighted sum: the CP-JKU
// separator's `wx·(x − x.mean(dim=[2, 3])) / (x.std(dim=[2, 3]) + eps) + wf·(f − f.mean) / (f.std + eps)`
// (eps 1e-6 added to the unbiased std, outside the square root).
//
// Math: per plane p = (b, c) of n = H·W ≥ 2 values, for z ∈ {x, f}: μz = Σ z / n,
// σz = √(Σ (z − μz)² / (n − 1)) (unbiased), kz = (f32)(wz / (σz + eps)), all in f64 (two passes);
// out[p, i] = (f32)(x − μx)·kx + (f32)(f − μf)·kf in f32 (the differences in f64; the products and the
// sum rounded separately). The CPU (runtime/src/ops/standardize/cpu.rs) does the same operations; only
// the order of the f64 sums differs.
// Layouts: x, f, out [P, n] (P = B·C planes of H·W values). f32.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style):
//   v1 — one 256-thread block per plane, reading both maps in each pass: pass 1 the two sums, pass 2
//        the two sums of squared deviations (f64, block_sum_f64<2>), pass 3 the output. The plane's
//        re-reads hit L1/L2 (the separator's planes are 63·16 values).
//
// Bytes per launch (minimum): 2·4·P·n read + 4·P·n written (v1 reads each plane three times, twice
// from cache).
// Flops: about 11 per value.

#include "common.cuh"

struct StandardizeParams {
    int planes;  // B·C
    int n;       // H·W (≥ 2)
    float wx, wf;
    float eps;
    int _pad;
};
static_assert(sizeof(StandardizeParams) == 24, "StandardizeParams must match runtime/src/ops/standardize/cuda.rs");

// v1. Launch: grid (P) × block (256). Block p owns plane p of x, f and out; thread t handles values
// t, t + 256, … of it. P·n < 2^31 (checked on the host).
// Pointers: x, f, out [P, n].
extern "C" __global__ void __launch_bounds__(256) standardize_add_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ f,
                                                                             float* __restrict__ out, const StandardizeParams p) {
    const long long base = (long long)blockIdx.x * p.n;
    const float* xp = x + base;
    const float* fp = f + base;
    double v[2] = {0.0, 0.0};
    for (int j = threadIdx.x; j < p.n; j += blockDim.x) {
        v[0] += (double)xp[j];
        v[1] += (double)fp[j];
    }
    block_sum_f64<2>(v);
    const double mx = v[0] / (double)p.n, mf = v[1] / (double)p.n;
    v[0] = 0.0;
    v[1] = 0.0;
    for (int j = threadIdx.x; j < p.n; j += blockDim.x) {
        const double dx = (double)xp[j] - mx, df = (double)fp[j] - mf;
        v[0] += dx * dx;
        v[1] += df * df;
    }
    block_sum_f64<2>(v);
    const double n1 = (double)(p.n - 1);
    const float kx = (float)((double)p.wx / (sqrt(v[0] / n1) + (double)p.eps));
    const float kf = (float)((double)p.wf / (sqrt(v[1] / n1) + (double)p.eps));
    for (int j = threadIdx.x; j < p.n; j += blockDim.x) {
        const float dx = (float)((double)xp[j] - mx), df = (float)((double)fp[j] - mf);
        out[base + j] = __fadd_rn(__fmul_rn(dx, kx), __fmul_rn(df, kf));
    }
}

// ---------------------------------------------------------------------------------------------------
// Backward (runtime/src/ops/standardize/backward.rs). Per plane and z ∈ {x, f} with weight wz:
// d = z − μz, σ = √(Σ d² / (n − 1)), e = σ + eps, k = wz / e, ḡ = Σ dy / n, S = Σ dy·d;
// dz = k·(dy − ḡ) − (k/e)·S·d / ((n − 1)·σ) (the second term 0 where σ = 0, as PyTorch's std backward),
// all in f64, rounded once; the per-plane gradient of wz is S / e (summed over planes on the host side
// by a runtime reduction).
// Layouts: x, f, dy, dx, df [P, n]; pwx, pwf [P].
//
// Versions:
//   v1 — one 256-thread block per plane: pass 1 Σ x, Σ f, Σ dy (block_sum_f64<3>), pass 2 Σ d², Σ dy·d
//        for both maps (block_sum_f64<4>), pass 3 dx and df. Re-reads hit L1/L2 (63·16-value planes).
//
// Bytes per launch (minimum): 3·4·P·n read + 2·4·P·n written + 8·P.
// Flops: about 20 per value (f64).

// v1. Launch: grid (P) × block (256). Block p owns plane p of dx, df and pwx[p], pwf[p].
// P·n < 2^31 (checked on the host). Pointers: x, f, dy, dx, df [P, n]; pwx, pwf [P].
extern "C" __global__ void __launch_bounds__(256)
    standardize_add_data_bwd_f32_v1(const float* __restrict__ x, const float* __restrict__ f, const float* __restrict__ dy,
                                    float* __restrict__ dx, float* __restrict__ df, float* __restrict__ pwx, float* __restrict__ pwf,
                                    const StandardizeParams p) {
    const long long base = (long long)blockIdx.x * p.n;
    const float* xp = x + base;
    const float* fp = f + base;
    const float* gp = dy + base;
    double s[3] = {0.0, 0.0, 0.0};
    for (int j = threadIdx.x; j < p.n; j += blockDim.x) {
        s[0] += (double)xp[j];
        s[1] += (double)fp[j];
        s[2] += (double)gp[j];
    }
    block_sum_f64<3>(s);
    const double mx = s[0] / (double)p.n, mf = s[1] / (double)p.n, gbar = s[2] / (double)p.n;
    double v[4] = {0.0, 0.0, 0.0, 0.0};
    for (int j = threadIdx.x; j < p.n; j += blockDim.x) {
        const double ddx = (double)xp[j] - mx, ddf = (double)fp[j] - mf, g = (double)gp[j];
        v[0] += ddx * ddx;
        v[1] += ddf * ddf;
        v[2] += g * ddx;
        v[3] += g * ddf;
    }
    block_sum_f64<4>(v);
    const double n1 = (double)(p.n - 1);
    const double sx = sqrt(v[0] / n1), sf = sqrt(v[1] / n1);
    const double ex = sx + (double)p.eps, ef = sf + (double)p.eps;
    const double kx = (double)p.wx / ex, kf = (double)p.wf / ef;
    const double cx = sx > 0.0 ? kx / ex * v[2] / (n1 * sx) : 0.0;
    const double cf = sf > 0.0 ? kf / ef * v[3] / (n1 * sf) : 0.0;
    for (int j = threadIdx.x; j < p.n; j += blockDim.x) {
        const double g = (double)gp[j] - gbar;
        dx[base + j] = (float)(kx * g - cx * ((double)xp[j] - mx));
        df[base + j] = (float)(kf * g - cf * ((double)fp[j] - mf));
    }
    if (threadIdx.x == 0) {
        pwx[blockIdx.x] = (float)(v[2] / ex);
        pwf[blockIdx.x] = (float)(v[3] / ef);
    }
}
