// unary.cu — elementwise unary ops: gelu (erf form), gelu_tanh, relu, leaky_relu, sigmoid, tanh, exp,
// log, sqrt, neg, abs, affine; and the dtype casts to_f16 / to_f32.
//
// Math: out[i] = f(x[i]; a, b), f32 → f32 (a: leaky_relu slope / affine scale, b: affine shift).
//   gelu(x)      = 0.5·x·erfc(−x/√2)       (= 0.5·x·(1 + erf(x/√2)), torch's default, without the
//                                            cancellation of 1 + erf on the negative tail)
//   gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
//   casts: f32 → f16 round-to-nearest-even (overflow → ±inf, NaN stays NaN) and f16 → f32 (exact),
//          done with integer bit arithmetic so the same code runs under NVRTC and the emulator.
// Layouts: x, out: [n] contiguous (any shape, flattened). Build: compiled at run time by NVRTC
// (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style, one line each):
//   v1 — one thread per element, grid-stride, scalar loads. The naive port of the CPU op; any n.
//   v2 — one thread per float4 (16-byte loads/stores), grid-stride; needs n % 4 == 0 (buffers are
//        256-byte aligned). Chosen whenever it applies: fewer memory instructions for the same bytes.
//   casts — v1 only (one thread per element); they are used at model edges, not in hot loops.
//
// Measured (aural bench, H100, gelu 1214×3072): v1 0.022 ms (1352 GB/s), v2 0.018 ms (1623 GB/s).
//
// Bytes per launch (minimum): 4·n read + 4·n written (casts: 4·n + 2·n). Flops: a few per element
// (gelu: erfc ≈ 20–30).

struct UnaryParams {
    int n;
    float a;  // leaky_relu slope, affine scale
    float b;  // affine shift
    int _pad;
};
static_assert(sizeof(UnaryParams) == 16, "UnaryParams must match runtime/src/ops/unary/cuda.rs");

namespace {  // helpers: internal linkage (no clashes with other families under the emulator)

struct OpGelu { __device__ static float f(float x, float, float) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); } };
struct OpGeluTanh {
    __device__ static float f(float x, float, float) {
        const float k = 0.7978845608028654f;  // √(2/π)
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
};
// relu keeps NaN like torch.relu.
struct OpRelu { __device__ static float f(float x, float, float) { return x > 0.0f ? x : (x != x ? x : 0.0f); } };
struct OpLeakyRelu { __device__ static float f(float x, float s, float) { return x >= 0.0f ? x : x * s; } };
struct OpSigmoid { __device__ static float f(float x, float, float) { return 1.0f / (1.0f + expf(-x)); } };
struct OpTanh { __device__ static float f(float x, float, float) { return tanhf(x); } };
struct OpExp { __device__ static float f(float x, float, float) { return expf(x); } };
struct OpLog { __device__ static float f(float x, float, float) { return logf(x); } };
struct OpSqrt { __device__ static float f(float x, float, float) { return sqrtf(x); } };
struct OpNeg { __device__ static float f(float x, float, float) { return -x; } };
struct OpAbs { __device__ static float f(float x, float, float) { return fabsf(x); } };
// x·scale + shift, rounded twice like the CPU (no fused multiply-add).
struct OpAffine { __device__ static float f(float x, float a, float b) { return __fadd_rn(__fmul_rn(x, a), b); } };

// v1. Launch: 1-D grid × 256 threads, grid-stride over n. One thread owns one element per step.
// x: [n]; out: [n].
template <typename Op>
__device__ void unary_v1(const float* __restrict__ x, float* __restrict__ out, const UnaryParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        out[i] = Op::f(x[i], p.a, p.b);
    }
}

// v2. Launch: 1-D grid × 256 threads, grid-stride over n/4. One thread owns one float4 per step.
// x: [n] (n % 4 == 0, 16-byte aligned); out: [n].
template <typename Op>
__device__ void unary_v2(const float* __restrict__ x, float* __restrict__ out, const UnaryParams p) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* o4 = reinterpret_cast<float4*>(out);
    const int n4 = p.n >> 2;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += gridDim.x * blockDim.x) {
        float4 v = x4[i];
        v.x = Op::f(v.x, p.a, p.b);
        v.y = Op::f(v.y, p.a, p.b);
        v.z = Op::f(v.z, p.a, p.b);
        v.w = Op::f(v.w, p.a, p.b);
        o4[i] = v;
    }
}

}  // namespace

#define UNARY_KERNELS(name, Op)                                                                        \
    extern "C" __global__ void name##_fwd_f32_v1(const float* x, float* out, const UnaryParams p) { \
        unary_v1<Op>(x, out, p);                                                                   \
    }                                                                                              \
    extern "C" __global__ void name##_fwd_f32_v2(const float* x, float* out, const UnaryParams p) { \
        unary_v2<Op>(x, out, p);                                                                   \
    }

UNARY_KERNELS(gelu, OpGelu)
UNARY_KERNELS(gelu_tanh, OpGeluTanh)
UNARY_KERNELS(relu, OpRelu)
UNARY_KERNELS(leaky_relu, OpLeakyRelu)
UNARY_KERNELS(sigmoid, OpSigmoid)
UNARY_KERNELS(tanh, OpTanh)
UNARY_KERNELS(exp, OpExp)
UNARY_KERNELS(log, OpLog)
UNARY_KERNELS(sqrt, OpSqrt)
UNARY_KERNELS(neg, OpNeg)
UNARY_KERNELS(abs, OpAbs)
UNARY_KERNELS(affine, OpAffine)

namespace {

// f32 → IEEE binary16 bits, round-to-nearest-even.
__device__ __forceinline__ unsigned short f32_to_f16_bits(float f) {
    const unsigned x = __float_as_uint(f);
    const unsigned sign = (x >> 16) & 0x8000u;
    const unsigned ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (unsigned short)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // NaN (quiet)
    if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);                        // ≥ 65520 → inf
    if (ax >= 0x38800000u) {                                                               // normal half
        const unsigned r = ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u);
        return (unsigned short)(sign | (r >> 13));
    }
    if (ax <= 0x33000000u) return (unsigned short)sign;  // ≤ 2^-25 rounds to ±0 (ties to even)
    const unsigned e = ax >> 23;                          // 102..112: half subnormal
    const unsigned m = (ax & 0x7fffffu) | 0x800000u;
    const unsigned shift = 126u - e;                      // 14..24
    unsigned r = m >> shift;
    const unsigned rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r += 1u;
    return (unsigned short)(sign | r);
}

// IEEE binary16 bits → f32 (exact).
__device__ __forceinline__ float f16_bits_to_f32(unsigned short h) {
    const unsigned sign = ((unsigned)h & 0x8000u) << 16;
    const unsigned e = ((unsigned)h >> 10) & 0x1fu, m = (unsigned)h & 0x3ffu;
    if (e == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    if (e == 0u) return __uint_as_float(__float_as_uint((float)m * 5.9604644775390625e-8f) | sign);
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

}  // namespace

// to_f16 v1. Launch: 1-D grid × 256 threads, grid-stride over n; one thread per element.
// x: [n] f32; out: [n] f16 (as raw 16-bit words).
extern "C" __global__ void to_f16_fwd_f32_v1(const float* __restrict__ x, unsigned short* __restrict__ out,
                                             const UnaryParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        out[i] = f32_to_f16_bits(x[i]);
    }
}

// to_f32 v1. Launch: 1-D grid × 256 threads, grid-stride over n; one thread per element.
// x: [n] f16 (raw 16-bit words); out: [n] f32.
extern "C" __global__ void to_f32_fwd_f16_v1(const unsigned short* __restrict__ x, float* __restrict__ out,
                                             const UnaryParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        out[i] = f16_bits_to_f32(x[i]);
    }
}

// ---------------------------------------------------------------------------------------------------
// Backward (autograd, issue #7). Appended; the forward kernels above are unchanged.
//
// gelu_bwd: dx[i] = dy[i] · (Φ(x[i]) + x[i]·φ(x[i])), Φ(x) = 0.5·erfc(−x/√2), φ(x) = e^{−x²/2}/√(2π)
// (the derivative of the exact GELU, torch's gelu_backward with approximate='none').
//   v1 — one thread per element, grid-stride, scalar loads; the naive port of the CPU rule
//        (runtime/src/ops/unary/backward.rs). A float4 v2 like the forward's would save memory
//        instructions; not measured yet.
// Bytes per launch (minimum): 8·n read + 4·n written. Flops: ~40 per element (erfc + exp).

// gelu_bwd v1. Launch: 1-D grid × 256 threads, grid-stride over n; one thread per element.
// x: [n] (the forward input); dy: [n]; dx: [n].
extern "C" __global__ void gelu_bwd_f32_v1(const float* __restrict__ x, const float* __restrict__ dy,
                                           float* __restrict__ dx, const UnaryParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        const float v = x[i];
        const float cdf = 0.5f * erfcf(-v * 0.70710678118654752f);
        const float pdf = 0.3989422804014327f * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}
