// conv2d.cu — 2-D convolution of the separator (ResUNet30): stride 1, a k×k kernel (k = 1 or 3) with
// zero padding k/2, the block's pre-activation (folded BatchNorm + FiLM β + the optional time-FiLM
// term + LeakyReLU) fused into the input read, an optional bias and an optional residual added in the
// epilogue, over one input or the channel concatenation of two (the decoder's skip concat, read in
// place without a copy).
//
// Math (axis letters: B batch, C = C0 + C1 input channels, O output channels, H rows (time), W columns
// (frequency), k kernel size, p = k/2):
//   x[b, c]          = x0[b, c] for c < C0, else x1[b, c − C0]                 (the concat, in place)
//   z[b, c, h, w]    = x[b, c, h, w]·scale[c] + shift[b·shift_stride + c]          (when has_pre)
//   a[b, c, h, w]    = leaky(z)                          time_mode 0 (no time-FiLM)
//                    = leaky(z + t[b, c, h])             time_mode 1 (Add: CP-JKU's additive time-FiLM)
//                    = leaky(z)·t[b, c, h]               time_mode 2 (Gate: a per-row gate)
//                    = x                                 when !has_pre (time_mode is then 0)
//   leaky(v)         = v < 0 ? slope·v : v
//   out[b, o, h, w]  = (residual[b, o, h, w] + bias[o])
//                      + Σ_{c<C, i<k, j<k} Wt[o, c, i, j] · a[b, c, h + i − p, w + j − p]
// with a = 0 outside the image: the zero padding is applied AFTER the activation, as
// conv(leaky(bn(x) + β)) pads (a padded tap contributes 0, not leaky(shift) nor a gated value). The
// activation is computed as the CPU does, one rounding per operation in this order: x·scale, + shift,
// then + t (Add), the LeakyReLU product, then ·t (Gate) (__fmul_rn/__fadd_rn, no FMA contraction), so
// v1/v2 differ from the CPU by the summation order only. t is constant along W (frequency): one value
// per (item, input channel, input row).
// As an implicit GEMM per batch item b: out[b] (O × H·W) = Wt' (O × K) · A_b (K × H·W) with
// K = C·k·k, Wt' the weight flattened row-major (PyTorch's (O, C, k, k) layout as it is) and
// A_b[(c·k + i)·k + j, h·W + w] = a[b, c, h + i − p, w + j − p], the im2col matrix of the activated
// input — never materialised: v2 and v3 gather its tiles on the fly.
// Layouts (row-major, NCHW): x0 [B, C0, H, W]; x1 [B, C1, H, W] (null when C1 = 0); Wt [O, C, k, k]
// f32 (v1, v2) or f16 (v3); bias [O]; residual [B, O, H, W]; scale [C]; shift [C] (shift_stride 0) or
// [B, C] (shift_stride C); time [B, C, H] (time-FiLM values, C the concatenated channels); out
// [B, O, H, W] f32. An optional pointer is null when its flag is 0 (time: when time_mode is 0).
// Indexing is i32: the launcher refuses any tensor (and K, H·W) of more than 2^31 − 257 elements.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs) for compute_80 / compute_90; under
// the emulator (kernels/emu) as C++. No inline PTX, static shared memory only.
//
// Versions (llm.c style):
//   v1 — naive: one thread per output element (b, o, h, w), the C·k·k loop reading x and the weight
//        straight from global memory (a block's 256 threads share o, so the weight loads are
//        broadcasts; neighbouring pixels overlap in L1) and activating each tap as it is read. The
//        port of the CPU math; the correctness baseline. Each input value is loaded and activated
//        k²·O times: memory/latency-bound. The time-FiLM value is loaded once per (c, tap row).
//   v2 — tiled implicit GEMM, f32: a block owns 4096 outputs of one batch item, either 64 output
//        channels × 64 pixels or 32 × 128 (the launcher picks the shape that pads less: the
//        separator's heaviest convolutions have O = 32, where a 64-row tile wastes half its work),
//        256 threads each holding a 4×4 register micro-tile (rows strided by BM/4, columns by BN/4:
//        conflict-free shared reads, coalesced stores). K in steps of 16: the weight tile (BM × 16,
//        k-major in shared memory) and the activated im2col tile (16 × BN) are staged in shared
//        memory; each thread gathers a fixed pixel column of the im2col tile (its (h, w) computed once),
//        so the only per-element index work is (c, i, j) = kk / k², … with k a template constant
//        (multiply-shift). Zero padding, the K tail and the partial O/pixel tiles are zero-filled in
//        the staging, so any shape works (the time-FiLM value of the tap's row is read per gathered
//        element: a warp's pixels mostly share a row, so it is an L1 broadcast). Epilogue (residual +
//        bias) in registers. Chosen for f32.
//   v3 — f16 tensor cores via WMMA (nvcuda::wmma 16×16×16, f32 accumulation), the same implicit
//        GEMM: 4 warps (128 threads), each owning a 32×32 sub-tile (2×2 accumulator fragments) of a
//        64 × 64 or 32 × 128 block tile (same choice as v2). K in steps of 32: the f16 weight tile
//        (BM × 32, as stored) and the im2col tile (32 × BN) — gathered, activated in f32, then
//        rounded to f16 (round to nearest) as it is written to shared memory — then 2 × 2 × 2
//        mma_sync per warp. The accumulators go through a shared f32 staging tile so the epilogue
//        (residual + bias, bounds) writes coalesced rows. Chosen for an f16 weight. Precision: the
//        weight is f16 as given and each activated input is rounded to f16 (relative error ≤ 2^-11;
//        an |a| over 65504 becomes inf), the products are exact in f32 and summed in f32, so the error
//        of one output is ≤ 2^-11·Σ|Wt·a| and typically ~2^-11·‖Wt·a‖₂ (see runtime/tests/conv2d.rs).
//   Not done (yet), and why: staging a halo tile of the activated input once per channel (rows
//   h0 − p .. h1 + p) and reading the 9 taps from it, instead of gathering (and activating) each input
//   value k² times per row tile — fewer loads, but the tile-to-K mapping for k = 3 is irregular and
//   needs a second shared layout per source; cp.async double buffering and mma.sync/ldmatrix (inline
//   PTX or <cuda_pipeline.h>, which the emulator cannot run); vector (half2/float4) loads (W·k offsets
//   are not aligned for k = 3). No timings here: written and verified (emulator, NVRTC/ptxas gate)
//   on a machine without a GPU — `aural bench --op conv2d --device cuda` measures them.
//   Backward: conv2d_data_bwd_f32_v1 / conv2d_weight_bwd_f32_v1, at the end of this file.
//   ptxas (NVRTC 12.9, no spills): sm_90 v1 31 / v2 64 / v3 72 registers; sm_80 27 / 64 / 90 (v3 at
//   72 on sm_90 through its __launch_bounds__ minimum of 7 blocks per SM: 80 without it, since the
//   time-FiLM path was added).
//
// Flops per launch: 2·B·O·H·W·C·k². Bytes (minimum): 4·B·C·H·W (x) + elt·O·C·k² (Wt, elt 4 or 2) +
// 4·B·O·H·W (out) + 4·B·O·H·W (residual, when present) + 4·(O + C + C·B) (bias, scale, shift) +
// 4·B·C·H (time, when time_mode ≠ 0: 1/W of the input's bytes, 1/512 on the separator's first level).
// v1 issues ~2·C·k² loads per output (+ C·k for the time values; through L1/L2); v2/v3 read each
// input value (and with it its row's time value) k² times per ⌈O/BM⌉ row tiles and the weight
// ⌈H·W/BN⌉·B times, from L2. The time-FiLM adds 1 flop per activated element (2 with the gate's
// product outside the LeakyReLU), recomputed per gathered element like the rest of the activation.

#include <cuda_fp16.h>
#include <mma.h>
#include "common.cuh"

struct Conv2dParams {
    int batch;
    int c0, c1, ctot;  // channels of x0, of x1 (0: one source), C = c0 + c1
    int h, w, hw;      // image rows, columns, h·w
    int cout;          // O
    int k, pad, kdim;  // kernel size (1 or 3), k/2, K = C·k·k
    int has_pre;       // 1: scale and shift are valid
    int has_bias;      // 1: bias is valid
    int has_res;       // 1: residual is valid
    int shift_stride;  // 0: shift [C]; C: shift [B, C]
    int tile_m;        // v2/v3: output channels per block tile, 32 or 64 (pixels: 4096 / tile_m)
    float slope;       // LeakyReLU negative slope
    int time_mode;     // 0: no time-FiLM (time null); 1: Add, leaky(z + t); 2: Gate, leaky(z)·t
};
static_assert(sizeof(Conv2dParams) == 72, "Conv2dParams must match runtime/src/ops/conv2d/cuda.rs");

namespace {

constexpr int C2D_TIME_ADD = 1, C2D_TIME_GATE = 2;  // Conv2dParams::time_mode

// leaky(v·sc + sh), with the time-FiLM value tv added before the activation (mode Add) or multiplied
// after it (mode Gate); rounded as the CPU rounds it, one operation at a time (no FMA contraction).
__device__ __forceinline__ float c2d_act(float v, float sc, float sh, float tv, int mode, float slope) {
    float a = __fadd_rn(__fmul_rn(v, sc), sh);
    if (mode == C2D_TIME_ADD) a = __fadd_rn(a, tv);
    a = a < 0.0f ? __fmul_rn(a, slope) : a;
    return mode == C2D_TIME_GATE ? __fmul_rn(a, tv) : a;
}

// Element (gk, pixel (ph, pw)) of batch item b's activated im2col matrix; x0b/x1b/shb/tb point at the
// item's planes / shift row / time-FiLM rows [C, H] (tb read only when time_mode ≠ 0). 0 past K, past
// the pixels (n_ok false) and in the zero padding.
template <int KS>
__device__ __forceinline__ float c2d_gather(const float* __restrict__ x0b, const float* __restrict__ x1b,
                                            const float* __restrict__ scale, const float* __restrict__ shb,
                                            const float* __restrict__ tb, int gk, int ph, int pw, bool n_ok,
                                            const Conv2dParams& p) {
    if (!n_ok || gk >= p.kdim) return 0.0f;
    const int c = gk / (KS * KS);
    const int t = gk - c * (KS * KS);
    const int hh = ph + t / KS - KS / 2, ww = pw + t % KS - KS / 2;
    if (hh < 0 || hh >= p.h || ww < 0 || ww >= p.w) return 0.0f;
    const int off = hh * p.w + ww;
    const float v = c < p.c0 ? x0b[c * p.hw + off] : x1b[(c - p.c0) * p.hw + off];
    if (!p.has_pre) return v;
    const float tv = p.time_mode ? tb[c * p.h + hh] : 0.0f;
    return c2d_act(v, scale[c], shb[c], tv, p.time_mode, p.slope);
}

// (residual + bias) + acc, as the CPU orders it (its output band is pre-filled with residual + bias).
__device__ __forceinline__ float c2d_epilogue(float acc, int b, int o, int n, const float* __restrict__ bias,
                                              const float* __restrict__ residual, const Conv2dParams& p) {
    float base = 0.0f;
    if (p.has_res) base = residual[(b * p.cout + o) * p.hw + n];
    if (p.has_bias) base += bias[o];
    return base + acc;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// v1. Launch: grid (⌈H·W/256⌉, O, B) × 256 threads. Thread owns out[b, o, n] with
// n = blockIdx.x·256 + threadIdx.x (pixel h·W + w), o = blockIdx.y, b = blockIdx.z.
// x0 [B, C0, H, W], x1 [B, C1, H, W] or null, w [O, C, k, k] f32, bias [O] or null,
// residual [B, O, H, W] or null, scale [C] / shift [C] or [B, C] or null, time [B, C, H] or null,
// out [B, O, H, W].
#define C2D_V1_THREADS 256

extern "C" __global__ void __launch_bounds__(C2D_V1_THREADS)
    conv2d_fwd_f32_v1(const float* __restrict__ x0, const float* __restrict__ x1, const float* __restrict__ w,
                      const float* __restrict__ bias, const float* __restrict__ residual, const float* __restrict__ scale,
                      const float* __restrict__ shift, const float* __restrict__ time, float* __restrict__ out,
                      const Conv2dParams p) {
    const int n = blockIdx.x * C2D_V1_THREADS + threadIdx.x;
    if (n >= p.hw) return;
    const int o = blockIdx.y, b = blockIdx.z;
    const int ph = n / p.w, pw = n % p.w;
    const int kk2 = p.k * p.k;
    float acc = 0.0f;
    for (int c = 0; c < p.ctot; ++c) {
        const float* plane = c < p.c0 ? x0 + (b * p.c0 + c) * p.hw : x1 + (b * p.c1 + (c - p.c0)) * p.hw;
        const float sc = p.has_pre ? scale[c] : 1.0f;
        const float sh = p.has_pre ? shift[b * p.shift_stride + c] : 0.0f;
        const float* wc = w + (o * p.ctot + c) * kk2;
        const float* tc = p.time_mode ? time + (b * p.ctot + c) * p.h : time;
        for (int i = 0; i < p.k; ++i) {
            const int hh = ph + i - p.pad;
            if (hh < 0 || hh >= p.h) continue;
            const float tv = p.time_mode ? tc[hh] : 0.0f;  // one value per (c, tap row)
            for (int j = 0; j < p.k; ++j) {
                const int ww = pw + j - p.pad;
                if (ww < 0 || ww >= p.w) continue;
                const float v = plane[hh * p.w + ww];
                const float a = p.has_pre ? c2d_act(v, sc, sh, tv, p.time_mode, p.slope) : v;
                acc = fmaf(wc[i * p.k + j], a, acc);
            }
        }
    }
    out[(b * p.cout + o) * p.hw + n] = c2d_epilogue(acc, b, o, n, bias, residual, p);
}

// ---------------------------------------------------------------------------------------------
// v2. Launch: grid (⌈H·W/BN⌉, ⌈O/BM⌉, B) × 256 threads, (BM, BN) = (64, 64) or (32, 128) as
// p.tile_m says. A block owns out[b, m0 .. m0+BM, n0 .. n0+BN] (m0 = blockIdx.y·BM output channels,
// n0 = blockIdx.x·BN pixels, b = blockIdx.z); thread t = ty·(BN/4) + tx owns rows ty + (BM/4)·i and
// pixels tx + (BN/4)·j, i, j < 4. Shared: Ws[16][64+4] (weight tile, k-major), Xs[16][128+4]
// (activated im2col tile), 12.5 KiB. Pointers as v1 (w f32, time [B, C, H] or null).
#define C2D_V2_BK 16
#define C2D_V2_THREADS 256
#define C2D_V2_LDW (64 + 4)
#define C2D_V2_LDX (128 + 4)

namespace {

template <int BM, int KS>
__device__ __forceinline__ void c2d_v2_tile(const float* __restrict__ x0, const float* __restrict__ x1, const float* __restrict__ w,
                                            const float* __restrict__ bias, const float* __restrict__ residual,
                                            const float* __restrict__ scale, const float* __restrict__ shift,
                                            const float* __restrict__ time, float* __restrict__ out, float (*Ws)[C2D_V2_LDW],
                                            float (*Xs)[C2D_V2_LDX], const Conv2dParams& p) {
    constexpr int BN = 4096 / BM;  // 64 or 128
    constexpr int TY = BM / 4, TX = BN / 4;
    constexpr int BK = C2D_V2_BK, NT = C2D_V2_THREADS;
    const int tid = threadIdx.x;
    const int tx = tid % TX, ty = tid / TX;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int b = blockIdx.z;
    const float* x0b = x0 + b * p.c0 * p.hw;
    const float* x1b = p.c1 > 0 ? x1 + b * p.c1 * p.hw : x1;
    const float* shb = p.has_pre ? shift + b * p.shift_stride : shift;
    const float* tb = p.time_mode ? time + b * p.ctot * p.h : time;
    // The im2col column this thread stages at every K step: pixel n0 + xn, rows xk + (NT/BN)·r.
    const int xn = tid % BN, xk = tid / BN;
    const int gn = n0 + xn;
    const bool n_ok = gn < p.hw;
    const int ph = n_ok ? gn / p.w : 0, pw = n_ok ? gn % p.w : 0;

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < p.kdim; k0 += BK) {
#pragma unroll
        for (int r = 0; r < BK * BN / NT; ++r) {
            const int kk = xk + r * (NT / BN);
            Xs[kk][xn] = c2d_gather<KS>(x0b, x1b, scale, shb, tb, k0 + kk, ph, pw, n_ok, p);
        }
#pragma unroll
        for (int r = 0; r < BM * BK / NT; ++r) {
            const int e = tid + r * NT;
            const int kk = e % BK, mm = e / BK;
            const int gm = m0 + mm, gk = k0 + kk;
            Ws[kk][mm] = (gm < p.cout && gk < p.kdim) ? w[gm * p.kdim + gk] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float ra[4], rb[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) ra[i] = Ws[kk][ty + TY * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) rb[j] = Xs[kk][tx + TX * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
        }
        __syncthreads();
    }

    float* ob = out + b * p.cout * p.hw;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int gm = m0 + ty + TY * i;
        if (gm >= p.cout) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int n = n0 + tx + TX * j;
            if (n < p.hw) ob[gm * p.hw + n] = c2d_epilogue(acc[i][j], b, gm, n, bias, residual, p);
        }
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(C2D_V2_THREADS)
    conv2d_fwd_f32_v2(const float* __restrict__ x0, const float* __restrict__ x1, const float* __restrict__ w,
                      const float* __restrict__ bias, const float* __restrict__ residual, const float* __restrict__ scale,
                      const float* __restrict__ shift, const float* __restrict__ time, float* __restrict__ out,
                      const Conv2dParams p) {
    __shared__ float Ws[C2D_V2_BK][C2D_V2_LDW];
    __shared__ float Xs[C2D_V2_BK][C2D_V2_LDX];
    if (p.tile_m == 32) {
        if (p.k == 3) c2d_v2_tile<32, 3>(x0, x1, w, bias, residual, scale, shift, time, out, Ws, Xs, p);
        else c2d_v2_tile<32, 1>(x0, x1, w, bias, residual, scale, shift, time, out, Ws, Xs, p);
    } else {
        if (p.k == 3) c2d_v2_tile<64, 3>(x0, x1, w, bias, residual, scale, shift, time, out, Ws, Xs, p);
        else c2d_v2_tile<64, 1>(x0, x1, w, bias, residual, scale, shift, time, out, Ws, Xs, p);
    }
}

// ---------------------------------------------------------------------------------------------
// v3. Launch: grid (⌈H·W/BN⌉, ⌈O/BM⌉, B) × 128 threads (4 warps), (BM, BN) = (64, 64) or (32, 128) as
// p.tile_m says. A block owns out[b, m0 .. m0+BM, n0 .. n0+BN] as v2; warp q owns the 32×32 sub-tile
// at rows (q / (BN/32))·32, pixels (q % (BN/32))·32 as 2×2 WMMA 16×16 f32 accumulators. Per K step
// of 32: As[BM][32+8] (f16 weight, row-major) and Bs[32][BN+8] (activated im2col rounded to f16),
// zero-filled past O, the pixels and K; then 2×2×2 mma_sync per warp. Epilogue through
// Cs[BM][BN+4] f32. Shared: 5 + 8.5 + 17 KiB. w [O, C, k, k] f16; the other pointers (time included)
// as v1.
#define C2D_V3_BK 32
#define C2D_V3_THREADS 128
#define C2D_V3_LDA (C2D_V3_BK + 8)
// Blocks per SM that __launch_bounds__ asks ptxas to keep resident: the shared memory (30.5 KiB +
// 1 KiB reserved per block) allows 7 on sm_90 (228 KiB per SM) — 7·128 threads leave ≤ 72 registers,
// which the time-FiLM path would otherwise exceed (80), costing a block per SM on every call — and 5
// on sm_80 (164 KiB: ≤ 102 registers, no constraint in practice).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define C2D_V3_MIN_BLOCKS 7
#else
#define C2D_V3_MIN_BLOCKS 5
#endif

namespace {

template <int BM, int KS>
__device__ __forceinline__ void c2d_v3_tile(const float* __restrict__ x0, const float* __restrict__ x1, const __half* __restrict__ w,
                                            const float* __restrict__ bias, const float* __restrict__ residual,
                                            const float* __restrict__ scale, const float* __restrict__ shift,
                                            const float* __restrict__ time, float* __restrict__ out, __half* As, __half* Bs, float* Cs,
                                            const Conv2dParams& p) {
    using namespace nvcuda;
    constexpr int BN = 4096 / BM;  // 64 or 128
    constexpr int BK = C2D_V3_BK, NT = C2D_V3_THREADS, LDA = C2D_V3_LDA;
    // Row pitches 80 B (As), 144 or 272 B (Bs), 272 or 528 B (Cs): every fragment origin (rows a
    // multiple of 16, columns a multiple of 16) stays on the 32-byte boundary WMMA requires.
    constexpr int LDB = BN + 8, LDC = BN + 4;
    constexpr int WC = BN / 32;  // warps across the pixels
    const int tid = threadIdx.x;
    const int warp = tid / 32;
    const int wm = (warp / WC) * 32, wn = (warp % WC) * 32;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
    const int b = blockIdx.z;
    const float* x0b = x0 + b * p.c0 * p.hw;
    const float* x1b = p.c1 > 0 ? x1 + b * p.c1 * p.hw : x1;
    const float* shb = p.has_pre ? shift + b * p.shift_stride : shift;
    const float* tb = p.time_mode ? time + b * p.ctot * p.h : time;
    const int xn = tid % BN, xk = tid / BN;
    const int gn = n0 + xn;
    const bool n_ok = gn < p.hw;
    const int ph = n_ok ? gn / p.w : 0, pw = n_ok ? gn % p.w : 0;
    const __half zero = __float2half(0.0f);

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    for (int k0 = 0; k0 < p.kdim; k0 += BK) {
        // Activated im2col tile (32 × BN): one pixel column per thread, rows xk + (NT/BN)·r.
#pragma unroll 4
        for (int r = 0; r < BK * BN / NT; ++r) {
            const int kk = xk + r * (NT / BN);
            Bs[kk * LDB + xn] = __float2half_rn(c2d_gather<KS>(x0b, x1b, scale, shb, tb, k0 + kk, ph, pw, n_ok, p));
        }
        // Weight tile (BM × 32) as stored: consecutive threads read consecutive K.
#pragma unroll 4
        for (int r = 0; r < BM * BK / NT; ++r) {
            const int e = tid + r * NT;
            const int kk = e % BK, mm = e / BK;
            const int gm = m0 + mm, gk = k0 + kk;
            As[mm * LDA + kk] = (gm < p.cout && gk < p.kdim) ? w[gm * p.kdim + gk] : zero;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm + 16 * i) * LDA + kk, LDA);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], Bs + kk * LDB + wn + 16 * j, LDB);
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
        for (int j = 0; j < 2; ++j) wmma::store_matrix_sync(Cs + (wm + 16 * i) * LDC + wn + 16 * j, acc[i][j], LDC, wmma::mem_row_major);
    __syncthreads();

    float* ob = out + b * p.cout * p.hw;
#pragma unroll 4
    for (int r = 0; r < BM * BN / NT; ++r) {
        const int e = tid + r * NT;
        const int mm = e / BN, nn = e % BN;
        const int gm = m0 + mm, n = n0 + nn;
        if (gm < p.cout && n < p.hw) ob[gm * p.hw + n] = c2d_epilogue(Cs[mm * LDC + nn], b, gm, n, bias, residual, p);
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(C2D_V3_THREADS, C2D_V3_MIN_BLOCKS)
    conv2d_fwd_f16_v3(const float* __restrict__ x0, const float* __restrict__ x1, const __half* __restrict__ w,
                      const float* __restrict__ bias, const float* __restrict__ residual, const float* __restrict__ scale,
                      const float* __restrict__ shift, const float* __restrict__ time, float* __restrict__ out,
                      const Conv2dParams p) {
    // Sized for the larger of the two tile shapes: As 64 × 40, Bs 32 × (128 + 8), Cs 64 × (64 + 4)
    // floats (≥ 32 × (128 + 4)).
    __shared__ __align__(32) __half As[64 * C2D_V3_LDA];
    __shared__ __align__(32) __half Bs[C2D_V3_BK * (128 + 8)];
    __shared__ __align__(32) float Cs[64 * (64 + 4)];
    if (p.tile_m == 32) {
        if (p.k == 3) c2d_v3_tile<32, 3>(x0, x1, w, bias, residual, scale, shift, time, out, As, Bs, Cs, p);
        else c2d_v3_tile<32, 1>(x0, x1, w, bias, residual, scale, shift, time, out, As, Bs, Cs, p);
    } else {
        if (p.k == 3) c2d_v3_tile<64, 3>(x0, x1, w, bias, residual, scale, shift, time, out, As, Bs, Cs, p);
        else c2d_v3_tile<64, 1>(x0, x1, w, bias, residual, scale, shift, time, out, As, Bs, Cs, p);
    }
}

// =============================================================================================
// Backward (runtime/src/ops/conv2d/backward.rs; f32 weight). With z = x·scale[c] + shift (+ t for
// Add, rounded as the forward rounds it) and leaky'(z) = z > 0 ? 1 : slope (PyTorch's choice at 0):
//   da[b, c, h, w] = Σ_{o, i, j} Wt[o, c, i, j]·dy[b, o, h − i + p, w − j + p]   (valid positions)
//   Add / none: dz = da·leaky'(z), dt = Σ_w dz;   Gate: dz = da·t·leaky'(z), dt = Σ_w da·leaky(z)
//   dx = dz·scale (dx = da without a pre-activation); per row: Σ_w dz·x, Σ_w dz
//   dWt[o, c, i, j] = Σ_{b, h, w} dy[b, o, h, w]·a[b, c, h + i − p, w + j − p]
// The host sums the per-row partials to dscale (over b, h), dshift (over h, and b for a (C) shift)
// and dbias = Σ_{b, h, w} dy, with the runtime's reduce kernels.
// Versions: v1 only (naive, the correctness baseline for training): bwd_data one block per input row,
// O·k² loads of dy and Wt per input element (Wt broadcast within the block, dy rows coalesced along
// w); bwd_weight one block per weight element, B·H·W products each (every input value re-read and
// re-activated O·k² times from L2). Flops: 2·B·O·H·W·C·k² each. Not done: a tiled implicit-GEMM
// version of both (as the forward's v2), which the separator's training will want.

#define C2D_BWD_DATA_THREADS 128
#define C2D_BWD_WEIGHT_THREADS 256

namespace {

// Block-wide sum of NV values per thread (blockDim.x a multiple of 32, ≤ 32 warps); the result is
// valid in every thread. Fixed reduction order (deterministic).
template <int NV>
__device__ __forceinline__ void c2d_block_sum(float (&v)[NV], float (*sh)[32]) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
    for (int q = 0; q < NV; ++q) v[q] = warp_sum(v[q]);
    if (lane == 0) {
#pragma unroll
        for (int q = 0; q < NV; ++q) sh[q][warp] = v[q];
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < NV; ++q) {
        float s = lane < warps ? sh[q][lane] : 0.0f;
        v[q] = warp_sum(s);
    }
    __syncthreads();
}

}  // namespace

// bwd_data v1. Launch: grid (H, C, B) × 128 threads. Block owns input row (b, c, h) (c over the
// concatenation), thread owns columns w = threadIdx.x + 128·m. dy [B, O, H, W], w [O, C, k, k],
// x0/x1 [B, C0|C1, H, W] (x1 null when C1 = 0), scale [C] / shift [C] or [B, C] / time [B, C, H]
// (null without pre-activation / time-FiLM), dx0 [B, C0, H, W], dx1 [B, C1, H, W] or null;
// dt, psc, psh [B, C, H] (null without pre-activation): Σ_w of the time gradient, of dz·x, of dz.
extern "C" __global__ void __launch_bounds__(C2D_BWD_DATA_THREADS)
    conv2d_data_bwd_f32_v1(const float* __restrict__ dy, const float* __restrict__ w, const float* __restrict__ x0,
                           const float* __restrict__ x1, const float* __restrict__ scale, const float* __restrict__ shift,
                           const float* __restrict__ time, float* __restrict__ dx0, float* __restrict__ dx1,
                           float* __restrict__ dt, float* __restrict__ psc, float* __restrict__ psh, const Conv2dParams p) {
    __shared__ float sh_red[3][32];
    const int h = blockIdx.x, c = blockIdx.y, b = blockIdx.z;
    const int kk2 = p.k * p.k;
    const bool first = c < p.c0;
    const float* xrow = first ? x0 + ((b * p.c0 + c) * p.h + h) * p.w : x1 + ((b * p.c1 + (c - p.c0)) * p.h + h) * p.w;
    float* dxrow = first ? dx0 + ((b * p.c0 + c) * p.h + h) * p.w : dx1 + ((b * p.c1 + (c - p.c0)) * p.h + h) * p.w;
    float sc = 1.0f, shv = 0.0f, tv = 0.0f;
    if (p.has_pre) {
        sc = scale[c];
        shv = shift[b * p.shift_stride + c];
        if (p.time_mode) tv = time[(b * p.ctot + c) * p.h + h];
    }
    float acc[3] = {0.0f, 0.0f, 0.0f};  // Σ dt-term, Σ dz·x, Σ dz
    for (int ww = threadIdx.x; ww < p.w; ww += C2D_BWD_DATA_THREADS) {
        float da = 0.0f;
        for (int o = 0; o < p.cout; ++o) {
            const float* wc = w + (o * p.ctot + c) * kk2;
            const float* dyo = dy + (b * p.cout + o) * p.hw;
            for (int i = 0; i < p.k; ++i) {
                const int oh = h - i + p.pad;
                if (oh < 0 || oh >= p.h) continue;
                for (int j = 0; j < p.k; ++j) {
                    const int ow = ww - j + p.pad;
                    if (ow < 0 || ow >= p.w) continue;
                    da = fmaf(wc[i * p.k + j], dyo[oh * p.w + ow], da);
                }
            }
        }
        if (!p.has_pre) {
            dxrow[ww] = da;
            continue;
        }
        const float x = xrow[ww];
        float z = __fadd_rn(__fmul_rn(x, sc), shv);
        if (p.time_mode == C2D_TIME_ADD) z = __fadd_rn(z, tv);
        const float d1 = z > 0.0f ? 1.0f : p.slope;
        float dz, dtc;
        if (p.time_mode == C2D_TIME_GATE) {
            const float lz = z < 0.0f ? __fmul_rn(z, p.slope) : z;
            dz = __fmul_rn(__fmul_rn(da, tv), d1);
            dtc = __fmul_rn(da, lz);
        } else {
            dz = __fmul_rn(da, d1);
            dtc = dz;
        }
        dxrow[ww] = __fmul_rn(dz, sc);
        acc[0] += dtc;
        acc[1] = fmaf(dz, x, acc[1]);
        acc[2] += dz;
    }
    if (!p.has_pre) return;  // uniform over the block
    c2d_block_sum<3>(acc, sh_red);
    if (threadIdx.x == 0) {
        const int r = (b * p.ctot + c) * p.h + h;
        dt[r] = acc[0];
        psc[r] = acc[1];
        psh[r] = acc[2];
    }
}

// bwd_weight v1. Launch: grid (k², C, O) × 256 threads. Block owns dWt[o, c, i, j] with
// (i, j) = (blockIdx.x / k, blockIdx.x % k), c = blockIdx.y, o = blockIdx.z; thread owns the pixels
// n = threadIdx.x + 256·m of the B·H·W ones, the input tap activated as the forward activates it.
// dy [B, O, H, W]; x0, x1, scale, shift, time as in bwd_data; dw [O, C, k, k].
extern "C" __global__ void __launch_bounds__(C2D_BWD_WEIGHT_THREADS)
    conv2d_weight_bwd_f32_v1(const float* __restrict__ dy, const float* __restrict__ x0, const float* __restrict__ x1,
                             const float* __restrict__ scale, const float* __restrict__ shift,
                             const float* __restrict__ time, float* __restrict__ dw, const Conv2dParams p) {
    __shared__ float sh_red[1][32];
    const int t = blockIdx.x, c = blockIdx.y, o = blockIdx.z;
    const int i = t / p.k, j = t % p.k;
    const bool first = c < p.c0;
    const float sc = p.has_pre ? scale[c] : 1.0f;
    float acc[1] = {0.0f};
    const int total = p.batch * p.hw;
    for (int n = threadIdx.x; n < total; n += C2D_BWD_WEIGHT_THREADS) {
        const int b = n / p.hw, pix = n - b * p.hw;
        const int ph = pix / p.w, pw = pix - ph * p.w;
        const int hh = ph + i - p.pad, ww = pw + j - p.pad;
        if (hh < 0 || hh >= p.h || ww < 0 || ww >= p.w) continue;
        const int off = hh * p.w + ww;
        float a = first ? x0[(b * p.c0 + c) * p.hw + off] : x1[(b * p.c1 + (c - p.c0)) * p.hw + off];
        if (p.has_pre) {
            const float tv = p.time_mode ? time[(b * p.ctot + c) * p.h + hh] : 0.0f;
            a = c2d_act(a, sc, shift[b * p.shift_stride + c], tv, p.time_mode, p.slope);
        }
        acc[0] = fmaf(dy[(b * p.cout + o) * p.hw + pix], a, acc[0]);
    }
    c2d_block_sum<1>(acc, sh_red);
    if (threadIdx.x == 0) dw[(o * p.ctot + c) * (p.k * p.k) + t] = acc[0];
}
