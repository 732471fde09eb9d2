// Emulator selftests: block reductions (correct, missing barrier, warp shuffle), copy, histogram.
#include <cuda_fp16.h>

// One block of 256 threads sums 256*gridDim.x floats; out[blockIdx.x] = sum of its slice.
extern "C" __global__ void __launch_bounds__(256) emu_test_reduce_smem(const float* __restrict__ x, float* out) {
    __shared__ float s[256];
    const int t = threadIdx.x;
    s[t] = x[blockIdx.x * 256 + t];
    __syncthreads();
    for (int stride = 128; stride > 0; stride >>= 1) {
        if (t < stride) s[t] += s[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// BROKEN on purpose: the barrier after the loads is missing.
extern "C" __global__ void emu_test_reduce_smem_racy(const float* __restrict__ x, float* out) {
    __shared__ float s[256];
    const int t = threadIdx.x;
    s[t] = x[blockIdx.x * 256 + t];
    for (int stride = 128; stride > 0; stride >>= 1) {
        if (t < stride) s[t] += s[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

static __device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Warp-shuffle block reduction (any blockDim.x multiple of 32, <= 1024): out[b] = sum of x[b*n .. b*n+n).
extern "C" __global__ void emu_test_reduce_shfl(const float* x, float* out, int n) {
    __shared__ float partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float v = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[blockIdx.x * n + i];
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x / 32) ? partial[lane] : 0.0f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) out[blockIdx.x] = v;
    }
}

// Shuffle/vote semantics: out[i*8 + k] for each thread i.
extern "C" __global__ void emu_test_warp_ops(int* out) {
    const int t = threadIdx.x, lane = t % 32;
    int* o = out + t * 8;
    o[0] = __shfl_sync(0xffffffffu, t * 10, 3);
    o[1] = __shfl_up_sync(0xffffffffu, t, 1);
    o[2] = __shfl_down_sync(0xffffffffu, t, 2, 16);
    o[3] = __shfl_xor_sync(0xffffffffu, t, 5);
    o[4] = (int)__ballot_sync(0xffffffffu, lane % 3 == 0);
    o[5] = __all_sync(0xffffffffu, lane < 32);
    o[6] = __any_sync(0xffffffffu, lane == 7);
    o[7] = __syncthreads_count(t % 2 == 0);
}

// y = x (n floats), grid-stride.
extern "C" __global__ void emu_test_copy(const float* __restrict__ x, float* __restrict__ y, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = x[i];
}

// hist[v[i] % bins] += 1 via shared-memory then global atomics.
extern "C" __global__ void emu_test_histogram(const unsigned* v, unsigned* hist, int n, int bins) {
    extern __shared__ unsigned local[];
    for (int b = threadIdx.x; b < bins; b += blockDim.x) local[b] = 0;
    __syncthreads();
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(&local[v[i] % bins], 1u);
    __syncthreads();
    for (int b = threadIdx.x; b < bins; b += blockDim.x) atomicAdd(&hist[b], local[b]);
}

// Dynamic shared memory with an aligned byte array: reverse each block's slice of x through smem.
extern "C" __global__ void emu_test_extern_smem(const float* x, float* y) {
    extern __shared__ __align__(16) unsigned char smem[];
    float* s = reinterpret_cast<float*>(smem);
    const int t = threadIdx.x, n = blockDim.x;
    s[t] = x[blockIdx.x * n + t];
    __syncthreads();
    y[blockIdx.x * n + t] = s[n - 1 - t];
}

// __half / __half2: out[i] = bits of conversions and arithmetic.
extern "C" __global__ void emu_test_half(const float* x, unsigned short* h, float* back, __half2* pair, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    __half v = __float2half(x[i]);
    h[i] = __half_as_ushort(v);
    back[i] = __half2float(v);
    __half2 p = __floats2half2_rn(x[i], 2.0f * x[i]);
    p = __hfma2(p, __half2half2(__float2half(1.0f)), __half2half2(__float2half(0.0f)));
    pair[i] = __hadd2(p, __halves2half2(__hmul(v, __float2half(0.0f)), __hadd(v, -v)));
    assert(__low2float(p) == __half2float(v));
}

// assert() failure reported as a trap.
extern "C" __global__ void emu_test_assert(const int* x) {
    assert(x[threadIdx.x] >= 0);
}

// Divergent __syncthreads: deadlock.
extern "C" __global__ void emu_test_divergent_barrier(float* x) {
    if (threadIdx.x < 16) __syncwarp(0xffffffffu);
    else __syncthreads();
    x[threadIdx.x] = 1.0f;
}
