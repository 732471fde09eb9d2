// reduce.cu — reductions over one axis: sum (mean = sum / L, same kernels) and max (NaN-propagating,
// torch.amax).
//
// Math: y[o, i] = Σ_l x[o, l, i] / div   (div = 1 for sum, L for mean), or max_l x[o, l, i]; f32
// accumulation. Layouts: x viewed as [O, L, I] row-major (O = dims before the axis, L = the axis,
// I = dims after it); y: [O, I]. Build: compiled at run time by NVRTC; under the emulator as C++.
//
// Versions (llm.c style, one line each):
//   v1 — one thread per output (o, i), grid-stride, looping over L with Kahan compensation (sum).
//        Adjacent threads read adjacent i, so loads coalesce when I is large (mean over frequency of
//        (12, 101, 768): O = 1, L = 12, I = 77568). The naive port; the default unless v2 applies.
//   v2 — one 256-thread block per output: threads stride over L, then a shared-memory tree (halving
//        with __syncthreads). For long L with few outputs or I = 1 (Σ over the hidden dim of 1214×768,
//        mean over time), where v1 would have one thread walk a whole row alone, uncoalesced.
//   Not yet: a warp-per-output variant for medium L with I = 1, and a split-L two-kernel variant for
//   a single huge output (one block per output caps the parallelism at O·I blocks).
//
// Measured (aural bench, H100): mean of (12, 101, 768) over axis 0 — v1 0.012 ms, v2 0.098 ms;
// sum of 1214×768 over the last axis — v1 0.111 ms, v2 0.013 ms. The dispatcher picks the winner of each.
//
// Bytes per launch (minimum): 4·O·L·I read + 4·O·I written.

struct ReduceParams {
    int outer;
    int len;
    int inner;
    float div;  // 1 for sum, L for mean
};
static_assert(sizeof(ReduceParams) == 16, "ReduceParams must match runtime/src/ops/reduce/cuda.rs");

#define V2_THREADS 256
#define NEG_INF __int_as_float(0xff800000)

namespace {  // helpers: internal linkage (no clashes with other families under the emulator)

// Kahan-compensated sum (no multiplies, so no FMA contraction can undo the compensation).
struct SumAcc {
    float s, c;
    __device__ SumAcc() : s(0.0f), c(0.0f) {}
    __device__ void add(float v) {
        const float y = v - c;
        const float t = s + y;
        c = (t - s) - y;
        s = t;
    }
    __device__ float value() const { return s; }
    __device__ static float combine(float a, float b) { return a + b; }
    __device__ static float finish(float v, float div) { return v / div; }
};

// Max that propagates NaN from either side.
struct MaxAcc {
    float m;
    __device__ MaxAcc() : m(NEG_INF) {}
    __device__ void add(float v) { m = combine(m, v); }
    __device__ float value() const { return m; }
    __device__ static float combine(float a, float b) { return (b > a || b != b) ? b : a; }
    __device__ static float finish(float v, float) { return v; }
};

// v1. Launch: 1-D grid × 256 threads, grid-stride over O·I outputs. One thread owns output (o, i) and
// walks x[o, 0..L, i]. x: [O, L, I]; y: [O, I].
template <typename Acc>
__device__ void reduce_v1(const float* __restrict__ x, float* __restrict__ y, const ReduceParams p) {
    const int n_out = p.outer * p.inner;
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n_out; k += gridDim.x * blockDim.x) {
        const int o = k / p.inner, i = k - o * p.inner;
        const float* xp = x + (size_t)o * p.len * p.inner + i;
        Acc acc;
        for (int l = 0; l < p.len; ++l) acc.add(xp[(size_t)l * p.inner]);
        y[k] = Acc::finish(acc.value(), p.div);
    }
}

// v2. Launch: 1-D grid × 256 threads (V2_THREADS); block b owns outputs b, b + gridDim.x, …; thread t
// accumulates x[o, t, i], x[o, t + 256, i], …, then a shared-memory tree combines the 256 partials.
// Shared: 256 floats (static). x: [O, L, I]; y: [O, I].
template <typename Acc>
__device__ void reduce_v2(const float* __restrict__ x, float* __restrict__ y, const ReduceParams p) {
    __shared__ float part[V2_THREADS];
    const int n_out = p.outer * p.inner;
    for (int k = blockIdx.x; k < n_out; k += gridDim.x) {
        const int o = k / p.inner, i = k - o * p.inner;
        const float* xp = x + (size_t)o * p.len * p.inner + i;
        Acc acc;
        for (int l = threadIdx.x; l < p.len; l += V2_THREADS) acc.add(xp[(size_t)l * p.inner]);
        part[threadIdx.x] = acc.value();
        __syncthreads();
        for (int h = V2_THREADS / 2; h > 0; h >>= 1) {
            if (threadIdx.x < h) part[threadIdx.x] = Acc::combine(part[threadIdx.x], part[threadIdx.x + h]);
            __syncthreads();
        }
        if (threadIdx.x == 0) y[k] = Acc::finish(part[0], p.div);
        __syncthreads();  // part[0] is read before the next output overwrites it
    }
}

}  // namespace

#define REDUCE_KERNELS(name, Acc)                                                                       \
    extern "C" __global__ void name##_fwd_f32_v1(const float* x, float* y, const ReduceParams p) {   \
        reduce_v1<Acc>(x, y, p);                                                                    \
    }                                                                                               \
    extern "C" __global__ void __launch_bounds__(V2_THREADS)                                        \
        name##_fwd_f32_v2(const float* x, float* y, const ReduceParams p) { reduce_v2<Acc>(x, y, p); }

REDUCE_KERNELS(sum, SumAcc)
REDUCE_KERNELS(max, MaxAcc)
