// melspec.cu — log-mel spectrogram as M2D / the DCASE 2025 task 4 baseline compute it (an nnAudio /
// torchaudio MelSpectrogram with librosa Slaney filters, then log(x + offset)), fused: waveform in,
// log-mel out, no spectrum in global memory.
//
// Math, per signal b (x[b], L samples) and frame t < T = 1 + L / hop:
//   f[n] = x_pad[t·hop + n]·w'[n], n < N = n_fft    (x_pad: x reflect-padded by N/2 on both sides,
//          torch 'reflect'; w' = periodic Hann of win_length, zero-padded to N, starting at `left`)
//   P[k] = |Σ_n f[n]·e^{−2πi kn/N}|²,  k = 0 … N/2
//   out[b, m, t] = ln(Σ_k W[m, k]·P[k] + log_offset)   (W: librosa Slaney mel filters, sparse)
// Layouts: x [B, L]; out [B, n_mels, T] row-major.
// consts (f32): window [win] | cos(2πj/N) [N] | sin(2πj/N) [N] | mel weights [nnz] (all computed in
//   f64 on the host, runtime/src/ops/melspec/); rng (i32): [n_mels][3] = (first bin, number of
//   bins, offset into the weights) of each filter's non-zero range.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions:
//   v1 — one block (256 threads) per (t, b): the windowed frame and the twiddle table in shared
//        memory, then a plain DFT: thread k owns bin k and sums the win_length non-zero samples
//        (twiddle index k·n mod N kept as an integer, so every angle is exact). Any even N ≤ 2048.
//        O(N·win) per frame: for M2D (N = win = 800) 401 × 800 real-by-complex multiply-adds = 1.28
//        MFLOP per frame, 1.3 GFLOP for 10 s (1001 frames) — cheap on a GPU next to the model, but
//        ~60× an FFT's arithmetic, with twiddle reads k·n mod N that conflict in shared-memory banks;
//        the reference port, kept.
//   v2 — one block (128 threads) per (t, b): the real frame packed as M = N/2 complex samples
//        z[n] = f[2n] + i·f[2n+1], an M-point mixed-radix Stockham FFT in shared memory (radix 4
//        first, then 2, 3, 5; one barrier per stage, ping-pong buffers, no bit reversal), then the
//        real-input split X[k] = E[k] + e^{−2πik/N}·O[k] with E = (Z[k] + conj Z[M−k])/2,
//        O = (Z[k] − conj Z[M−k])/2i. M2D: M = 400 = 4·4·5·5, four stages of 100 or 80 butterflies,
//        ~22 kFLOP per frame (~60× fewer than v1). Needs M to factor into 2, 3, 5 (the launcher
//        checks; else v1), N ≤ 2048.
//   Both: power in shared memory, then one thread per mel filter sums its non-zero range, adds the
//   offset, takes logf and writes out[b, m, t] (stride T between filters: 80 scattered 4-byte stores
//   per frame, a small share of the traffic; a version that writes several frames per block would
//   coalesce them).

#include "common.cuh"

#define MELSPEC_MAXN 2048       // largest n_fft (the launcher checks)
#define MELSPEC_V1_THREADS 256  // block sizes (the launcher uses them)
#define MELSPEC_V2_THREADS 128

struct MelParams {
    int batch;
    int len;         // samples per signal (L > N/2)
    int n_fft;       // N, even, ≤ MELSPEC_MAXN
    int win;         // win_length ≤ N
    int left;        // (N − win) / 2: where the window starts in the frame
    int hop;
    int n_frames;    // T = 1 + L / hop
    int n_freq;      // N/2 + 1
    int n_mels;
    int n_stages;    // v2: radix stages of the N/2-point FFT (≤ 8)
    int radices;     // v2: radix of stage s in bits [3s, 3s + 3) (2, 3, 4 or 5)
    int nnz;         // number of mel weights
    float log_offset;
    int pad0, pad1, pad2;
};
static_assert(sizeof(MelParams) == 64, "MelParams must match runtime/src/ops/melspec/cuda.rs");

__device__ __forceinline__ int melspec_reflect(int j, int len) {
    j = j < 0 ? -j : j;
    return j >= len ? 2 * (len - 1) - j : j;
}

// Sample i < N of the windowed frame whose padded start is s0 = t·hop − N/2 (0 outside the window;
// only samples under the window are read).
__device__ __forceinline__ float melspec_sample(const float* __restrict__ xb, const float* __restrict__ w, int i, int s0,
                                                const MelParams& p) {
    const int r = i - p.left;
    return (r >= 0 && r < p.win) ? xb[melspec_reflect(s0 + i, p.len)] * w[r] : 0.0f;
}

// The shared epilogue: pw[k] (k < n_freq) holds the power spectrum of frame t of signal b; thread m
// owns filter m: out[b, m, t] = ln(Σ_{k in range m} W[m, k]·pw[k] + log_offset).
__device__ __forceinline__ void melspec_mel_log(const float* pw, const float* __restrict__ mw, const int* __restrict__ rng,
                                                float* __restrict__ out, int b, int t, const MelParams& p) {
    for (int m = threadIdx.x; m < p.n_mels; m += blockDim.x) {
        const int st = rng[3 * m], len = rng[3 * m + 1], off = rng[3 * m + 2];
        float e = 0.0f;
        for (int j = 0; j < len; ++j) e += mw[off + j] * pw[st + j];
        out[((size_t)b * p.n_mels + m) * p.n_frames + t] = logf(e + p.log_offset);
    }
}

// v1. Launch: grid (T, B), block 256. Block (t, b) owns frame t of signal b: out[b, :, t].
// Shared (static): frame [N], cos/sin [N] each, power [N/2 + 1] (28 KiB at MELSPEC_MAXN).
// x: [B, L]; consts/rng: see the header; out: [B, n_mels, T].
// Bytes per frame (global memory, exact): read 4·win (samples) + 4·win (window) + 8·N (twiddles)
//   + 12·n_mels (ranges) + 4·nnz (weights); written 4·n_mels. M2D (N = win = 800, 80 mels, 777
//   weights): 16 868 B read, 320 B written per frame (16.9 MB read for 10 s, mostly the twiddle
//   and filter tables re-read by every block from L2; the waveform itself is 1.28 MB). FLOPs per frame: 4·win·(N/2 + 1).
extern "C" __global__ void __launch_bounds__(MELSPEC_V1_THREADS)
melspec_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ consts, const int* __restrict__ rng,
                   float* __restrict__ out, const MelParams p) {
    __shared__ float fr[MELSPEC_MAXN];
    __shared__ float tc[MELSPEC_MAXN];
    __shared__ float ts[MELSPEC_MAXN];
    __shared__ float pw[MELSPEC_MAXN / 2 + 1];
    const int t = blockIdx.x, b = blockIdx.y, N = p.n_fft, tid = threadIdx.x, nt = blockDim.x;
    const float* xb = x + (size_t)b * p.len;
    const float* w = consts;
    const int s0 = t * p.hop - N / 2;
    for (int i = tid; i < N; i += nt) {
        fr[i] = melspec_sample(xb, w, i, s0, p);
        tc[i] = consts[p.win + i];
        ts[i] = consts[p.win + N + i];
    }
    __syncthreads();
    for (int k = tid; k < p.n_freq; k += nt) {
        float re = 0.0f, im = 0.0f;
        int ph = (k * p.left) % N;  // k·n mod N
        for (int n = p.left; n < p.left + p.win; ++n) {
            const float v = fr[n];
            re += v * tc[ph];
            im -= v * ts[ph];
            ph += k;
            if (ph >= N) ph -= N;
        }
        pw[k] = re * re + im * im;
    }
    __syncthreads();
    melspec_mel_log(pw, consts + p.win + 2 * N, rng, out, b, t, p);
}

// Small DFTs of v2's stages, in registers: y[q] = Σ_r v[r]·e^{−2πi rq/R}.
template <int R>
__device__ __forceinline__ void melspec_dft(float (&re)[R], float (&im)[R]);

template <>
__device__ __forceinline__ void melspec_dft<2>(float (&re)[2], float (&im)[2]) {
    const float ar = re[0], ai = im[0];
    re[0] = ar + re[1]; im[0] = ai + im[1];
    re[1] = ar - re[1]; im[1] = ai - im[1];
}

template <>
__device__ __forceinline__ void melspec_dft<3>(float (&re)[3], float (&im)[3]) {
    const float S3 = 0.866025403784438647f;  // sin(2π/3)
    const float sr = re[1] + re[2], si = im[1] + im[2];
    const float dr = S3 * (re[1] - re[2]), di = S3 * (im[1] - im[2]);
    const float mr = re[0] - 0.5f * sr, mi = im[0] - 0.5f * si;
    re[0] += sr; im[0] += si;
    // y1 = m − i·d, y2 = m + i·d
    re[1] = mr + di; im[1] = mi - dr;
    re[2] = mr - di; im[2] = mi + dr;
}

template <>
__device__ __forceinline__ void melspec_dft<4>(float (&re)[4], float (&im)[4]) {
    const float ar = re[0] + re[2], ai = im[0] + im[2];  // v0 + v2
    const float br = re[0] - re[2], bi = im[0] - im[2];  // v0 − v2
    const float cr = re[1] + re[3], ci = im[1] + im[3];  // v1 + v3
    const float dr = re[1] - re[3], di = im[1] - im[3];  // v1 − v3
    re[0] = ar + cr; im[0] = ai + ci;
    re[2] = ar - cr; im[2] = ai - ci;
    // y1 = b − i·d, y3 = b + i·d
    re[1] = br + di; im[1] = bi - dr;
    re[3] = br - di; im[3] = bi + dr;
}

template <>
__device__ __forceinline__ void melspec_dft<5>(float (&re)[5], float (&im)[5]) {
    const float C1 = 0.309016994374947424f;   // cos(2π/5)
    const float C2 = -0.809016994374947424f;  // cos(4π/5)
    const float S1 = 0.951056516295153572f;   // sin(2π/5)
    const float S2 = 0.587785252292473129f;   // sin(4π/5)
    const float a1r = re[1] + re[4], a1i = im[1] + im[4], b1r = re[1] - re[4], b1i = im[1] - im[4];
    const float a2r = re[2] + re[3], a2i = im[2] + im[3], b2r = re[2] - re[3], b2i = im[2] - im[3];
    const float m1r = re[0] + C1 * a1r + C2 * a2r, m1i = im[0] + C1 * a1i + C2 * a2i;
    const float m2r = re[0] + C2 * a1r + C1 * a2r, m2i = im[0] + C2 * a1i + C1 * a2i;
    const float n1r = S1 * b1r + S2 * b2r, n1i = S1 * b1i + S2 * b2i;
    const float n2r = S2 * b1r - S1 * b2r, n2i = S2 * b1i - S1 * b2i;
    re[0] += a1r + a2r; im[0] += a1i + a2i;
    // y1 = m1 − i·n1, y4 = m1 + i·n1, y2 = m2 − i·n2, y3 = m2 + i·n2
    re[1] = m1r + n1i; im[1] = m1i - n1r;
    re[4] = m1r - n1i; im[4] = m1i + n1r;
    re[2] = m2r + n2i; im[2] = m2i - n2r;
    re[3] = m2r - n2i; im[3] = m2i + n2r;
}

// One radix-R Stockham stage of an M-point FFT (M = N/2), Ns = product of the earlier radices:
// butterfly j < M/R reads src[j + r·M/R], multiplies by e^{−2πi r·(j mod Ns)/(Ns·R)} (the N-point
// table at stride N/(Ns·R)), does an R-point DFT and writes dst[(j/Ns)·Ns·R + j mod Ns + q·Ns].
template <int R>
__device__ __forceinline__ void melspec_stage(const float* sre, const float* sim, float* dre, float* dim, const float* tc,
                                              const float* ts, int M, int N, int Ns) {
    const int stride = N / (Ns * R), mr = M / R;
    for (int j = threadIdx.x; j < mr; j += blockDim.x) {
        const int k = j % Ns;
        float vr[R], vi[R];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const float a = sre[j + r * mr], bb = sim[j + r * mr];
            const int idx = r * k * stride;
            const float c = tc[idx], s = ts[idx];
            vr[r] = a * c + bb * s;  // (a + i·bb)(c − i·s)
            vi[r] = bb * c - a * s;
        }
        melspec_dft<R>(vr, vi);
        const int d = (j / Ns) * Ns * R + k;
#pragma unroll
        for (int q = 0; q < R; ++q) {
            dre[d + q * Ns] = vr[q];
            dim[d + q * Ns] = vi[q];
        }
    }
}

// v2. Launch: grid (T, B), block 128. Block (t, b) owns frame t of signal b: out[b, :, t].
// Shared (static): two complex buffers of N/2 (re, im planes), cos/sin [N] each, power [N/2 + 1]
// (36 KiB at MELSPEC_MAXN).
// x: [B, L]; consts/rng: see the header; out: [B, n_mels, T].
// Bytes per frame: the same as v1 (read 4·win + 4·win + 8·N + 12·n_mels + 4·nnz, written 4·n_mels).
// FLOPs per frame: ~5·(N/2)·log2(N/2) for the FFT + 12·(N/2) for the split and power.
extern "C" __global__ void __launch_bounds__(MELSPEC_V2_THREADS)
melspec_fwd_f32_v2(const float* __restrict__ x, const float* __restrict__ consts, const int* __restrict__ rng,
                   float* __restrict__ out, const MelParams p) {
    __shared__ float bre[2][MELSPEC_MAXN / 2];
    __shared__ float bim[2][MELSPEC_MAXN / 2];
    __shared__ float tc[MELSPEC_MAXN];
    __shared__ float ts[MELSPEC_MAXN];
    __shared__ float pw[MELSPEC_MAXN / 2 + 1];
    const int t = blockIdx.x, b = blockIdx.y, N = p.n_fft, M = N / 2, tid = threadIdx.x, nt = blockDim.x;
    const float* xb = x + (size_t)b * p.len;
    const float* w = consts;
    const int s0 = t * p.hop - N / 2;
    // 1. pack the real frame as z[n] = f[2n] + i·f[2n+1]; stage the twiddles.
    for (int n = tid; n < M; n += nt) {
        bre[0][n] = melspec_sample(xb, w, 2 * n, s0, p);
        bim[0][n] = melspec_sample(xb, w, 2 * n + 1, s0, p);
    }
    for (int i = tid; i < N; i += nt) {
        tc[i] = consts[p.win + i];
        ts[i] = consts[p.win + N + i];
    }
    __syncthreads();
    // 2. the M-point FFT, stage by stage (R is block-uniform: no divergence).
    int src = 0, Ns = 1;
    for (int s = 0; s < p.n_stages; ++s) {
        const int R = (p.radices >> (3 * s)) & 7;
        const float* sre = bre[src];
        const float* sim = bim[src];
        float* dre = bre[src ^ 1];
        float* dim = bim[src ^ 1];
        if (R == 4) melspec_stage<4>(sre, sim, dre, dim, tc, ts, M, N, Ns);
        else if (R == 2) melspec_stage<2>(sre, sim, dre, dim, tc, ts, M, N, Ns);
        else if (R == 3) melspec_stage<3>(sre, sim, dre, dim, tc, ts, M, N, Ns);
        else melspec_stage<5>(sre, sim, dre, dim, tc, ts, M, N, Ns);
        __syncthreads();
        src ^= 1;
        Ns *= R;
    }
    // 3. real-input split and power: X[k] = E + e^{−2πik/N}·O, k = 0 … M (Z indices mod M).
    const float* zr = bre[src];
    const float* zi = bim[src];
    for (int k = tid; k <= M; k += nt) {
        const int k0 = k == M ? 0 : k, k1 = k == 0 ? 0 : M - k;
        const float ar = zr[k0], ai = zi[k0], cr = zr[k1], ci = -zi[k1];  // Z[k], conj Z[M−k]
        const float er = 0.5f * (ar + cr), ei = 0.5f * (ai + ci);
        const float orr = 0.5f * (ai - ci), oi = -0.5f * (ar - cr);  // (Z[k] − conj Z[M−k]) / 2i
        const float c = tc[k], s = ts[k];
        const float xr = er + c * orr + s * oi, xi = ei + c * oi - s * orr;
        pw[k] = xr * xr + xi * xi;
    }
    __syncthreads();
    melspec_mel_log(pw, consts + p.win + 2 * N, rng, out, b, t, p);
}
