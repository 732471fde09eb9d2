// attention.cu — scaled dot-product self-attention, no mask, f32: O = softmax(scale·Q·Kᵀ)·V.
//
// Math: per unit u = (b, h) (sequence b, head h) and query row i:
//   s_ij = scale · Σ_d Q[u,i,d]·K[u,j,d];  m_i = max_j s_ij;  l_i = Σ_j exp(s_ij − m_i);
//   O[u,i,d] = Σ_j exp(s_ij − m_i)·V[u,j,d] / l_i.   f32 throughout.
// Layouts (AttnParams, elements): Q[b, s, h, d] = q[q_off + b·in_batch + s·in_row + h·in_head + d], same
// strides for K (k_off) and V (v_off); O[b, s, h, d] = o[b·out_batch + s·out_row + h·out_head + d].
// This covers (N, S, Dh) tensors (heads = 1), projection outputs (B, S, H·Dh) and one packed
// (B, S, 3·H·Dh) QKV tensor (q = k = v, offsets 0, H·Dh, 2·H·Dh) — no permute kernels around it.
// Build: compiled at run time by NVRTC; under the emulator (kernels/emu) as C++. No inline PTX.
//
// Versions (llm.c style):
//   v1 — naive: one thread per (unit, query row); pass 1 finds the row max (dot products from global
//        memory), pass 2 accumulates exp(s − m)·V into the output row in global memory, then divides.
//        The port of the CPU reference; every K/V element is read S times per unit (L1/L2 catch some).
//   v2 — flash-attention style (Dao et al.), f32 CUDA cores: a block of 64 threads owns 64 query rows
//        of one unit; thread = query row, its Q row and O accumulator in registers (Dh ≤ 64, padded to
//        64 with zeros). Keys in tiles of 32: K and V tiles staged in shared memory (all threads read
//        the same K/V element at once: broadcasts, no bank conflicts), the tile's scores go to a
//        per-thread column of shared memory, then the online softmax: m' = max(m, tile max),
//        O ← O·exp(m − m'), l ← l·exp(m − m') + Σ exp(s − m'), O += Σ exp(s − m')·V_j. No S×S
//        matrix in global memory: each Q, K, V element is read once per block, O written once.
//        Not done (yet): tensor cores (WMMA for QKᵀ and PV, as matmul v3) and register tiling of
//        several query rows per thread — the next versions; v2 is bound by shared-memory loads
//        (one LDS per FMA pair).
//   v3 — short sequences (S ≤ 32, e.g. AST-SED's frequency-wise attention: 13 tokens, Dh 192): one
//        128-thread block per unit; Q, K, V (pitch Dh+1: conflict-free) and the S×S probabilities in
//        dynamic shared memory; scores by threads over (i, j), softmax by a warp per row (lane = key,
//        shuffles), P·V by threads over (i, d) (coalesced stores). One global read of Q, K, V, one
//        write of O. Needs 4·(3·S·(Dh+1) + S·(S+1)) bytes ≤ 48 KiB (the launcher checks).
//
// Measured (H100 80GB HBM3, `aural bench --op attention --device cuda`, median per call incl. launch
// and sync): AST 12 heads × 1214 × 64 — v1 30.0 ms (0.15 TFLOP/s), v2 0.515 ms (8.8 TFLOP/s);
// AST-SED 101 frames × 4 heads × 13 × 192 — v1 0.428 ms, v3 0.030 ms (launch-bound). The whole AST-base
// forward (f32, v2 + matmul v2) takes 18.4 ms on that GPU, attention 33% of it: tensor cores are next.
//
// Backward: attention_bwd_f32_v1 (short sequences) and attention_{dq,dkv}_bwd_f32_v2 (long, flash
// style), bottom of this file; their header states the math.
//
// Flops per launch: 4·S²·Dh per unit. Bytes (minimum): 4·3·S·Dh read + 4·S·Dh written per unit.

#include "common.cuh"

struct AttnParams {
    int batch, heads, seq, dh;
    int in_batch, in_row, in_head;
    int q_off, k_off, v_off;
    int out_batch, out_row, out_head;
    float scale;
    int _pad0, _pad1;
};
static_assert(sizeof(AttnParams) == 64, "AttnParams must match runtime/src/ops/attention/cuda.rs");

#define ATTN_NEG_INF __int_as_float(0xff800000)

namespace {

__device__ __forceinline__ float attn_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// v1. Launch: grid (⌈S/128⌉, units) × 128 threads. Thread owns query row i = blockIdx.x·128 + tid of
// unit u = blockIdx.y (b = u / heads, h = u % heads). q, k, v: strided as AttnParams; o: output.
extern "C" __global__ void attention_fwd_f32_v1(const float* __restrict__ q, const float* __restrict__ k,
                                                const float* __restrict__ v, float* __restrict__ o,
                                                const AttnParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.seq) return;
    const int u = blockIdx.y;
    const int b = u / p.heads, h = u % p.heads;
    const long long base = (long long)b * p.in_batch + (long long)h * p.in_head;
    const float* qi = q + p.q_off + base + (long long)i * p.in_row;
    const float* kb = k + p.k_off + base;
    const float* vb = v + p.v_off + base;
    float* oi = o + (long long)b * p.out_batch + (long long)i * p.out_row + (long long)h * p.out_head;
    float m = ATTN_NEG_INF;
    for (int j = 0; j < p.seq; ++j) {
        const float* kj = kb + (long long)j * p.in_row;
        float s = 0.0f;
        for (int d = 0; d < p.dh; ++d) s = fmaf(qi[d], kj[d], s);
        m = fmaxf(m, s * p.scale);
    }
    for (int d = 0; d < p.dh; ++d) oi[d] = 0.0f;
    float l = 0.0f;
    for (int j = 0; j < p.seq; ++j) {
        const float* kj = kb + (long long)j * p.in_row;
        const float* vj = vb + (long long)j * p.in_row;
        float s = 0.0f;
        for (int d = 0; d < p.dh; ++d) s = fmaf(qi[d], kj[d], s);
        const float e = expf(s * p.scale - m);
        l += e;
        for (int d = 0; d < p.dh; ++d) oi[d] = fmaf(e, vj[d], oi[d]);
    }
    const float inv = 1.0f / l;
    for (int d = 0; d < p.dh; ++d) oi[d] *= inv;
}

// ---------------------------------------------------------------------------------------------
// v2. Launch: grid (⌈S/64⌉, units) × 64 threads; requires dh ≤ 64. Thread t owns query row
// i = blockIdx.x·64 + t of unit u = blockIdx.y (rows past S load zeros, compute, and do not store).
// Shared (static): Ks[32][64], Vs[32][64] (zero-padded past S and dh), Ss[32][64+1] (scores, one
// column per thread): 24.1 KiB. Registers: the Q row and the O accumulator (64 + 64 floats).
#define V2_BR 64
#define V2_BC 32
#define V2_D 64

extern "C" __global__ void __launch_bounds__(V2_BR) attention_fwd_f32_v2(const float* __restrict__ q, const float* __restrict__ k,
                                                                          const float* __restrict__ v, float* __restrict__ o,
                                                                          const AttnParams p) {
    __shared__ float Ks[V2_BC][V2_D];
    __shared__ float Vs[V2_BC][V2_D];
    __shared__ float Ss[V2_BC][V2_BR + 1];
    const int tid = threadIdx.x;
    const int u = blockIdx.y;
    const int b = u / p.heads, h = u % p.heads;
    const int i = blockIdx.x * V2_BR + tid;
    const bool valid = i < p.seq;
    const long long base = (long long)b * p.in_batch + (long long)h * p.in_head;
    const float* kb = k + p.k_off + base;
    const float* vb = v + p.v_off + base;

    float qr[V2_D], acc[V2_D];
    {
        const float* qi = q + p.q_off + base + (long long)i * p.in_row;
#pragma unroll
        for (int d = 0; d < V2_D; ++d) {
            qr[d] = (valid && d < p.dh) ? qi[d] : 0.0f;
            acc[d] = 0.0f;
        }
    }
    float m = ATTN_NEG_INF, l = 0.0f;
    for (int j0 = 0; j0 < p.seq; j0 += V2_BC) {
        // Stage K and V tiles (32 × 64 each): consecutive threads read consecutive d (coalesced).
#pragma unroll 4
        for (int r = 0; r < (V2_BC * V2_D) / V2_BR; ++r) {
            const int e = tid + r * V2_BR;
            const int jj = e / V2_D, d = e % V2_D;
            const int j = j0 + jj;
            const bool in = j < p.seq && d < p.dh;
            Ks[jj][d] = in ? kb[(long long)j * p.in_row + d] : 0.0f;
            Vs[jj][d] = in ? vb[(long long)j * p.in_row + d] : 0.0f;
        }
        __syncthreads();
        const int nk = min(V2_BC, p.seq - j0);
        float tmax = ATTN_NEG_INF;
        for (int jj = 0; jj < nk; ++jj) {
            float s = 0.0f;
#pragma unroll
            for (int d = 0; d < V2_D; ++d) s = fmaf(qr[d], Ks[jj][d], s);
            s *= p.scale;
            Ss[jj][tid] = s;
            tmax = fmaxf(tmax, s);
        }
        const float mnew = fmaxf(m, tmax);
        const float corr = expf(m - mnew);  // m = −inf on the first tile: corr = 0, acc and l are 0
        l *= corr;
#pragma unroll
        for (int d = 0; d < V2_D; ++d) acc[d] *= corr;
        for (int jj = 0; jj < nk; ++jj) {
            const float e = expf(Ss[jj][tid] - mnew);
            l += e;
#pragma unroll
            for (int d = 0; d < V2_D; ++d) acc[d] = fmaf(e, Vs[jj][d], acc[d]);
        }
        m = mnew;
        __syncthreads();  // Ks/Vs are overwritten by the next tile
    }
    if (valid) {
        float* oi = o + (long long)b * p.out_batch + (long long)i * p.out_row + (long long)h * p.out_head;
        const float inv = 1.0f / l;
#pragma unroll
        for (int d = 0; d < V2_D; ++d)
            if (d < p.dh) oi[d] = acc[d] * inv;
    }
}

// ---------------------------------------------------------------------------------------------
// v3. Launch: grid (units) × 128 threads, dynamic shared memory 4·(3·S·(dh+1) + S·(S+1)) bytes;
// requires S ≤ 32. Block u owns unit u entirely. Shared: Qs, Ks, Vs [S][dh+1], Ps [S][S+1].
#define V3_MAX_SEQ 32

extern "C" __global__ void __launch_bounds__(128) attention_fwd_f32_v3(const float* __restrict__ q, const float* __restrict__ k,
                                                                       const float* __restrict__ v, float* __restrict__ o,
                                                                       const AttnParams p) {
    extern __shared__ float attn_smem[];
    const int S = p.seq, D = p.dh, pitch = D + 1;
    float* Qs = attn_smem;
    float* Ks = Qs + S * pitch;
    float* Vs = Ks + S * pitch;
    float* Ps = Vs + S * pitch;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int u = blockIdx.x;
    const int b = u / p.heads, h = u % p.heads;
    const long long base = (long long)b * p.in_batch + (long long)h * p.in_head;
    for (int e = tid; e < S * D; e += nt) {
        const int r = e / D, c = e % D;
        const long long g = base + (long long)r * p.in_row + c;
        Qs[r * pitch + c] = q[p.q_off + g];
        Ks[r * pitch + c] = k[p.k_off + g];
        Vs[r * pitch + c] = v[p.v_off + g];
    }
    __syncthreads();
    for (int e = tid; e < S * S; e += nt) {
        const int i = e / S, j = e % S;
        const float* qi = Qs + i * pitch;
        const float* kj = Ks + j * pitch;
        float s = 0.0f;
        for (int d = 0; d < D; ++d) s = fmaf(qi[d], kj[d], s);
        Ps[i * (S + 1) + j] = s * p.scale;
    }
    __syncthreads();
    const int lane = tid & 31, warp = tid >> 5, nw = nt >> 5;
    for (int i = warp; i < S; i += nw) {
        const float x = lane < S ? Ps[i * (S + 1) + lane] : ATTN_NEG_INF;
        const float m = attn_warp_max(x);
        const float e = lane < S ? expf(x - m) : 0.0f;
        const float s = warp_sum(e);
        if (lane < S) Ps[i * (S + 1) + lane] = e / s;
    }
    __syncthreads();
    for (int e = tid; e < S * D; e += nt) {
        const int i = e / D, d = e % D;
        const float* pi = Ps + i * (S + 1);
        float acc = 0.0f;
        for (int j = 0; j < S; ++j) acc = fmaf(pi[j], Vs[j * pitch + d], acc);
        o[(long long)b * p.out_batch + (long long)i * p.out_row + (long long)h * p.out_head + d] = acc;
    }
}

// ---------------------------------------------------------------------------------------------
// Backward (autograd), recompute-based as flash-attention: only O is kept from the forward.
// Per unit, with P = softmax(scale·Q·Kᵀ) recomputed:
//   dV = Pᵀ·dO;  dP = dO·Vᵀ;  D_i = Σ_d dO[i,d]·O[i,d];  dS = P ⊙ (dP − D);  dQ = scale·dS·K;
//   dK = scale·dSᵀ·Q.   dQ, dK, dV are written in the inputs' layout (AttnParams: q_off, k_off, v_off
//   and the in_* strides — one packed [dQ | dK | dV] buffer passed three times, or three buffers).
// Versions:
//   v1 — short sequences (S ≤ 32, AST-SED's 13-token frequency-wise attention), the backward of
//        fwd v3: one 128-thread block per unit; Q, K, V, dO (pitch Dh+1) and P, dS (pitch S+1) in
//        dynamic shared memory. Threads over (i, j) for the scores and dP; a warp per row for D_i
//        (shuffle sum over d, O read from global) and the softmax (lane = key); threads over (i, d)
//        for dQ, dK, dV (coalesced stores). One global read of Q, K, V, O, dO; one write of dQ, dK, dV.
//        Needs 4·(4·S·(Dh+1) + 2·S·(S+1) + S) bytes ≤ 48 KiB (the launcher checks).
//   v2 — long sequences, Dh ≤ 64: flash-attention style in two kernels (attention_dq_bwd_f32_v2,
//        attention_dkv_bwd_f32_v2; see below). Larger head dims are composed on the host side from
//        the matmul and softmax_bwd kernels (P and dP materialised).
// Flops per launch: 10·S²·Dh per unit. Bytes (minimum): 4·5·S·Dh read + 4·3·S·Dh written per unit.
//
// Launch: grid (units) × 128 threads, dynamic shared memory as above. q, k, v: strided as
// AttnParams (inputs); o, dout: output layout (out_*); dq, dk, dv: input layout (outputs).
extern "C" __global__ void __launch_bounds__(128) attention_bwd_f32_v1(const float* __restrict__ q, const float* __restrict__ k,
                                                                       const float* __restrict__ v, const float* __restrict__ o,
                                                                       const float* __restrict__ dout, float* dq, float* dk,
                                                                       float* dv, const AttnParams p) {
    extern __shared__ float attn_bwd_smem[];
    const int S = p.seq, D = p.dh, pitch = D + 1, sp = S + 1;
    float* Qs = attn_bwd_smem;
    float* Ks = Qs + S * pitch;
    float* Vs = Ks + S * pitch;
    float* dOs = Vs + S * pitch;
    float* Ps = dOs + S * pitch;
    float* dSs = Ps + S * sp;
    float* Ds = dSs + S * sp;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int u = blockIdx.x;
    const int b = u / p.heads, h = u % p.heads;
    const long long base = (long long)b * p.in_batch + (long long)h * p.in_head;
    const long long obase = (long long)b * p.out_batch + (long long)h * p.out_head;
    for (int e = tid; e < S * D; e += nt) {
        const int r = e / D, c = e % D;
        const long long g = base + (long long)r * p.in_row + c;
        Qs[r * pitch + c] = q[p.q_off + g];
        Ks[r * pitch + c] = k[p.k_off + g];
        Vs[r * pitch + c] = v[p.v_off + g];
        dOs[r * pitch + c] = dout[obase + (long long)r * p.out_row + c];
    }
    __syncthreads();
    for (int e = tid; e < S * S; e += nt) {
        const int i = e / S, j = e % S;
        const float* qi = Qs + i * pitch;
        const float* kj = Ks + j * pitch;
        const float* di = dOs + i * pitch;
        const float* vj = Vs + j * pitch;
        float s = 0.0f, dp = 0.0f;
        for (int d = 0; d < D; ++d) {
            s = fmaf(qi[d], kj[d], s);
            dp = fmaf(di[d], vj[d], dp);
        }
        Ps[i * sp + j] = s * p.scale;
        dSs[i * sp + j] = dp;
    }
    const int lane = tid & 31, warp = tid >> 5, nw = nt >> 5;
    for (int i = warp; i < S; i += nw) {
        const float* oi = o + obase + (long long)i * p.out_row;
        float acc = 0.0f;
        for (int d = lane; d < D; d += 32) acc = fmaf(dOs[i * pitch + d], oi[d], acc);
        acc = warp_sum(acc);
        if (lane == 0) Ds[i] = acc;
    }
    __syncthreads();
    for (int i = warp; i < S; i += nw) {
        const float x = lane < S ? Ps[i * sp + lane] : ATTN_NEG_INF;
        const float m = attn_warp_max(x);
        const float e = lane < S ? expf(x - m) : 0.0f;
        const float sum = warp_sum(e);
        if (lane < S) {
            const float pij = e / sum;
            Ps[i * sp + lane] = pij;
            dSs[i * sp + lane] = pij * (dSs[i * sp + lane] - Ds[i]);
        }
    }
    __syncthreads();
    for (int e = tid; e < S * D; e += nt) {
        const int i = e / D, d = e % D;
        float aq = 0.0f, ak = 0.0f, av = 0.0f;
        for (int j = 0; j < S; ++j) {
            aq = fmaf(dSs[i * sp + j], Ks[j * pitch + d], aq);  // row i of dS
            ak = fmaf(dSs[j * sp + i], Qs[j * pitch + d], ak);  // column i of dS
            av = fmaf(Ps[j * sp + i], dOs[j * pitch + d], av);  // column i of P
        }
        const long long g = base + (long long)i * p.in_row + d;
        dq[p.q_off + g] = aq * p.scale;
        dk[p.k_off + g] = ak * p.scale;
        dv[p.v_off + g] = av;
    }
}

// ---------------------------------------------------------------------------------------------
// v2 of the backward: long sequences, flash-attention style (no S×S matrix in global memory), f32
// CUDA cores, Dh ≤ 64 (rows padded to 64 with zeros), deterministic (no atomics). Two kernels:
//   attention_dq_bwd_f32_v2 — thread per query row i (64 rows per block, like fwd v2): D_i = dO_i·O_i;
//     pass 1 over key tiles gives the row's log-sum-exp lse_i (online max/sum), stored with D_i in a
//     scratch `stats` [units, S, 2]; pass 2 over key tiles (K, V tiles in shared memory) accumulates
//     dQ_i = scale·Σ_j P_ij·(dO_i·V_j − D_i)·K_j in registers, P_ij = exp(scale·q_i·k_j − lse_i).
//     The Q row and the dQ accumulator live in registers (64 + 64 floats), the dO row in a per-thread
//     column of shared memory.
//   attention_dkv_bwd_f32_v2 — thread per key row j (64 rows per block): its K and V rows in
//     per-thread columns of shared memory, dK and dV accumulators in registers; loops over tiles of
//     16 query rows (Q, dO, lse, D staged in shared memory): P_ij from lse_i, dV_j += P_ij·dO_i,
//     dK_j += scale·P_ij·(dO_i·V_j − D_i)·Q_i.
//   Each pair (i, j) costs 3 (dq kernel, plus 1 in pass 1) and 4 (dkv kernel) dot products of Dh:
//   S and dP are recomputed in both kernels (2× the minimal flops, no atomics, no S² memory).
//   ptxas (sm_90): dq 247 registers, dkv 201, no spills — only because the dot products over the
//   loop-invariant shared columns are unrolled by 8, not fully (fully: 255 + spills). Not yet timed
//   on a GPU; register tiling of 2 rows per thread and tensor cores are the obvious next steps.
// Launch (both): grid (⌈S/64⌉, units) × 64 threads, static shared memory (dq: 32.3 KiB; dkv: 40.6
// KiB). q, k, v: inputs (AttnParams in_* layout); o, dout: output layout; dq, dk, dv: input layout;
// stats: [units, S, 2] floats (written by the dq kernel, read by the dkv kernel).
#define B2_R 64
#define B2_KT 32
#define B2_QT 16
#define B2_D 64
#define ATTN_POS_INF __int_as_float(0x7f800000)

extern "C" __global__ void __launch_bounds__(B2_R) attention_dq_bwd_f32_v2(const float* __restrict__ q, const float* __restrict__ k,
                                                                           const float* __restrict__ v, const float* __restrict__ o,
                                                                           const float* __restrict__ dout, float* dq,
                                                                           float* __restrict__ stats, const AttnParams p) {
    __shared__ float Ks[B2_KT][B2_D];
    __shared__ float Vs[B2_KT][B2_D];
    __shared__ float dOs[B2_D][B2_R + 1];
    const int tid = threadIdx.x;
    const int u = blockIdx.y;
    const int b = u / p.heads, h = u % p.heads;
    const int i = blockIdx.x * B2_R + tid;
    const bool valid = i < p.seq;
    const long long base = (long long)b * p.in_batch + (long long)h * p.in_head;
    const long long obase = (long long)b * p.out_batch + (long long)h * p.out_head;
    const float* kb = k + p.k_off + base;
    const float* vb = v + p.v_off + base;

    float qr[B2_D], acc[B2_D];
    float Di = 0.0f;
    {
        const float* qi = q + p.q_off + base + (long long)i * p.in_row;
        const float* oi = o + obase + (long long)i * p.out_row;
        const float* di = dout + obase + (long long)i * p.out_row;
#pragma unroll
        for (int d = 0; d < B2_D; ++d) {
            const bool in = valid && d < p.dh;
            qr[d] = in ? qi[d] : 0.0f;
            const float dod = in ? di[d] : 0.0f;
            dOs[d][tid] = dod;
            Di = fmaf(dod, in ? oi[d] : 0.0f, Di);
            acc[d] = 0.0f;
        }
    }
    // Pass 1: the row's log-sum-exp.
    float m = ATTN_NEG_INF, l = 0.0f;
    for (int j0 = 0; j0 < p.seq; j0 += B2_KT) {
        for (int e = tid; e < B2_KT * B2_D; e += B2_R) {
            const int jj = e / B2_D, d = e % B2_D, j = j0 + jj;
            Ks[jj][d] = (j < p.seq && d < p.dh) ? kb[(long long)j * p.in_row + d] : 0.0f;
        }
        __syncthreads();
        const int nk = min(B2_KT, p.seq - j0);
        for (int jj = 0; jj < nk; ++jj) {
            float s = 0.0f;
#pragma unroll
            for (int d = 0; d < B2_D; ++d) s = fmaf(qr[d], Ks[jj][d], s);
            s *= p.scale;
            const float mn = fmaxf(m, s);
            l = l * expf(m - mn) + expf(s - mn);
            m = mn;
        }
        __syncthreads();  // Ks is overwritten by the next tile
    }
    const float lse = m + logf(l);
    if (valid) {
        stats[((long long)u * p.seq + i) * 2] = lse;
        stats[((long long)u * p.seq + i) * 2 + 1] = Di;
    }
    // Pass 2: dQ.
    for (int j0 = 0; j0 < p.seq; j0 += B2_KT) {
        for (int e = tid; e < B2_KT * B2_D; e += B2_R) {
            const int jj = e / B2_D, d = e % B2_D, j = j0 + jj;
            const bool in = j < p.seq && d < p.dh;
            Ks[jj][d] = in ? kb[(long long)j * p.in_row + d] : 0.0f;
            Vs[jj][d] = in ? vb[(long long)j * p.in_row + d] : 0.0f;
        }
        __syncthreads();
        const int nk = min(B2_KT, p.seq - j0);
        for (int jj = 0; jj < nk; ++jj) {
            float s = 0.0f, dp = 0.0f;
#pragma unroll
            for (int d = 0; d < B2_D; ++d) s = fmaf(qr[d], Ks[jj][d], s);
            // Partly unrolled on purpose: fully unrolled, the compiler keeps the loop-invariant dOs
            // column in 64 more registers and spills.
#pragma unroll 8
            for (int d = 0; d < B2_D; ++d) dp = fmaf(dOs[d][tid], Vs[jj][d], dp);
            const float pij = expf(s * p.scale - lse);
            const float ds = pij * (dp - Di);
#pragma unroll
            for (int d = 0; d < B2_D; ++d) acc[d] = fmaf(ds, Ks[jj][d], acc[d]);
        }
        __syncthreads();
    }
    if (valid) {
        float* qo = dq + p.q_off + base + (long long)i * p.in_row;
#pragma unroll
        for (int d = 0; d < B2_D; ++d)
            if (d < p.dh) qo[d] = acc[d] * p.scale;
    }
}

extern "C" __global__ void __launch_bounds__(B2_R) attention_dkv_bwd_f32_v2(const float* __restrict__ q, const float* __restrict__ k,
                                                                            const float* __restrict__ v, const float* __restrict__ dout,
                                                                            const float* __restrict__ stats, float* dk, float* dv,
                                                                            const AttnParams p) {
    __shared__ float Kc[B2_D][B2_R + 1];
    __shared__ float Vc[B2_D][B2_R + 1];
    __shared__ float Qs[B2_QT][B2_D];
    __shared__ float dOt[B2_QT][B2_D];
    __shared__ float St[B2_QT][2];
    const int tid = threadIdx.x;
    const int u = blockIdx.y;
    const int b = u / p.heads, h = u % p.heads;
    const int j = blockIdx.x * B2_R + tid;
    const bool valid = j < p.seq;
    const long long base = (long long)b * p.in_batch + (long long)h * p.in_head;
    const long long obase = (long long)b * p.out_batch + (long long)h * p.out_head;
    const float* qb = q + p.q_off + base;
    {
        const float* kj = k + p.k_off + base + (long long)j * p.in_row;
        const float* vj = v + p.v_off + base + (long long)j * p.in_row;
        for (int d = 0; d < B2_D; ++d) {
            const bool in = valid && d < p.dh;
            Kc[d][tid] = in ? kj[d] : 0.0f;
            Vc[d][tid] = in ? vj[d] : 0.0f;
        }
    }
    float dkr[B2_D], dvr[B2_D];
#pragma unroll
    for (int d = 0; d < B2_D; ++d) dkr[d] = dvr[d] = 0.0f;
    for (int i0 = 0; i0 < p.seq; i0 += B2_QT) {
        for (int e = tid; e < B2_QT * B2_D; e += B2_R) {
            const int ii = e / B2_D, d = e % B2_D, i = i0 + ii;
            const bool in = i < p.seq && d < p.dh;
            Qs[ii][d] = in ? qb[(long long)i * p.in_row + d] : 0.0f;
            dOt[ii][d] = in ? dout[obase + (long long)i * p.out_row + d] : 0.0f;
        }
        if (tid < B2_QT) {
            const int i = i0 + tid;
            // Rows past S: lse = +inf makes P = 0 (and D = 0), so they add nothing.
            St[tid][0] = i < p.seq ? stats[((long long)u * p.seq + i) * 2] : ATTN_POS_INF;
            St[tid][1] = i < p.seq ? stats[((long long)u * p.seq + i) * 2 + 1] : 0.0f;
        }
        __syncthreads();
        const int nq = min(B2_QT, p.seq - i0);
        for (int ii = 0; ii < nq; ++ii) {
            float s = 0.0f, dp = 0.0f;
            // Partly unrolled on purpose (the K and V columns are loop-invariant: fully unrolled, the
            // compiler keeps them in 128 more registers and spills).
#pragma unroll 8
            for (int d = 0; d < B2_D; ++d) {
                s = fmaf(Qs[ii][d], Kc[d][tid], s);
                dp = fmaf(dOt[ii][d], Vc[d][tid], dp);
            }
            const float pij = expf(s * p.scale - St[ii][0]);
            const float ds = pij * (dp - St[ii][1]);
#pragma unroll
            for (int d = 0; d < B2_D; ++d) {
                dvr[d] = fmaf(pij, dOt[ii][d], dvr[d]);
                dkr[d] = fmaf(ds, Qs[ii][d], dkr[d]);
            }
        }
        __syncthreads();  // the tiles are overwritten next
    }
    if (valid) {
        float* ko = dk + p.k_off + base + (long long)j * p.in_row;
        float* vo = dv + p.v_off + base + (long long)j * p.in_row;
#pragma unroll
        for (int d = 0; d < B2_D; ++d)
            if (d < p.dh) {
                ko[d] = dkr[d] * p.scale;
                vo[d] = dvr[d];
            }
    }
}
