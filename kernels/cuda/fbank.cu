// fbank.cu — kaldi-compatible log-mel filterbank (torchaudio.compliance.kaldi.fbank), fused, and
// AST's input normalisation (HF ASTFeatureExtractor).
//
// Math, per frame f (samples x[f·shift .. f·shift + win)):
//   x ← x − mean(x)                               (remove_dc_offset)
//   y[i] = x[i] − p·x[max(i−1, 0)]                 (kaldi pre-emphasis, p = 0.97)
//   y ← y · w ; zero-pad to n_fft (power of two)   (w: kaldi window, precomputed on the host)
//   P[k] = |FFT(y)[k]|²,  k = 0 … n_fft/2
//   out[f, m] = ln(max(Σ_k W[m, k]·P[k], FLT_EPSILON))   (W: sparse kaldi-mel triangles)
//   optional AST normalisation: out ← (out − mean) / (2·std); rows f ≥ frames (padding up to
//   max_length) hold (0 − mean) / (2·std); frames ≥ max_length are not computed (truncation).
// Layouts: wave [n_samples]; out [out_rows, n_mel] row-major.
// consts (f32): window [win] | twiddle cos [n_fft/2] | twiddle sin [n_fft/2] | mel weights [nnz];
//   twiddle j = cos/sin(2πj/n_fft) (computed in f64 on the host); rng (i32): [n_mel][3] =
//   (first FFT bin, number of bins, offset into the weights) of each triangle.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions:
//   v1 — fused, one block (256 threads) per frame: load + DC removal + pre-emphasis + window in
//        registers, bit-reversed scatter into shared memory, iterative radix-2 complex FFT (n_fft/2
//        butterflies per stage, twiddles staged in shared memory), power in place, sparse mel
//        projection (one thread per mel bin), log, optional AST normalisation. No spectrum touches
//        global memory. The real-input trick (n_fft/2-point complex FFT + split) would halve the FFT
//        work; not done yet: at 512 points the kernel is bound by launch/latency, not by flops.
//   ast_input_fwd_f32_v1 — the standalone pad/truncate + normalise of an existing fbank.

#include "common.cuh"

#define FBANK_MAXN 2048          // largest n_fft of the fused kernel (the launcher checks)
#define FBANK_THREADS 256        // block size (power of two; the launcher uses it)
#define FBANK_PER_THREAD (FBANK_MAXN / FBANK_THREADS)
#define FBANK_EPS 1.1920928955078125e-07f  // FLT_EPSILON, torch.finfo(torch.float32).eps

struct FbankParams {
    int n_samples;
    int win;        // samples per frame (400)
    int shift;      // frame shift (160)
    int n_fft;      // power of two ≤ FBANK_MAXN (512)
    int log2n;
    int n_frames;   // frames computed: min(1 + (n_samples − win) / shift, out_rows)
    int n_mel;
    int out_rows;   // rows written (= grid size): n_frames, or max_length with AST normalisation
    int remove_dc;
    int ast;        // 1: apply AST normalisation
    float preemph;
    float ast_mean;
    float ast_std2;  // 2·std
    int nnz;        // number of mel weights
    int pad0, pad1;
};
static_assert(sizeof(FbankParams) == 64, "FbankParams must match runtime/src/ops/fbank/cuda.rs");

__device__ __forceinline__ int fbank_bitrev(int i, int log2n) {
    int r = 0;
    for (int b = 0; b < log2n; ++b) { r = (r << 1) | (i & 1); i >>= 1; }
    return r;
}

// v1. Launch: grid (out_rows), block (256). Block f owns output row f. Shared memory: 2·n_fft +
// n_fft + 256 floats (static, 25 KiB at FBANK_MAXN).
// wave: [n_samples]; consts/rng: see the header; out: [out_rows, n_mel].
// Bytes per computed frame (global memory, exact): read 4·win (samples) + 4·win (window)
//   + 4·n_fft (twiddles) + 12·n_mel (ranges) + 4·nnz (weights); written 4·n_mel.
//   Per padding row: read 0, written 4·n_mel. For AST's call (win 400, n_fft 512, 128 mel,
//   nnz 256 weights): 8 320 B read + 512 B written per frame; the spectrum stays on chip.
extern "C" __global__ void __launch_bounds__(FBANK_THREADS)
fbank_fwd_f32_v1(const float* __restrict__ wave, const float* __restrict__ consts, const int* __restrict__ rng,
                 float* __restrict__ out, const FbankParams p) {
    __shared__ float re[FBANK_MAXN];
    __shared__ float im[FBANK_MAXN];
    __shared__ float tw[FBANK_MAXN];  // cos [n/2] | sin [n/2]
    __shared__ float red[FBANK_THREADS];
    const int f = blockIdx.x, tid = threadIdx.x, nt = blockDim.x;
    float* row = out + (size_t)f * p.n_mel;
    if (f >= p.n_frames) {  // AST padding row (block-uniform branch)
        const float v = (0.0f - p.ast_mean) / p.ast_std2;
        for (int m = tid; m < p.n_mel; m += nt) row[m] = v;
        return;
    }
    const float* x = wave + (size_t)f * p.shift;
    const float* window = consts;
    const float* mw = consts + p.win + p.n_fft;
    // 1. stage the frame (in re) and the twiddles; partial sums for the mean.
    float s = 0.0f;
    for (int i = tid; i < p.win; i += nt) {
        const float v = x[i];
        re[i] = v;
        s += v;
    }
    for (int i = tid; i < p.n_fft; i += nt) tw[i] = consts[p.win + i];
    red[tid] = s;
    __syncthreads();
    for (int o = nt >> 1; o > 0; o >>= 1) {
        if (tid < o) red[tid] += red[tid + o];
        __syncthreads();
    }
    const float mean = p.remove_dc ? red[0] / (float)p.win : 0.0f;
    // 2. DC removal, pre-emphasis, window — into registers (re is still being read by neighbours).
    float vals[FBANK_PER_THREAD];
#pragma unroll
    for (int r = 0; r < FBANK_PER_THREAD; ++r) {
        const int i = tid + r * nt;
        float v = 0.0f;
        if (i < p.win) {
            const float a = re[i] - mean;
            const float b = re[i > 0 ? i - 1 : 0] - mean;
            v = (a - p.preemph * b) * window[i];
        }
        vals[r] = v;
    }
    __syncthreads();
    // 3. bit-reversed scatter (zero padding included), FFT.
#pragma unroll
    for (int r = 0; r < FBANK_PER_THREAD; ++r) {
        const int i = tid + r * nt;
        if (i < p.n_fft) {
            const int j = fbank_bitrev(i, p.log2n);
            re[j] = vals[r];
            im[j] = 0.0f;
        }
    }
    __syncthreads();
    fft_radix2_smem(re, im, tw, tw + (p.n_fft >> 1), p.n_fft, p.log2n);
    // 4. power spectrum in place (thread k owns bin k).
    for (int k = tid; k <= (p.n_fft >> 1); k += nt) re[k] = re[k] * re[k] + im[k] * im[k];
    __syncthreads();
    // 5. sparse mel projection, log, optional normalisation.
    for (int m = tid; m < p.n_mel; m += nt) {
        const int st = rng[3 * m], len = rng[3 * m + 1], off = rng[3 * m + 2];
        float e = 0.0f;
        for (int j = 0; j < len; ++j) e += mw[off + j] * re[st + j];
        float v = logf(fmaxf(e, FBANK_EPS));
        if (p.ast) v = (v - p.ast_mean) / p.ast_std2;
        row[m] = v;
    }
}

// ast_input_fwd_f32_v1. Launch: 1-D grid × 256 threads, grid-stride over rows·n_mel outputs.
// in: [frames, n_mel] raw log-mel; out: [rows, n_mel]; out = (in − mean)/std2, or −mean/std2 past
// the input's frames. Bytes: 4·min(frames, rows)·n_mel read, 4·rows·n_mel written.
extern "C" __global__ void ast_input_fwd_f32_v1(const float* __restrict__ in, float* __restrict__ out, int frames,
                                                  int rows, int n_mel, float mean, float std2) {
    const int n = rows * n_mel;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        const float v = (i / n_mel) < frames ? in[i] : 0.0f;
        out[i] = (v - mean) / std2;
    }
}
