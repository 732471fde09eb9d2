// Emulator selftest: compile coverage of cuda_emu.h (macro-generated kernels, file-scope extern
// __shared__, fp16, WMMA variants, math, atomics, votes). Only emu_cov_ln_* is run by a test.
#include <cuda_fp16.h>
#include <mma.h>
#include <math_constants.h>
using namespace nvcuda;
extern __shared__ float4 file_smem[];
template <typename T> __device__ __forceinline__ T to(float x) { return T(x); }
template <> __device__ __forceinline__ __half to<__half>(float x) { return __float2half(x); }
template <typename T, int BS>
__device__ void ln_impl(const T* __restrict__ x, T* __restrict__ y, int n, float eps) {
    __shared__ __align__(16) float red[32];
    volatile float* v = red;
    float s = 0.f;
    #pragma unroll 4
    for (int i = threadIdx.x; i < n; i += BS) s += (float)x[blockIdx.x * n + i];
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
    if ((threadIdx.x & 31) == 0) v[threadIdx.x >> 5] = s;
    __syncthreads();
    float mean = 0.f;
    for (int w = 0; w < BS / 32; w++) mean += red[w];
    mean /= n;
    float r = rsqrtf(mean + eps);
    for (int i = threadIdx.x; i < n; i += BS) y[blockIdx.x * n + i] = to<T>(((float)x[blockIdx.x * n + i] - mean) * r);
}
#define LN(NAME, T) extern "C" __global__ void __launch_bounds__(256, 2) NAME(const T* x, T* y, int n, float eps) { ln_impl<T, 256>(x, y, n, eps); }
LN(emu_cov_ln_f32, float)
LN(emu_cov_ln_f16, __half)
extern "C" {
__global__ void emu_cov_misc(float* o, const float4* in, __half2* h, unsigned long long* u, int* ii, double* d) {
    float4 a = __ldg(&in[threadIdx.x]);
    float s, c; sincosf(a.x, &s, &c); __sincosf(a.y, &s, &c);
    o[0] = erff(a.x) + tanhf(a.y) + log1pf(a.z) + expm1f(a.w) + fabsf(s) + copysignf(c, -1.f) + rintf(s) + (float)lrintf(c)
        + __frcp_rn(2.f) + __fmaf_rn(1.f, 2.f, 3.f) + powf(2.f, 3.f) + (isnan(s) ? 1.f : 0.f) + (isinf(c) ? 1.f : 0.f)
        + __expf(1.f) + __logf(2.f) + __sinf(1.f) + __cosf(1.f) + __fdividef(1.f, 3.f) + fmaxf(1.f, 2.f) + fminf(1.f, 2.f)
        + max(1, 2) + min(3.f, 4.f) + max(2u, 3u) + floorf(1.5f) + ceilf(1.5f) + exp2f(1.f) + log2f(2.f) + atan2f(1.f, 2.f)
        + CUDART_INF_F * 0.f + CUDART_PI_F + FLT_MAX * 0.f + INFINITY * 0.f;
    __half2 hv = __float22half2_rn(make_float2(1.f, 2.f));
    hv = __shfl_xor_sync(0xffffffffu, hv, 1);
    h[threadIdx.x] = __hmax2(hv, __hmul2(hv, hv)) + hv;
    atomicAdd(u, 1ull); atomicMax(ii, 3); atomicMin(ii, -1); atomicCAS(ii, 0, 1); atomicExch(ii, 5); atomicAdd(d, 1.0);
    atomicAdd(&h[0], hv); atomicAdd(o, 1.f);
    file_smem[threadIdx.x] = a;
    unsigned m = __activemask();
    if (__all_sync(m, 1)) o[1] = __popc(m) + __clz(1) + __ffs(8);
    __half q = __float2half(1.f); q += __float2half(2.f); q = q * q - q / q; bool b = q > __float2half(0.f); (void)b;
    float f = q; o[2] = f + __half2float(__hmax(q, -q));
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::col_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, __half> fc;
    wmma::fill_fragment(fc, __float2half(0.f));
    __shared__ __half sh[256];
    wmma::load_matrix_sync(fa, sh, 16); wmma::load_matrix_sync(fb, sh, 16);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(sh, fc, 16, wmma::mem_col_major);
    __syncwarp();
    __threadfence();
    o[3] = __shfl_down_sync(0xffffffff, 1.0, 1) + __shfl_up_sync(0xffffffff, 2, 1) + __shfl_sync(0xffffffff, 3ll, 0);
    o[4] = __int_as_float(__float_as_int(1.f)) + __uint_as_float(__float_as_uint(2.f));
    dim3 g = gridDim; o[5] = g.x * blockDim.y + warpSize;
    if (threadIdx.x == 999) __trap();
    assert(o != nullptr);
}
}
