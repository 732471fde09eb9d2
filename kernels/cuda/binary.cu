// binary.cu — elementwise binary ops with NumPy broadcasting: add, sub, mul, div, maximum, minimum.
//
// Math: out[i] = a[ia(i)] ∘ b[ib(i)], f32. Layouts: row-major; the output has the broadcast shape
// (rank ≤ 6), each operand is read through per-dim strides that are 0 where it is broadcast.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style, one line each):
//   v1 — general: one thread per output element (grid-stride), the linear index decomposed over the
//        output dims into operand offsets. ~20 integer ops per element; memory-bound anyway.
//   v2 — same shape or trailing-block broadcast (bias add, scale by a per-channel vector): the small
//        operand is indexed by i mod m, no decomposition. Chosen whenever it applies.
//
// Bytes per launch (minimum): 4·n read from the full operand(s), 4·m from a repeated operand (cached,
// re-read from L2), 4·n written.

struct BinaryParams {
    int n;
    int rank;
    int m;           // elements of the repeated operand (v2)
    int small_is_a;  // v2: 1 when a is the repeated operand
    int out_dims[6];
    int a_strides[6];
    int b_strides[6];
};
static_assert(sizeof(BinaryParams) == 88, "BinaryParams must match runtime/src/ops/binary/cuda.rs");

struct OpAdd { __device__ static float f(float x, float y) { return x + y; } };
struct OpSub { __device__ static float f(float x, float y) { return x - y; } };
struct OpMul { __device__ static float f(float x, float y) { return x * y; } };
struct OpDiv { __device__ static float f(float x, float y) { return x / y; } };
// maximum/minimum propagate NaN like torch.maximum/minimum.
struct OpMax { __device__ static float f(float x, float y) { return (x != x || y != y) ? __int_as_float(0x7fc00000) : fmaxf(x, y); } };
struct OpMin { __device__ static float f(float x, float y) { return (x != x || y != y) ? __int_as_float(0x7fc00000) : fminf(x, y); } };

// v1. Launch: 1-D grid × 256 threads, grid-stride over n. One thread owns one output element per step.
// a, b: operands (any shapes broadcasting to out_dims); out: [n].
template <typename Op>
__device__ void binary_v1(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                          const BinaryParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        int rem = i, ia = 0, ib = 0;
        // Fully unrolled over the 6 slots so the parameter arrays are indexed by constants (a
        // dynamic index would copy them to local memory: 88 bytes of stack per thread).
#pragma unroll
        for (int d = 5; d >= 0; --d) {
            if (d >= p.rank) continue;
            int k = rem % p.out_dims[d];
            rem /= p.out_dims[d];
            ia += k * p.a_strides[d];
            ib += k * p.b_strides[d];
        }
        out[i] = Op::f(a[ia], b[ib]);
    }
}

// v2. Launch: as v1. The full operand is read at i, the repeated one at i mod m.
template <typename Op>
__device__ void binary_v2(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ out,
                          const BinaryParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        int j = i % p.m;
        out[i] = p.small_is_a ? Op::f(a[j], b[i]) : Op::f(a[i], b[j]);
    }
}

#define BINARY_KERNELS(name, Op)                                                                        \
    extern "C" __global__ void name##_fwd_f32_v1(const float* a, const float* b, float* out,            \
                                                 const BinaryParams p) { binary_v1<Op>(a, b, out, p); } \
    extern "C" __global__ void name##_fwd_f32_v2(const float* a, const float* b, float* out,            \
                                                 const BinaryParams p) { binary_v2<Op>(a, b, out, p); }

BINARY_KERNELS(add, OpAdd)
BINARY_KERNELS(sub, OpSub)
BINARY_KERNELS(mul, OpMul)
BINARY_KERNELS(div, OpDiv)
BINARY_KERNELS(maximum, OpMax)
BINARY_KERNELS(minimum, OpMin)
