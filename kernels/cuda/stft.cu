// stft.cu — short-time Fourier transform and its inverse (torch.stft / torch.istft with a periodic
// Hann window, center=True, pad_mode='reflect', onesided).
//
// Math: X[b, k, t] = Σ_n x_pad[b, t·hop + n]·w[n]·e^{−2πi kn/N}, k ≤ N/2, x_pad the signal reflect-
// padded by N/2 on both sides. Inverse: y_t[n] = w[n]·irfft(X[b, :, t])[n]; overlap-add
// y[p] = Σ_t y_t[p − t·hop], divided by Σ_t w[p − t·hop]², trimmed by N/2 on the left.
// Layouts: x [B, L]; spectrum planes [B, 2, F, T] (real plane, then imaginary), F = N/2 + 1;
// frames buffer [B, T, N]; y [B, out_len]. window [N] and twiddles cos/sin(2πj/N), j < N, are
// computed on the host in f64 (one consts buffer: window | cos | sin).
// Build: compiled at run time by NVRTC; under the emulator as C++.
//
// Versions:
//   stft v1 — naive DFT: one thread per output (b, k, t), N multiply-adds, twiddle index kn mod N
//             (exact angles). Any N. The reference port; O(N) per output.
//   stft v2 — one block (256 threads) per (t, b): reflect-pad + window into shared memory in bit-
//             reversed order, iterative radix-2 FFT (shared memory), write F bins of both planes.
//             Power-of-two N ≤ 2048 only; other N run v1 (the launcher's choice).
//   istft frames v1 — naive inverse DFT, one thread per (b, t, n). Any N.
//   istft frames v2 — one block per (t, b): Hermitian spectrum conjugated into shared memory,
//             forward radix-2 FFT, real part / N · window. Power-of-two N ≤ 2048.
//   istft_ola v1 — overlap-add by gathering: one thread per output sample sums the ≤ ⌈N/hop⌉
//             frames covering it and divides by the window-sum-square; no atomics, deterministic.
//   Backward (istft's adjoint, at the end of this file): istft_ola_bwd_f32_v1 (crop and envelope
//             undone: one thread per padded sample) then istft_frames_bwd_f32_v1 (naive DFT of each
//             windowed frame of that gradient, one thread per output bin, like stft v1). Any N.
//             The STFT's adjoint: stft_frames_bwd_f32_v1 (each frame's w·Re(Σ_k G_k e^{2πikn/N}), one
//             thread per frame sample) then stft_ola_bwd_f32_v1 (overlap-add with the reflect padding
//             folded back, gathering: one thread per signal sample). Any N.

#include "common.cuh"

#define STFT_MAXN 2048
#define STFT_THREADS 256
#define STFT_PER_THREAD (STFT_MAXN / STFT_THREADS)

struct StftParams {
    int batch;
    int len;       // input samples (stft) / output samples (istft)
    int n_fft;
    int log2n;     // log2(n_fft) when a power of two, else 0
    int hop;
    int n_frames;
    int n_freq;
    int expected;  // istft: n_fft + hop·(n_frames − 1)
};
static_assert(sizeof(StftParams) == 32, "StftParams must match runtime/src/ops/stft/cuda.rs");

__device__ __forceinline__ int stft_reflect(int j, int len) {
    j = j < 0 ? -j : j;
    return j >= len ? 2 * (len - 1) - j : j;
}

__device__ __forceinline__ int stft_bitrev(int i, int log2n) {
    int r = 0;
    for (int b = 0; b < log2n; ++b) { r = (r << 1) | (i & 1); i >>= 1; }
    return r;
}

// stft v1. Launch: 1-D grid × 256, grid-stride over B·F·T outputs (t fastest: coalesced writes).
// x [B, L]; consts: window [N] | cos [N] | sin [N]; out [B, 2, F, T].
// Bytes (upper bound; repeated reads hit L1/L2): 12·N read per output, 8 written.
extern "C" __global__ void stft_fwd_f32_v1(const float* __restrict__ x, const float* __restrict__ consts,
                                           float* __restrict__ out, const StftParams p) {
    const int N = p.n_fft, F = p.n_freq, T = p.n_frames;
    const float* w = consts;
    const float* tc = consts + N;
    const float* ts = consts + 2 * N;
    const int total = p.batch * F * T;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        const int t = idx % T, k = (idx / T) % F, b = idx / (T * F);
        const float* xb = x + (size_t)b * p.len;
        const int s0 = t * p.hop - N / 2;
        float sr = 0.0f, si = 0.0f;
        int ph = 0;  // k·n mod N
        for (int n = 0; n < N; ++n) {
            const float v = xb[stft_reflect(s0 + n, p.len)] * w[n];
            sr += v * tc[ph];
            si -= v * ts[ph];
            ph += k;
            if (ph >= N) ph -= N;
        }
        out[((size_t)(b * 2 + 0) * F + k) * T + t] = sr;
        out[((size_t)(b * 2 + 1) * F + k) * T + t] = si;
    }
}

// stft v2. Launch: grid (T, B), block 256. Block (t, b) owns frame t of signal b.
// Shared: re, im [N], twiddles [N] (24 KiB at N = 2048).
// Bytes per frame: read 4·N (samples) + 4·N (window) + 4·N (twiddles); written 8·F.
extern "C" __global__ void __launch_bounds__(STFT_THREADS)
stft_fwd_f32_v2(const float* __restrict__ x, const float* __restrict__ consts, float* __restrict__ out, const StftParams p) {
    __shared__ float re[STFT_MAXN];
    __shared__ float im[STFT_MAXN];
    __shared__ float tw[STFT_MAXN];
    const int t = blockIdx.x, b = blockIdx.y, N = p.n_fft, F = p.n_freq, T = p.n_frames;
    const float* xb = x + (size_t)b * p.len;
    const int s0 = t * p.hop - N / 2;
    for (int i = threadIdx.x; i < N; i += blockDim.x) {
        const int j = stft_bitrev(i, p.log2n);
        re[j] = xb[stft_reflect(s0 + i, p.len)] * consts[i];
        im[j] = 0.0f;
    }
    for (int i = threadIdx.x; i < N / 2; i += blockDim.x) {
        tw[i] = consts[N + i];
        tw[N / 2 + i] = consts[2 * N + i];
    }
    __syncthreads();
    fft_radix2_smem(re, im, tw, tw + N / 2, N, p.log2n);
    for (int k = threadIdx.x; k < F; k += blockDim.x) {
        out[((size_t)(b * 2 + 0) * F + k) * T + t] = re[k];
        out[((size_t)(b * 2 + 1) * F + k) * T + t] = im[k];
    }
}

// istft frames v1. Launch: 1-D grid × 256, grid-stride over B·T·N frame samples.
// spec [B, 2, F, T]; consts: window | cos | sin; frames [B, T, N] (windowed, scaled by 1/N).
// Bytes (upper bound): 16·F read per sample, 4 written.
extern "C" __global__ void istft_frames_fwd_f32_v1(const float* __restrict__ spec, const float* __restrict__ consts,
                                               float* __restrict__ frames, const StftParams p) {
    const int N = p.n_fft, F = p.n_freq, T = p.n_frames;
    const float* tc = consts + N;
    const float* ts = consts + 2 * N;
    const int total = p.batch * T * N;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        const int n = idx % N, t = (idx / N) % T, b = idx / (N * T);
        const float* sr = spec + (size_t)b * 2 * F * T;
        const float* si = sr + (size_t)F * T;
        // Hermitian sum: X0.re + 2·Σ_{0<k<N/2} Re(X_k e^{+iθ}) + (N even) X_{N/2}.re·(−1)^n
        float acc = sr[t];
        int ph = n;  // k·n mod N for k = 1
        const int kmax = (N % 2 == 0) ? N / 2 : F;  // exclusive bound of the doubled terms
        for (int k = 1; k < kmax; ++k) {
            acc += 2.0f * (sr[k * T + t] * tc[ph] - si[k * T + t] * ts[ph]);
            ph += n;
            if (ph >= N) ph -= N;
        }
        if (N % 2 == 0) acc += (n & 1 ? -1.0f : 1.0f) * sr[(N / 2) * T + t];
        frames[idx] = acc / (float)N * consts[n];
    }
}

// istft frames v2. Launch: grid (T, B), block 256. Block (t, b) owns frame t of signal b.
// Bytes per frame: read 8·F (spectrum, both planes; bins 0 and N/2 skip the imaginary part: 8·F − 8)
// + 4·N (twiddles) + 4·N (window); written 4·N.
extern "C" __global__ void __launch_bounds__(STFT_THREADS)
istft_frames_fwd_f32_v2(const float* __restrict__ spec, const float* __restrict__ consts, float* __restrict__ frames,
                    const StftParams p) {
    __shared__ float re[STFT_MAXN];
    __shared__ float im[STFT_MAXN];
    __shared__ float tw[STFT_MAXN];
    const int t = blockIdx.x, b = blockIdx.y, N = p.n_fft, F = p.n_freq, T = p.n_frames;
    const float* sr = spec + (size_t)b * 2 * F * T;
    const float* si = sr + (size_t)F * T;
    // conj(full Hermitian spectrum) in bit-reversed order: ifft(X) = conj(fft(conj(X))) / N, and the
    // result is real, so only the real part of fft(conj(X)) is needed.
    for (int k = threadIdx.x; k < F; k += blockDim.x) {
        const float r = sr[k * T + t];
        const float i = (k == 0 || k == N / 2) ? 0.0f : si[k * T + t];
        const int j = stft_bitrev(k, p.log2n);
        re[j] = r;
        im[j] = -i;
        if (k > 0 && k < N / 2) {
            const int j2 = stft_bitrev(N - k, p.log2n);
            re[j2] = r;
            im[j2] = i;
        }
    }
    for (int i = threadIdx.x; i < N / 2; i += blockDim.x) {
        tw[i] = consts[N + i];
        tw[N / 2 + i] = consts[2 * N + i];
    }
    __syncthreads();
    fft_radix2_smem(re, im, tw, tw + N / 2, N, p.log2n);
    float* fr = frames + ((size_t)b * T + t) * N;
    for (int n = threadIdx.x; n < N; n += blockDim.x) fr[n] = re[n] / (float)N * consts[n];
}

// istft_ola v1. Launch: 1-D grid × 256, grid-stride over B·len outputs. y[b, j] gathers frames
// covering padded position p = j + N/2; past `expected` it is 0 (torch pads with zeros).
// frames [B, T, N]; consts: window [N] first; y [B, len].
// Bytes per output: ≤ ⌈N/hop⌉·8 read (frame sample + window), 4 written.
extern "C" __global__ void istft_ola_fwd_f32_v1(const float* __restrict__ frames, const float* __restrict__ consts,
                                            float* __restrict__ y, const StftParams p) {
    const int N = p.n_fft, T = p.n_frames, L = p.len;
    const int total = p.batch * L;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        const int j = idx % L, b = idx / L;
        const int pos = j + N / 2;
        float v = 0.0f;
        if (pos < p.expected) {
            const int t_lo = pos + 1 > N ? (pos + 1 - N + p.hop - 1) / p.hop : 0;
            const int t_hi = min(pos / p.hop, T - 1);
            float s = 0.0f, e = 0.0f;
            for (int t = t_lo; t <= t_hi; ++t) {
                const int i = pos - t * p.hop;
                const float w = consts[i];
                s += frames[((size_t)b * T + t) * N + i];
                e += w * w;
            }
            v = s / e;
        }
        y[idx] = v;
    }
}

// ---------------------------------------------------------------------------------------------
// Backward of istft (its adjoint; the spectrum's gradient from the waveform's): two kernels that
// mirror the forward's two.
//   istft_ola v1 bwd — g'[b, p] = grad[b, p − N/2] / env[p] for N/2 ≤ p < N/2 + len (and p <
//             expected), 0 elsewhere: the overlap-add's adjoint is a gather of g' by each frame, so
//             this kernel only undoes the crop and the envelope division. One thread per (b, p).
//   istft_frames v1 bwd — naive DFT per (b, k, t): u[n] = w[n]·g'[b, t·hop + n];
//             dRe[k] = c_k/N·Σ_n u[n]·cos(2πkn/N), dIm[k] = −c_k/N·Σ_n u[n]·sin(2πkn/N), c_k = 1 at
//             k = 0 and (even N) k = N/2, where dIm = 0 (the forward ignores those imaginary parts),
//             else 2 (the Hermitian mirror). Any N. The reference port of the CPU's per-frame rfft.

// istft_ola v1 bwd. Launch: 1-D grid × 256, grid-stride over B·expected padded positions.
// grad [B, len]; consts: window [N] first; gp [B, expected].
// Bytes per position: ≤ ⌈N/hop⌉·4 read (window) + 4 (grad), 4 written.
extern "C" __global__ void istft_ola_bwd_f32_v1(const float* __restrict__ grad, const float* __restrict__ consts,
                                               float* __restrict__ gp, const StftParams p) {
    const int N = p.n_fft, T = p.n_frames, L = p.len, E = p.expected;
    const int total = p.batch * E;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        const int pos = idx % E, b = idx / E;
        const int j = pos - N / 2;
        float v = 0.0f;
        if (j >= 0 && j < L) {
            const int t_lo = pos + 1 > N ? (pos + 1 - N + p.hop - 1) / p.hop : 0;
            const int t_hi = min(pos / p.hop, T - 1);
            float e = 0.0f;
            for (int t = t_lo; t <= t_hi; ++t) {
                const float w = consts[pos - t * p.hop];
                e += w * w;
            }
            v = grad[(size_t)b * L + j] / e;
        }
        gp[idx] = v;
    }
}

// istft_frames v1 bwd. Launch: 1-D grid × 256, grid-stride over B·F·T outputs (t fastest:
// coalesced writes). gp [B, expected] (istft_ola_bwd's output); consts: window | cos | sin;
// dspec [B, 2, F, T].
// Bytes (upper bound; repeated reads hit L1/L2): 12·N read per output, 8 written.
extern "C" __global__ void istft_frames_bwd_f32_v1(const float* __restrict__ gp, const float* __restrict__ consts,
                                                  float* __restrict__ dspec, const StftParams p) {
    const int N = p.n_fft, F = p.n_freq, T = p.n_frames;
    const float* w = consts;
    const float* tc = consts + N;
    const float* ts = consts + 2 * N;
    const int total = p.batch * F * T;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        const int t = idx % T, k = (idx / T) % F, b = idx / (T * F);
        const float* g = gp + (size_t)b * p.expected + (size_t)t * p.hop;
        float sr = 0.0f, si = 0.0f;
        int ph = 0;  // k·n mod N
        for (int n = 0; n < N; ++n) {
            const float v = g[n] * w[n];
            sr += v * tc[ph];
            si -= v * ts[ph];
            ph += k;
            if (ph >= N) ph -= N;
        }
        const bool edge = k == 0 || (N % 2 == 0 && k == N / 2);
        const float c = edge ? 1.0f : 2.0f;
        dspec[((size_t)(b * 2 + 0) * F + k) * T + t] = sr * c / (float)N;
        dspec[((size_t)(b * 2 + 1) * F + k) * T + t] = edge ? 0.0f : si * c / (float)N;
    }
}

// stft_frames bwd v1 (the STFT's adjoint, part 1). Launch: 1-D grid × 256, grid-stride over B·T·N
// frame samples (n fastest). dspec [B, 2, F, T] (the spectrum's gradient); consts: window | cos | sin;
// frames [B, T, N]: u[b, t, n] = w[n]·Σ_{k<F} (Gre[k, t]·cos(2πkn/N) − Gim[k, t]·sin(2πkn/N)).
// Bytes (upper bound; repeated reads hit L1/L2): 16·F read per output, 4 written.
extern "C" __global__ void stft_frames_bwd_f32_v1(const float* __restrict__ dspec, const float* __restrict__ consts,
                                                 float* __restrict__ frames, const StftParams p) {
    const int N = p.n_fft, F = p.n_freq, T = p.n_frames;
    const float* tc = consts + N;
    const float* ts = consts + 2 * N;
    const int total = p.batch * T * N;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        const int n = idx % N, t = (idx / N) % T, b = idx / (N * T);
        const float* gr = dspec + (size_t)b * 2 * F * T + t;
        const float* gi = gr + (size_t)F * T;
        float s = 0.0f;
        int ph = 0;  // k·n mod N
        for (int k = 0; k < F; ++k) {
            s += gr[(size_t)k * T] * tc[ph] - gi[(size_t)k * T] * ts[ph];
            ph += n;
            if (ph >= N) ph -= N;
        }
        frames[idx] = consts[n] * s;
    }
}

// stft_ola bwd v1 (part 2). Launch: 1-D grid × 256, grid-stride over B·L output samples. Each output
// sample j of the signal was read at up to three padded positions (j + N/2; its left mirror N/2 − j
// for 1 ≤ j ≤ N/2; its right mirror N/2 + 2(L − 1) − j for j ≤ L − 2 when that lies past the end);
// at each, the frames covering it are summed (gather: deterministic, no atomics).
// frames [B, T, N]; dx [B, L].
extern "C" __global__ void stft_ola_bwd_f32_v1(const float* __restrict__ frames, float* __restrict__ dx, const StftParams p) {
    const int N = p.n_fft, T = p.n_frames, L = p.len, H = p.hop, pad = N / 2;
    const int span = N + H * (T - 1);
    const int total = p.batch * L;
    for (int idx = blockIdx.x * blockDim.x + threadIdx.x; idx < total; idx += gridDim.x * blockDim.x) {
        const int j = idx % L, b = idx / L;
        const float* fb = frames + (size_t)b * T * N;
        int pos[3];
        int np = 0;
        pos[np++] = j + pad;
        if (j >= 1 && j <= pad) pos[np++] = pad - j;
        if (j <= L - 2 && pad + 2 * (L - 1) - j >= pad + L) pos[np++] = pad + 2 * (L - 1) - j;
        float s = 0.0f;
        for (int q = 0; q < np; ++q) {
            const int ps = pos[q];
            if (ps >= span) continue;
            const int t_lo = ps + 1 > N ? (ps + 1 - N + H - 1) / H : 0;
            const int t_hi = min(ps / H, T - 1);
            for (int t = t_lo; t <= t_hi; ++t) s += fb[(size_t)t * N + (ps - t * H)];
        }
        dx[idx] = s;
    }
}
