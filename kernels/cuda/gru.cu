// gru.cu — the recurrence of a (bidirectional) GRU layer, torch.nn.GRU semantics.
//
// Math (per direction d, batch b, step s; PyTorch gate order r | z | n):
//   xp = x·W_ihᵀ + b_ih is computed beforehand for every step by the matmul family (one GEMM for all
//   steps and both directions); this file runs only the sequential part:
//   gh = W_hh·h + b_hh
//   r = σ(xp_r + gh_r), z = σ(xp_z + gh_z), n = tanh(xp_n + r ⊙ gh_n), h′ = (1 − z) ⊙ n + z ⊙ h.
//   The forward direction visits t = 0, 1, …, T−1; the reverse one t = T−1, …, 0 (s ↦ T−1−s).
// Layouts (axis letters): xp [B, T, D·3H] (direction d's gates at columns d·3H + g·H + j);
//   out [B, T, D·H] (direction d at columns d·H + j — torch's batch_first output); h0 [D, B, H];
//   bhh [D·3H]; v1 reads whh [D, 3H, H] (torch's weight_hh_l{k}[_reverse] stacked), v2 reads the
//   transpose whhT [D, H, 3H] (so that threads j, j+1 of a warp read adjacent addresses).
// h_{t−1} is never stored separately: it is out[b, t_prev, d·H + :] (or h0 at the first step).
// Build: compiled at run time by NVRTC; under the emulator as C++.
//
// Versions (llm.c style, one line each):
//   v1 — one launch per step (T launches), one thread per (d, b, j) computing three dot products of
//        W_hh rows with h_{t−1} (read from out/h0). The naive port of the CPU reference; uncoalesced
//        W_hh reads (adjacent threads are H floats apart) and a launch per step (~3–5 µs each).
//   v2 — persistent: one launch for all T steps. Grid (D, ⌈B/GRU_BPB⌉): one block per direction
//        (and group of ≤ GRU_BPB = 2 batch elements), so both directions run concurrently on two SMs
//        and no block ever waits for another (no grid sync: the emulator runs blocks one after
//        another, and the design needs none). Block = one thread per hidden unit j (H ≤ 1024). h for
//        the group lives in shared memory (BPB·H floats); each step every thread streams its three
//        columns of whhT (coalesced across the warp) once and uses each weight for all batch
//        elements of the group, then two __syncthreads() publish h′. The next step's xp values are
//        prefetched into registers before the dot products.
//        Choice of where W_hh lives: for H = 384 it is 3H·H·4 = 1.77 MB per direction — more than
//        one SM's shared memory (228 KB) plus registers (256 KB), so it is read from global memory
//        every step and stays resident in L2 (3.5 MB for both directions ≪ 50 MB on an H100).
//        Bytes per step per block: 12·H² (W_hh from L2) + 12·H·BPB (xp) + 4·H·BPB (out) + 12·H (b_hh)
//        → 1.78 MB at H = 384, B = 1; the step is bounded by one SM's L2 bandwidth.
//   v3 — v2 with float4 weight loads and split k: W_hh is re-laid out once per call as whh4
//        [D, H/4, 3H, 4] (4 consecutive k of one row in 16 B, adjacent hidden units adjacent), and
//        S = 2 … 8 thread groups (S·round_up(H, 32) ≤ 1024) each sum a slice of k, partial sums meet
//        in shared memory. v2 is latency-bound, not bandwidth-bound: 384 threads × 12 scalar loads
//        in flight ≈ 18 KB per SM against ~600 cycles of L2 latency ≈ 30 B/cycle (1.77 MB / 30 B ≈
//        60 k cycles ≈ 34 µs per step, as measured); v3 keeps S·4× as many bytes in flight.
//        Needs H % 4 == 0 (else the dispatcher takes v2). Same bytes per step as v2.
//   Not yet: splitting a direction over a thread-block cluster (sm_90 distributed shared memory holds
//   W_hh across 8 SMs, synced with cluster barriers) — needs cluster sync, which the emulator lacks;
//   keeping a slice of whhT in shared memory (≤ 13 % of it at H = 384).
//
// Backward: gru_bwd_f32_v1 and _v2 (bottom of this file) run the sequential part of
// backpropagation through time; their header states the math.
//
// Measured (aural bench, H100 80GB HBM3, case bi_T1010_I768_H384_B1 = BiGRU 768 → 384, 1010 steps,
// batch 1, input-projection GEMM included): v1 91.8 ms, v2 36.3 ms, v3 11.9 ms; torch.nn.GRU on the
// same GPU (cuDNN, torch 2.11) 28.6 ms. ptxas (sm_90): v1 40, v2 56, v3 64 registers, no spills
// (GRU_BPB = 4 or a 4-deep unroll in v3 spilled at the 64-register cap of 1024-thread blocks).

struct GruParams {
    int batch;    // B
    int steps;    // T
    int hidden;   // H
    int dirs;     // D (1 or 2)
    int has_h0;   // h0 is read (else zeros)
    int step;     // v1: the step s of this launch; v2, v3: unused
    int splits;   // v3: S, thread groups splitting the k range (1 … 8)
    int pad1;
};
static_assert(sizeof(GruParams) == 32, "GruParams must match runtime/src/ops/gru/cuda.rs");

#define GRU_BPB 2  // v2, v3: batch elements per block (more would spill at 64 registers/thread)

namespace {  // helpers: internal linkage (no clashes with other families under the emulator)

__device__ __forceinline__ float gru_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

}  // namespace

// v1. Launch (once per step s): 1-D grid × 128 threads, grid-stride over D·B·H; thread i owns
// (d, b, j) = (i / (B·H), (i / H) % B, i % H) and writes out[b, t, d·H + j] with t = s (d = 0) or
// T−1−s (d = 1). xp: [B, T, D·3H]; whh: [D, 3H, H]; bhh: [D·3H]; h0: [D, B, H] (read when has_h0);
// out: [B, T, D·H] (also read: h_{t−1} of the previous launch).
extern "C" __global__ void gru_fwd_f32_v1(const float* __restrict__ xp, const float* __restrict__ whh,
                                          const float* __restrict__ bhh, const float* __restrict__ h0,
                                          float* __restrict__ out, const GruParams p) {
    const int H = p.hidden, B = p.batch, T = p.steps, D = p.dirs;
    const int total = D * B * H;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const int d = i / (B * H), b = (i / H) % B, j = i % H;
        const int t = d == 0 ? p.step : T - 1 - p.step;
        const int tprev = d == 0 ? t - 1 : t + 1;
        const float* hp = nullptr;  // h_{t−1}
        if (p.step > 0) hp = out + ((size_t)b * T + tprev) * D * H + (size_t)d * H;
        else if (p.has_h0) hp = h0 + ((size_t)d * B + b) * H;
        const float* w = whh + (size_t)d * 3 * H * H;
        float ar = bhh[d * 3 * H + j], az = bhh[d * 3 * H + H + j], an = bhh[d * 3 * H + 2 * H + j];
        float hj = 0.0f;
        if (hp) {
            for (int k = 0; k < H; ++k) {
                const float hk = hp[k];
                ar += w[(size_t)j * H + k] * hk;
                az += w[(size_t)(H + j) * H + k] * hk;
                an += w[(size_t)(2 * H + j) * H + k] * hk;
            }
            hj = hp[j];
        }
        const float* x = xp + ((size_t)b * T + t) * D * 3 * H + (size_t)d * 3 * H;
        const float r = gru_sigmoid(x[j] + ar);
        const float z = gru_sigmoid(x[H + j] + az);
        const float n = tanhf(x[2 * H + j] + r * an);
        out[((size_t)b * T + t) * D * H + (size_t)d * H + j] = (1.0f - z) * n + z * hj;
    }
}

// The input projections of step t for NB batch rows b0 + bb, at hidden unit j of direction d:
// xr/xz/xn[bb] = xp[b0 + bb, t, d, {0, H, 2H} + j], or 0 where !active (the pointer is only formed
// when active, so t may be out of range then). Used by the persistent forward kernels v2/v3.
template <int NB>
__device__ __forceinline__ void gru_load_xp(const float* __restrict__ xp, int b0, int t, int T, int D, int H, int d, int j, bool active,
                                            float (&xr)[NB], float (&xz)[NB], float (&xn)[NB]) {
#pragma unroll
    for (int bb = 0; bb < NB; ++bb) {
        xr[bb] = xz[bb] = xn[bb] = 0.0f;
        if (active) {
            const float* x = xp + ((size_t)(b0 + bb) * T + t) * D * 3 * H + (size_t)d * 3 * H;
            xr[bb] = x[j];
            xz[bb] = x[H + j];
            xn[bb] = x[2 * H + j];
        }
    }
}

// v2 body for a group of NB batch elements (NB = 1 or GRU_BPB = 2, a compile-time constant so the
// per-batch accumulators stay in registers and B = 1 does no wasted work).
template <int NB>
__device__ __forceinline__ void gru_v2_run(const float* __restrict__ xp, const float* __restrict__ whhT,
                                           const float* __restrict__ bhh, const float* __restrict__ h0,
                                           float* __restrict__ out, const GruParams& p, float* hs, int b0) {
    const int H = p.hidden, B = p.batch, T = p.steps, D = p.dirs;
    const int d = blockIdx.x;
    const int j = threadIdx.x;
    const bool own = j < H;
    const float* w = whhT + (size_t)d * H * 3 * H;

    for (int i = threadIdx.x; i < NB * H; i += blockDim.x) {
        const int bb = i / H, k = i % H;
        hs[i] = p.has_h0 ? h0[((size_t)d * B + b0 + bb) * H + k] : 0.0f;
    }
    float br = 0.0f, bz = 0.0f, bn = 0.0f;
    if (own) {
        br = bhh[d * 3 * H + j];
        bz = bhh[d * 3 * H + H + j];
        bn = bhh[d * 3 * H + 2 * H + j];
    }
    // xp of the current step, prefetched one step ahead.
    float xr[NB], xz[NB], xn[NB];
    gru_load_xp<NB>(xp, b0, d == 0 ? 0 : T - 1, T, D, H, d, j, own && T > 0, xr, xz, xn);
    __syncthreads();

    for (int s = 0; s < T; ++s) {
        const int t = d == 0 ? s : T - 1 - s;
        float ar[NB], az[NB], an[NB];
#pragma unroll
        for (int bb = 0; bb < NB; ++bb) {
            ar[bb] = br;
            az[bb] = bz;
            an[bb] = bn;
        }
        // Next step's xp (its latency hides behind the dot products).
        float nxr[NB], nxz[NB], nxn[NB];
        gru_load_xp<NB>(xp, b0, d == 0 ? s + 1 : T - 2 - s, T, D, H, d, j, own && s + 1 < T, nxr, nxz, nxn);
        if (own) {
#pragma unroll 4
            for (int k = 0; k < H; ++k) {
                const float* wk = w + (size_t)k * 3 * H;
                const float wr = __ldg(wk + j), wz = __ldg(wk + H + j), wn = __ldg(wk + 2 * H + j);
#pragma unroll
                for (int bb = 0; bb < NB; ++bb) {
                    const float hk = hs[bb * H + k];  // broadcast read
                    ar[bb] += wr * hk;
                    az[bb] += wz * hk;
                    an[bb] += wn * hk;
                }
            }
        }
        float hn[NB];
#pragma unroll
        for (int bb = 0; bb < NB; ++bb) {
            hn[bb] = 0.0f;
            if (own) {
                const float r = gru_sigmoid(xr[bb] + ar[bb]);
                const float z = gru_sigmoid(xz[bb] + az[bb]);
                const float n = tanhf(xn[bb] + r * an[bb]);
                hn[bb] = (1.0f - z) * n + z * hs[bb * H + j];
            }
        }
        __syncthreads();  // every thread has read h_{t−1}
        if (own) {
#pragma unroll
            for (int bb = 0; bb < NB; ++bb) {
                hs[bb * H + j] = hn[bb];
                out[((size_t)(b0 + bb) * T + t) * D * H + (size_t)d * H + j] = hn[bb];
                xr[bb] = nxr[bb];
                xz[bb] = nxz[bb];
                xn[bb] = nxn[bb];
            }
        }
        __syncthreads();  // h_t published
    }
}

// v2 (persistent). Launch: grid (D, ⌈B/GRU_BPB⌉) × round_up(H, 32) threads (≤ 1024), dynamic
// shared memory GRU_BPB·H floats. Block (d, g) owns direction d and batch elements
// g·GRU_BPB … min(B, (g+1)·GRU_BPB) − 1 for all T steps; thread j < H owns hidden unit j.
// xp: [B, T, D·3H]; whhT: [D, H, 3H]; bhh: [D·3H]; h0: [D, B, H] (read when has_h0); out: [B, T, D·H].
extern "C" __global__ void __launch_bounds__(1024) gru_fwd_f32_v2(const float* __restrict__ xp,
                                                                  const float* __restrict__ whhT,
                                                                  const float* __restrict__ bhh,
                                                                  const float* __restrict__ h0,
                                                                  float* __restrict__ out, const GruParams p) {
    extern __shared__ float gru_h[];  // [GRU_BPB][H]
    const int b0 = blockIdx.y * GRU_BPB;
    switch (min(GRU_BPB, p.batch - b0)) {  // uniform across the block
        case 1: gru_v2_run<1>(xp, whhT, bhh, h0, out, p, gru_h, b0); break;
        default: gru_v2_run<2>(xp, whhT, bhh, h0, out, p, gru_h, b0); break;
    }
}

// v3 body: v2 with (a) W_hh in a k-quad interleaved layout whh4 [D, H/4, 3H, 4] so each load is a
// float4 of 4 consecutive k (coalesced across the warp: adjacent j are adjacent 16 B), and (b) the
// k range split over S thread groups: thread (s, j) = (threadIdx.x / HP, threadIdx.x % HP), HP =
// round_up(H, 32), sums k-quads s·kq … min(H/4, (s+1)·kq) − 1 (kq = ⌈H/4 / S⌉); groups s > 0 leave
// their partial sums in shared memory, group 0 adds them and applies the gates. Both raise the bytes
// in flight per SM (the limit of v2: one thread per unit with 12 scalar loads in flight).
template <int NB>
__device__ __forceinline__ void gru_v3_run(const float* __restrict__ xp, const float4* __restrict__ whh4,
                                           const float* __restrict__ bhh, const float* __restrict__ h0,
                                           float* __restrict__ out, const GruParams& p, float* hs, int b0) {
    const int H = p.hidden, B = p.batch, T = p.steps, D = p.dirs, S = p.splits;
    const int HP = (H + 31) / 32 * 32;
    const int d = blockIdx.x;
    const int sg = threadIdx.x / HP, j = threadIdx.x % HP;
    const bool own = j < H;
    const int H4 = H / 4;
    const int kq = (H4 + S - 1) / S;
    const int q0 = sg * kq, q1 = min(H4, q0 + kq);
    const float4* w = whh4 + (size_t)d * H4 * 3 * H;
    float* part = hs + NB * H;  // [S − 1][3][NB][H]

    for (int i = threadIdx.x; i < NB * H; i += blockDim.x) {
        const int bb = i / H, k = i % H;
        hs[i] = p.has_h0 ? h0[((size_t)d * B + b0 + bb) * H + k] : 0.0f;
    }
    float br = 0.0f, bz = 0.0f, bn = 0.0f;
    if (own && sg == 0) {
        br = bhh[d * 3 * H + j];
        bz = bhh[d * 3 * H + H + j];
        bn = bhh[d * 3 * H + 2 * H + j];
    }
    float xr[NB], xz[NB], xn[NB];
    gru_load_xp<NB>(xp, b0, d == 0 ? 0 : T - 1, T, D, H, d, j, own && sg == 0 && T > 0, xr, xz, xn);
    __syncthreads();

    for (int s = 0; s < T; ++s) {
        const int t = d == 0 ? s : T - 1 - s;
        float ar[NB], az[NB], an[NB];
#pragma unroll
        for (int bb = 0; bb < NB; ++bb) {
            ar[bb] = br;
            az[bb] = bz;
            an[bb] = bn;
        }
        float nxr[NB], nxz[NB], nxn[NB];
        gru_load_xp<NB>(xp, b0, d == 0 ? s + 1 : T - 2 - s, T, D, H, d, j, own && sg == 0 && s + 1 < T, nxr, nxz, nxn);
        if (own) {
#pragma unroll 2
            for (int q = q0; q < q1; ++q) {
                const float4* wq = w + (size_t)q * 3 * H;
                const float4 wr = __ldg(wq + j), wz = __ldg(wq + H + j), wn = __ldg(wq + 2 * H + j);
#pragma unroll
                for (int bb = 0; bb < NB; ++bb) {
                    const float4 hk = *reinterpret_cast<const float4*>(hs + bb * H + 4 * q);  // broadcast
                    ar[bb] += wr.x * hk.x + wr.y * hk.y + wr.z * hk.z + wr.w * hk.w;
                    az[bb] += wz.x * hk.x + wz.y * hk.y + wz.z * hk.z + wz.w * hk.w;
                    an[bb] += wn.x * hk.x + wn.y * hk.y + wn.z * hk.z + wn.w * hk.w;
                }
            }
            if (sg > 0) {
#pragma unroll
                for (int bb = 0; bb < NB; ++bb) {
                    part[(((sg - 1) * 3 + 0) * NB + bb) * H + j] = ar[bb];
                    part[(((sg - 1) * 3 + 1) * NB + bb) * H + j] = az[bb];
                    part[(((sg - 1) * 3 + 2) * NB + bb) * H + j] = an[bb];
                }
            }
        }
        __syncthreads();  // every dot product is done: h_{t−1} and the partial sums are final
        if (own && sg == 0) {
#pragma unroll
            for (int bb = 0; bb < NB; ++bb) {
                for (int g = 1; g < S; ++g) {
                    ar[bb] += part[(((g - 1) * 3 + 0) * NB + bb) * H + j];
                    az[bb] += part[(((g - 1) * 3 + 1) * NB + bb) * H + j];
                    an[bb] += part[(((g - 1) * 3 + 2) * NB + bb) * H + j];
                }
                const float r = gru_sigmoid(xr[bb] + ar[bb]);
                const float z = gru_sigmoid(xz[bb] + az[bb]);
                const float n = tanhf(xn[bb] + r * an[bb]);
                const float hv = (1.0f - z) * n + z * hs[bb * H + j];  // only thread j touches hs[bb·H + j] here
                hs[bb * H + j] = hv;
                out[((size_t)(b0 + bb) * T + t) * D * H + (size_t)d * H + j] = hv;
                xr[bb] = nxr[bb];
                xz[bb] = nxz[bb];
                xn[bb] = nxn[bb];
            }
        }
        __syncthreads();  // h_t published, partial sums consumed
    }
}

// v3 (persistent, split-k, float4 weights). Launch: grid (D, ⌈B/GRU_BPB⌉) × S·round_up(H, 32)
// threads (≤ 1024; S = GruParams.splits), dynamic shared memory (NB + (S − 1)·3·NB)·H floats with
// NB = min(B, GRU_BPB). Needs H % 4 == 0. Block (d, g) owns direction d and batch elements
// g·GRU_BPB … for all T steps (no grid sync). xp: [B, T, D·3H]; whh4: [D, H/4, 3H, 4] (float4);
// bhh: [D·3H]; h0: [D, B, H] (read when has_h0); out: [B, T, D·H].
extern "C" __global__ void __launch_bounds__(1024) gru_fwd_f32_v3(const float* __restrict__ xp,
                                                                  const float* __restrict__ whh4,
                                                                  const float* __restrict__ bhh,
                                                                  const float* __restrict__ h0,
                                                                  float* __restrict__ out, const GruParams p) {
    extern __shared__ float gru_h3[];
    const int b0 = blockIdx.y * GRU_BPB;
    const float4* w4 = reinterpret_cast<const float4*>(whh4);
    switch (min(GRU_BPB, p.batch - b0)) {  // uniform across the block
        case 1: gru_v3_run<1>(xp, w4, bhh, h0, out, p, gru_h3, b0); break;
        default: gru_v3_run<2>(xp, w4, bhh, h0, out, p, gru_h3, b0); break;
    }
}

// ---------------------------------------------------------------------------------------------
// Backward (autograd): backpropagation through time of one layer, the sequential part only.
// runtime/src/ops/gru/backward.rs runs the rest as GEMMs over all steps. Per direction d, batch b,
// step t in reverse processing order (t = T−1 … 0 for d = 0, 0 … T−1 for d = 1), with dh carried
// from the step after:
//   dh += dy[b, t, d·H + j];  gates r, z, n recomputed from xp and gh (saved by the forward);
//   da_n = dh·(1 − z)·(1 − n²);  da_z = dh·(h_prev − n)·z·(1 − z);  da_r = da_n·gh_n·r·(1 − r);
//   dxp = [da_r, da_z, da_n];  dgh = [da_r, da_z, da_n·r];  dh ← dh·z + W_hhᵀ·dgh.
// h_prev = y at the previous step of the direction (0 at its first step: h0 = 0 in training).
//
// Versions:
//   v1 — persistent like gru_fwd_f32_v2: grid (D, ⌈B/GRU_BPB⌉), one thread per hidden unit j, one
//        launch for all T steps, no grid sync. Thread j keeps dh[j] of its batch elements in
//        registers; dgh of the step goes to shared memory (GRU_BPB·3H floats); then thread j sums
//        Σ_r W_hh[r, j]·dgh[r] over the 3H rows of the natural layout whh [D, 3H, H] — adjacent
//        threads read adjacent addresses (coalesced, no transposed copy), dgh[r] is a broadcast.
//        Bytes per step per block: 12·H² (W_hh, L2-resident) + 4·H·NB·(2 + 6 + 1 + 6) (dy, y, xp,
//        gh read; dxp, dgh written). Same latency-bound structure as the forward v2 (one scalar load
//        per FMA chain step); kept as the reference and for H % 4 ≠ 0.
//   v2 — v1 with float4 weight loads and the 3H rows split over S ≤ 8 thread groups (forward v3's
//        fix of the same latency limit): see its comment below. The dispatcher's choice when
//        H % 4 == 0 and the partial sums fit in 48 KiB. Not yet timed on a GPU (no GPU reachable from
//        this branch's sessions); ptxas (sm_90): v1 57 registers, v2 64, no spills.
//
// Launch: grid (D, ⌈B/GRU_BPB⌉) × round_up(H, 32) threads (H ≤ 1024), dynamic shared memory
// GRU_BPB·3H floats. xp, gh: [B, T, D·3H] (saved pre-activations); whh: [D, 3H, H]; y, dy:
// [B, T, D·H]; dxp, dgh: [B, T, D·3H] (outputs, every element written).

/// The gate part of one backward step, shared by the backward kernels: for hidden unit j of
/// direction d at step t and each of the NB batch rows from b0, the pre-activation gradients
/// da_r, da_z, da_n (to dxp), the recurrent ones da_r, da_z, da_n·r (to dgh and, for this step's
/// W_hhᵀ product, to shared memory sg [NB][3H]), and the carried dh ← (dh + dy)·z.
template <int NB>
__device__ __forceinline__ void gru_bwd_gates(const float* __restrict__ xp, const float* __restrict__ gh, const float* __restrict__ y,
                                              const float* __restrict__ dy, float* __restrict__ dxp, float* __restrict__ dgh, float* sg,
                                              int H, int T, int D, int d, int t, int b0, int j, float (&dh)[NB]) {
    const int H3 = 3 * H;
    const int tp = d == 0 ? t - 1 : t + 1;
    const bool has_prev = d == 0 ? t > 0 : t < T - 1;
#pragma unroll
    for (int bb = 0; bb < NB; ++bb) {
        const size_t row = (size_t)(b0 + bb) * T + t;
        const size_t g = row * D * H3 + (size_t)d * H3;
        const float dhj = dh[bb] + dy[row * D * H + (size_t)d * H + j];
        const float r = gru_sigmoid(xp[g + j] + gh[g + j]);
        const float z = gru_sigmoid(xp[g + H + j] + gh[g + H + j]);
        const float ghn = gh[g + 2 * H + j];
        const float n = tanhf(xp[g + 2 * H + j] + r * ghn);
        const float hp = has_prev ? y[((size_t)(b0 + bb) * T + tp) * D * H + (size_t)d * H + j] : 0.0f;
        const float da_n = dhj * (1.0f - z) * (1.0f - n * n);
        const float da_z = dhj * (hp - n) * z * (1.0f - z);
        const float da_r = da_n * ghn * r * (1.0f - r);
        dxp[g + j] = da_r;
        dxp[g + H + j] = da_z;
        dxp[g + 2 * H + j] = da_n;
        dgh[g + j] = da_r;
        dgh[g + H + j] = da_z;
        dgh[g + 2 * H + j] = da_n * r;
        sg[bb * H3 + j] = da_r;
        sg[bb * H3 + H + j] = da_z;
        sg[bb * H3 + 2 * H + j] = da_n * r;
        dh[bb] = dhj * z;
    }
}

template <int NB>
__device__ __forceinline__ void gru_bwd_v1_run(const float* __restrict__ xp, const float* __restrict__ gh,
                                               const float* __restrict__ whh, const float* __restrict__ y,
                                               const float* __restrict__ dy, float* __restrict__ dxp,
                                               float* __restrict__ dgh, const GruParams& p, float* sg, int b0) {
    const int H = p.hidden, T = p.steps, D = p.dirs;
    const int H3 = 3 * H;
    const int d = blockIdx.x;
    const int j = threadIdx.x;
    const bool own = j < H;
    const float* w = whh + (size_t)d * H3 * H;
    float dh[NB];
#pragma unroll
    for (int bb = 0; bb < NB; ++bb) dh[bb] = 0.0f;

    for (int s = 0; s < T; ++s) {
        const int t = d == 0 ? T - 1 - s : s;
        if (own) gru_bwd_gates<NB>(xp, gh, y, dy, dxp, dgh, sg, H, T, D, d, t, b0, j, dh);
        __syncthreads();  // dgh of the step is in shared memory
        if (own && s + 1 < T) {
            // Four rows per iteration: four independent loads in flight before their FMAs.
            int r = 0;
            for (; r + 4 <= H3; r += 4) {
                const float w0 = __ldg(w + (size_t)r * H + j), w1 = __ldg(w + (size_t)(r + 1) * H + j);
                const float w2 = __ldg(w + (size_t)(r + 2) * H + j), w3 = __ldg(w + (size_t)(r + 3) * H + j);
#pragma unroll
                for (int bb = 0; bb < NB; ++bb) {
                    const float* v = sg + bb * H3 + r;
                    dh[bb] = fmaf(w0, v[0], fmaf(w1, v[1], fmaf(w2, v[2], fmaf(w3, v[3], dh[bb]))));
                }
            }
            for (; r < H3; ++r) {
                const float wv = __ldg(w + (size_t)r * H + j);
#pragma unroll
                for (int bb = 0; bb < NB; ++bb) dh[bb] = fmaf(wv, sg[bb * H3 + r], dh[bb]);
            }
        }
        __syncthreads();  // sg is overwritten at the next step
    }
}

extern "C" __global__ void __launch_bounds__(1024) gru_bwd_f32_v1(const float* __restrict__ xp, const float* __restrict__ gh,
                                                                  const float* __restrict__ whh, const float* __restrict__ y,
                                                                  const float* __restrict__ dy, float* __restrict__ dxp,
                                                                  float* __restrict__ dgh, const GruParams p) {
    extern __shared__ float gru_bwd_s[];  // [GRU_BPB][3H]
    const int b0 = blockIdx.y * GRU_BPB;
    switch (min(GRU_BPB, p.batch - b0)) {  // uniform across the block
        case 1: gru_bwd_v1_run<1>(xp, gh, whh, y, dy, dxp, dgh, p, gru_bwd_s, b0); break;
        default: gru_bwd_v1_run<2>(xp, gh, whh, y, dy, dxp, dgh, p, gru_bwd_s, b0); break;
    }
}

// v2 of the backward: v1 with float4 weight loads and the 3H rows of W_hhᵀ·dgh split over S thread
// groups (the latency fix of gru_fwd_f32_v3, applied to the transposed product). Thread (g, q) =
// (tid / HQ, tid % HQ), HQ = round_up(H/4, 32), owns hidden units 4q … 4q+3 and rows
// g·rk … min(3H, (g+1)·rk) − 1 (rk = ⌈3H/S⌉): it reads W_hh[r, 4q..4q+3] as one float4 (adjacent q
// adjacent 16 B: coalesced) and leaves 4 partial sums per batch element in shared memory; threads
// tid < H then add the S partials of unit tid. The gate part is v1's, by threads tid < H (the launcher
// guarantees S·HQ ≥ H). Needs H % 4 == 0. Same bytes per step as v1, S·4× the bytes in flight.
//
// Launch: grid (D, ⌈B/GRU_BPB⌉) × S·HQ threads (≤ 1024; S = GruParams.splits), dynamic shared memory
// (NB·3H + S·NB·H) floats, NB = min(B, GRU_BPB). Pointers as v1 (whh [D, 3H, H] read as float4).
template <int NB>
__device__ __forceinline__ void gru_bwd_v2_run(const float* __restrict__ xp, const float* __restrict__ gh,
                                               const float4* __restrict__ whh4, const float* __restrict__ y,
                                               const float* __restrict__ dy, float* __restrict__ dxp,
                                               float* __restrict__ dgh, const GruParams& p, float* sg, int b0) {
    const int H = p.hidden, T = p.steps, D = p.dirs, S = p.splits;
    const int H3 = 3 * H, H4 = H / 4;
    const int HQ = (H4 + 31) / 32 * 32;
    const int d = blockIdx.x;
    const int tid = threadIdx.x;
    const int grp = tid / HQ, q = tid % HQ;
    const bool ownq = q < H4;
    const int rk = (H3 + S - 1) / S;
    const int r0 = grp * rk, r1 = min(H3, r0 + rk);
    const bool own = tid < H;  // gate part: hidden unit j = tid
    const int j = tid;
    const float4* w = whh4 + (size_t)d * H3 * H4;
    float* part = sg + NB * H3;  // [S][NB][H]
    float dh[NB];
#pragma unroll
    for (int bb = 0; bb < NB; ++bb) dh[bb] = 0.0f;

    for (int s = 0; s < T; ++s) {
        const int t = d == 0 ? T - 1 - s : s;
        if (own) gru_bwd_gates<NB>(xp, gh, y, dy, dxp, dgh, sg, H, T, D, d, t, b0, j, dh);
        __syncthreads();  // dgh of the step is in shared memory
        if (s + 1 < T) {
            if (ownq) {
                float4 acc[NB];
#pragma unroll
                for (int bb = 0; bb < NB; ++bb) acc[bb] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 2
                for (int r = r0; r < r1; ++r) {
                    const float4 wv = __ldg(w + (size_t)r * H4 + q);
#pragma unroll
                    for (int bb = 0; bb < NB; ++bb) {
                        const float gv = sg[bb * H3 + r];  // broadcast
                        acc[bb].x = fmaf(wv.x, gv, acc[bb].x);
                        acc[bb].y = fmaf(wv.y, gv, acc[bb].y);
                        acc[bb].z = fmaf(wv.z, gv, acc[bb].z);
                        acc[bb].w = fmaf(wv.w, gv, acc[bb].w);
                    }
                }
#pragma unroll
                for (int bb = 0; bb < NB; ++bb) *reinterpret_cast<float4*>(part + ((size_t)grp * NB + bb) * H + 4 * q) = acc[bb];
            }
            __syncthreads();  // partial sums complete
            if (own) {
#pragma unroll
                for (int bb = 0; bb < NB; ++bb)
                    for (int g = 0; g < S; ++g) dh[bb] += part[((size_t)g * NB + bb) * H + j];
            }
        }
        // No barrier needed here: the next step writes sg (read above before the last barrier) and
        // part only after its own first barrier, by which time every thread has read its partials.
    }
}

extern "C" __global__ void __launch_bounds__(1024) gru_bwd_f32_v2(const float* __restrict__ xp, const float* __restrict__ gh,
                                                                  const float* __restrict__ whh, const float* __restrict__ y,
                                                                  const float* __restrict__ dy, float* __restrict__ dxp,
                                                                  float* __restrict__ dgh, const GruParams p) {
    extern __shared__ float gru_bwd_s2[];  // [NB][3H] then [S][NB][H]
    const int b0 = blockIdx.y * GRU_BPB;
    const float4* w4 = reinterpret_cast<const float4*>(whh);
    switch (min(GRU_BPB, p.batch - b0)) {  // uniform across the block
        case 1: gru_bwd_v2_run<1>(xp, gh, w4, y, dy, dxp, dgh, p, gru_bwd_s2, b0); break;
        default: gru_bwd_v2_run<2>(xp, gh, w4, y, dy, dxp, dgh, p, gru_bwd_s2, b0); break;
    }
}
