// aural CUDA-on-CPU emulator: CUDA C semantics for a .cu file compiled as C++17 by g++.
//
// build.rs compiles every kernels/cuda/*.cu (and kernels/emu/selftest/*.cu) in a generated wrapper
// translation unit that includes this header first, then the (lightly rewritten, see build.rs) .cu
// source. kernels/emu/include/ shadows <cuda_fp16.h>, <mma.h>, <cuda_runtime.h>, <assert.h>.
//
// Model:
// - blocks run one at a time on one OS thread; the threads of a block are fibers that switch only
//   at barriers (__syncthreads*, __syncwarp, shuffles, votes); between barriers the scheduler resumes
//   fibers in the launch's order (forward, reverse or seeded shuffle).
// - `__shared__` is `static`: one array per block, because blocks never overlap.
//   `extern __shared__ T name[];` is rewritten by build.rs into a reference to the launch's dynamic
//   shared-memory buffer (real CUDA code, no convention needed).
// - threadIdx/blockIdx/blockDim/gridDim are globals that the scheduler sets before resuming a fiber
//   (launches are serialised by a global lock).
// - every global-memory access is counted: the kernel TUs are compiled with -fsanitize=thread, whose
//   __tsan_read*/__tsan_write* hooks are defined by emu_runtime.cpp (which is not instrumented).
// - warp-collective ops are exchange points: every participating lane deposits, then reads.
// - WMMA: every lane holds the whole tile; loads/stores count global bytes once per warp (lane 0).
//
// What kernels must know (everything else is plain CUDA C):
// - `AURAL_EMU` is defined, `__CUDA_ARCH__` is NOT: inline PTX (`asm(...)`), cp.async, ldmatrix need
//   an `#ifdef AURAL_EMU` (or `#ifndef __CUDA_ARCH__`) C++ path.
// - Unsupported: cooperative groups, grid-wide sync, `__nv_bfloat16` (<cuda_bf16.h>), texture/surface
//   objects, `__device__`/`__constant__` globals written by the host (they are plain C++ globals,
//   not counted as global memory), `extern __shared__` written inside a macro body (build.rs rewrites
//   the declaration textually).
// - Exported (`extern "C" __global__`, non-template) kernel names must be unique across all .cu files.
// - Static `__shared__` arrays are not cleared between blocks or launches; dynamic shared memory is
//   filled with 0xFF bytes before every block (uninitialised reads show up as NaN / -1).
// - memcpy/memset inside a kernel are not counted (g++ leaves them as library calls).
// - Results that legitimately depend on the order (float atomicAdd accumulation into one address)
//   fail the default three-order comparison: launch those with LaunchOptions::single(..).
// - A failing assert()/__trap() ends that CUDA thread and fails the launch with file:line.
#pragma once
#ifndef AURAL_EMU
#define AURAL_EMU 1
#endif

#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <cmath>

// ---------------------------------------------------------------------------------------------
// Qualifiers
// ---------------------------------------------------------------------------------------------
#ifdef AURAL_EMU_SCAN
#define __global__ __aural_global__  // build.rs finds kernels after macro expansion
#else
#define __global__
#endif
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__
#define __managed__
#define __grid_constant__
#define __align__(n) __attribute__((aligned(n)))
#define __cudart_builtin__
#ifndef __CUDA_ALIGN__
#define __CUDA_ALIGN__(n) __attribute__((aligned(n)))
#endif

// Not instrumented (for header helpers that must not be counted per lane).
#define AURAL_EMU_NOCOUNT __attribute__((no_sanitize("thread"))) __attribute__((noinline))

// ---------------------------------------------------------------------------------------------
// Vector types and built-in variables
// ---------------------------------------------------------------------------------------------
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

#define AURAL_VEC2(T, N, A) struct __attribute__((aligned(A))) N##2 { T x, y; }; \
    static inline N##2 make_##N##2(T x, T y) { N##2 r; r.x = x; r.y = y; return r; }
#define AURAL_VEC3(T, N) struct N##3_emu_dummy_; \
    static inline N##3 make_##N##3(T x, T y, T z) { N##3 r; r.x = x; r.y = y; r.z = z; return r; }
#define AURAL_VEC4(T, N, A) struct __attribute__((aligned(A))) N##4 { T x, y, z, w; }; \
    static inline N##4 make_##N##4(T x, T y, T z, T w) { N##4 r; r.x = x; r.y = y; r.z = z; r.w = w; return r; }
AURAL_VEC2(float, float, 8) AURAL_VEC4(float, float, 16)
AURAL_VEC2(int, int, 8) AURAL_VEC4(int, int, 16)
AURAL_VEC2(unsigned int, uint, 8) AURAL_VEC4(unsigned int, uint, 16)
AURAL_VEC2(double, double, 16) AURAL_VEC4(double, double, 16)
AURAL_VEC2(short, short, 4) AURAL_VEC4(short, short, 8)
AURAL_VEC2(unsigned short, ushort, 4) AURAL_VEC4(unsigned short, ushort, 8)
AURAL_VEC2(char, char, 2) AURAL_VEC4(char, char, 4)
AURAL_VEC2(unsigned char, uchar, 2) AURAL_VEC4(unsigned char, uchar, 4)
AURAL_VEC2(long long, longlong, 16) AURAL_VEC2(unsigned long long, ulonglong, 16)
struct float3 { float x, y, z; };
struct int3 { int x, y, z; };
static inline float3 make_float3(float x, float y, float z) { float3 r; r.x = x; r.y = y; r.z = z; return r; }
static inline int3 make_int3(int x, int y, int z) { int3 r; r.x = x; r.y = y; r.z = z; return r; }
static inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { uint3 r; r.x = x; r.y = y; r.z = z; return r; }
static inline dim3 make_dim3(unsigned x, unsigned y, unsigned z) { return dim3(x, y, z); }
#undef AURAL_VEC2
#undef AURAL_VEC3
#undef AURAL_VEC4

extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
static const int warpSize = 32;

// ---------------------------------------------------------------------------------------------
// Runtime entry points (emu_runtime.cpp)
// ---------------------------------------------------------------------------------------------
extern "C" {
extern void* aural_emu_dyn_smem;
void aural_emu_syncthreads(void);
int aural_emu_syncthreads_op(int pred, int* participants);
// Warp exchange: deposit v, wait for the lanes of mask, then all32[l] = value of lane l,
// *members = the lanes that took part.
void aural_emu_warp_op(unsigned mask, unsigned long long v, unsigned long long* all32, unsigned* members);
unsigned aural_emu_activemask(void);
int aural_emu_lane(void);
void aural_emu_count(const void* addr, size_t n, int is_store);
void aural_emu_trap(const char* what, const char* file, int line) __attribute__((noreturn));
unsigned long long aural_emu_clock(void);
}

static inline void __syncthreads() { aural_emu_syncthreads(); }
static inline int __syncthreads_count(int p) { int n; return aural_emu_syncthreads_op(p != 0, &n); }
static inline int __syncthreads_and(int p) { int n; return aural_emu_syncthreads_op(p != 0, &n) == n; }
static inline int __syncthreads_or(int p) { int n; return aural_emu_syncthreads_op(p != 0, &n) != 0; }
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    unsigned long long all[32]; unsigned m;
    aural_emu_warp_op(mask, 0, all, &m);
}
static inline unsigned __activemask() { return aural_emu_activemask(); }
static inline void __threadfence() {}
static inline void __threadfence_block() {}
static inline void __threadfence_system() {}
static inline long long clock64() { return (long long)aural_emu_clock(); }
static inline long long __clock64() { return (long long)aural_emu_clock(); }
static inline void __nanosleep(unsigned) {}
#define __trap() aural_emu_trap("__trap()", __FILE__, __LINE__)
#define __brkpt() aural_emu_trap("__brkpt()", __FILE__, __LINE__)
#ifndef __builtin_assume
#endif

// assert(): a failing assert ends the CUDA thread and fails the launch with file:line.
#undef assert
#define assert(e) ((e) ? (void)0 : aural_emu_trap("assertion failed: " #e, __FILE__, __LINE__))

// ---------------------------------------------------------------------------------------------
// Warp shuffles and votes
// ---------------------------------------------------------------------------------------------
namespace aural_emu_detail {
template <class T> static inline T shfl_from(unsigned mask, T var, int (*pick)(int, int, int), int arg, int width) {
    static_assert(sizeof(T) <= 8, "shuffle of a type larger than 8 bytes");
    unsigned long long v = 0; memcpy(&v, &var, sizeof(T));
    unsigned long long all[32]; unsigned m;
    aural_emu_warp_op(mask, v, all, &m);
    int lane = aural_emu_lane();
    int src = pick(lane, arg, width);
    T out; memcpy(&out, &all[src & 31], sizeof(T));
    return out;
}
static inline int pick_idx(int lane, int src, int width) { int base = lane & ~(width - 1); return base + (src & (width - 1)); }
static inline int pick_xor(int lane, int m, int width) { int base = lane & ~(width - 1); int s = lane ^ m; return (s < base + width) ? s : lane; }
static inline int pick_down(int lane, int d, int width) { int base = lane & ~(width - 1); int s = lane + d; return (s < base + width) ? s : lane; }
static inline int pick_up(int lane, int d, int width) { int base = lane & ~(width - 1); int s = lane - d; return (s >= base) ? s : lane; }
}  // namespace aural_emu_detail

template <class T> static inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32) {
    return aural_emu_detail::shfl_from(mask, var, aural_emu_detail::pick_idx, srcLane, width);
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32) {
    return aural_emu_detail::shfl_from(mask, var, aural_emu_detail::pick_xor, laneMask, width);
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return aural_emu_detail::shfl_from(mask, var, aural_emu_detail::pick_down, (int)delta, width);
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return aural_emu_detail::shfl_from(mask, var, aural_emu_detail::pick_up, (int)delta, width);
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    unsigned long long all[32]; unsigned m;
    aural_emu_warp_op(mask, pred != 0, all, &m);
    unsigned b = 0;
    for (int l = 0; l < 32; l++) if ((m >> l) & 1u) if (all[l]) b |= 1u << l;
    return b;
}
static inline int __all_sync(unsigned mask, int pred) {
    unsigned long long all[32]; unsigned m;
    aural_emu_warp_op(mask, pred != 0, all, &m);
    for (int l = 0; l < 32; l++) if (((m >> l) & 1u) && !all[l]) return 0;
    return 1;
}
static inline int __any_sync(unsigned mask, int pred) {
    unsigned long long all[32]; unsigned m;
    aural_emu_warp_op(mask, pred != 0, all, &m);
    for (int l = 0; l < 32; l++) if (((m >> l) & 1u) && all[l]) return 1;
    return 0;
}
#define AURAL_WARP_REDUCE(NAME, T, INIT, OP)                                     \
    static inline T NAME(unsigned mask, T value) {                              \
        unsigned long long all[32]; unsigned m;                                 \
        aural_emu_warp_op(mask, (unsigned long long)value, all, &m);            \
        T acc = INIT;                                                           \
        for (int l = 0; l < 32; l++) if ((m >> l) & 1u) { T v = (T)all[l]; acc = OP; } \
        return acc;                                                             \
    }
AURAL_WARP_REDUCE(__reduce_add_sync, unsigned, 0u, acc + v)
AURAL_WARP_REDUCE(__reduce_add_sync, int, 0, (int)((unsigned)acc + (unsigned)v))
AURAL_WARP_REDUCE(__reduce_min_sync, unsigned, 0xffffffffu, (v < acc ? v : acc))
AURAL_WARP_REDUCE(__reduce_min_sync, int, INT_MAX, (v < acc ? v : acc))
AURAL_WARP_REDUCE(__reduce_max_sync, unsigned, 0u, (v > acc ? v : acc))
AURAL_WARP_REDUCE(__reduce_max_sync, int, INT_MIN, (v > acc ? v : acc))
AURAL_WARP_REDUCE(__reduce_and_sync, unsigned, 0xffffffffu, acc & v)
AURAL_WARP_REDUCE(__reduce_or_sync, unsigned, 0u, acc | v)
AURAL_WARP_REDUCE(__reduce_xor_sync, unsigned, 0u, acc ^ v)
#undef AURAL_WARP_REDUCE

// ---------------------------------------------------------------------------------------------
// Integer / bit intrinsics and float reinterpretation
// ---------------------------------------------------------------------------------------------
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
static inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1); x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4); x = ((x >> 8) & 0x00ff00ffu) | ((x & 0x00ff00ffu) << 8);
    return (x >> 16) | (x << 16);
}
static inline int __mul24(int a, int b) { return a * b; }
static inline unsigned __umul24(unsigned a, unsigned b) { return a * b; }
static inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
static inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) { return (unsigned long long)(((unsigned __int128)a * b) >> 64); }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
static inline double __longlong_as_double(long long i) { double f; memcpy(&f, &i, 8); return f; }
static inline long long __double_as_longlong(double f) { long long i; memcpy(&i, &f, 8); return i; }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __float2int_rd(float x) { return (int)floorf(x); }
static inline int __float2int_ru(float x) { return (int)ceilf(x); }
static inline unsigned __float2uint_rn(float x) { return (unsigned)nearbyintf(x); }
static inline unsigned __float2uint_rz(float x) { return (unsigned)x; }
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned x) { return (float)x; }
static inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }
static inline int __double2int_rn(double x) { return (int)nearbyint(x); }
static inline float __double2float_rn(double x) { return (float)x; }

// ---------------------------------------------------------------------------------------------
// Math
// ---------------------------------------------------------------------------------------------
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
// glibc declares these names itself (as aliases of the libm functions): macros, not redefinitions.
#define __expf(x) expf(x)
#define __exp10f(x) powf(10.0f, (x))
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __sincosf(x, s, c) sincosf((x), (s), (c))
#define __powf(x, y) powf((x), (y))
static inline float __fdividef(float a, float b) { return a / b; }
static inline float fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fmaf_rz(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rz(float a, float b) { return a * b; }
static inline float __fadd_rz(float a, float b) { return a + b; }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : (x != x ? 0.0f : x)); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
static inline float normcdff(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }
static inline float sinpif(float x) { return sinf(x * 3.14159265358979323846f); }
static inline float cospif(float x) { return cosf(x * 3.14159265358979323846f); }
using std::isnan;
using std::isinf;
using std::isfinite;
using std::signbit;

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline unsigned min(int a, unsigned b) { return min((unsigned)a, b); }
static inline unsigned min(unsigned a, int b) { return min(a, (unsigned)b); }
static inline unsigned max(int a, unsigned b) { return max((unsigned)a, b); }
static inline unsigned max(unsigned a, int b) { return max(a, (unsigned)b); }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
static inline long min(long a, long b) { return a < b ? a : b; }
static inline long max(long a, long b) { return a > b ? a : b; }
static inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
static inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline float min(float a, double b) { return fminf(a, (float)b); }
static inline float max(float a, double b) { return fmaxf(a, (float)b); }
static inline int umin(unsigned a, unsigned b) { return a < b ? a : b; }
static inline int umax(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long llmin(long long a, long long b) { return a < b ? a : b; }
static inline long long llmax(long long a, long long b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------------------------
// Loads with cache hints (plain loads here; still counted)
// ---------------------------------------------------------------------------------------------
template <class T> static inline T __ldg(const T* p) { return *p; }
template <class T> static inline T __ldcg(const T* p) { return *p; }
template <class T> static inline T __ldca(const T* p) { return *p; }
template <class T> static inline T __ldcs(const T* p) { return *p; }
template <class T> static inline T __ldlu(const T* p) { return *p; }
template <class T> static inline T __ldcv(const T* p) { return *p; }
template <class T> static inline void __stcg(T* p, T v) { *p = v; }
template <class T> static inline void __stcs(T* p, T v) { *p = v; }
template <class T> static inline void __stwb(T* p, T v) { *p = v; }
template <class T> static inline void __stwt(T* p, T v) { *p = v; }

// ---------------------------------------------------------------------------------------------
// __half / __half2 (IEEE binary16, round-to-nearest-even conversions)
// ---------------------------------------------------------------------------------------------
namespace aural_emu_detail {
static inline unsigned short double_to_half_bits(double x) {
    uint64_t b; memcpy(&b, &x, 8);
    unsigned short sign = (unsigned short)((b >> 48) & 0x8000u);
    int exp = (int)((b >> 52) & 0x7ff);
    uint64_t mant = b & ((1ull << 52) - 1);
    if (exp == 0x7ff) return (unsigned short)(sign | 0x7c00u | (mant ? (0x200u | (unsigned)(mant >> 42)) : 0u));
    if (exp == 0) return sign;  // double subnormal: far below half's range
    int e = exp - 1023;
    uint64_t full = mant | (1ull << 52);
    if (e > 15) return (unsigned short)(sign | 0x7c00u);
    if (e >= -14) {
        uint64_t m = full >> 42, rem = full & ((1ull << 42) - 1), halfway = 1ull << 41;
        unsigned r = (unsigned)(((unsigned)(e + 15) << 10) | (unsigned)(m & 0x3ffu));
        if (rem > halfway || (rem == halfway && (m & 1u))) r += 1;  // carries into the exponent (to inf)
        return (unsigned short)(sign | r);
    }
    int shift = 28 - e;  // value / 2^-24 = full * 2^(e - 28)
    if (shift > 63) return sign;
    uint64_t m = full >> shift, rem = full & ((1ull << shift) - 1), halfway = 1ull << (shift - 1);
    unsigned r = (unsigned)m;
    if (rem > halfway || (rem == halfway && (m & 1u))) r += 1;
    return (unsigned short)(sign | r);
}
static inline float half_bits_to_float(unsigned short h) {
    unsigned sign = (unsigned)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (mant << 13);
    else if (exp != 0) bits = sign | ((exp + 112u) << 23) | (mant << 13);
    else if (mant == 0) bits = sign;
    else {  // subnormal half -> normal float
        int e = -1;
        do { mant <<= 1; e++; } while (!(mant & 0x400u));
        bits = sign | ((unsigned)(112 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
    float f; memcpy(&f, &bits, 4); return f;
}
}  // namespace aural_emu_detail

struct __half_raw { unsigned short x; };
struct __half2_raw { unsigned short x, y; };
struct __attribute__((aligned(2))) __half {
    unsigned short __x;
    __half() = default;
    constexpr __half(const __half_raw& r) : __x(r.x) {}
    __half(float f) : __x(aural_emu_detail::double_to_half_bits((double)f)) {}
    __half(double f) : __x(aural_emu_detail::double_to_half_bits(f)) {}
    __half(int i) : __x(aural_emu_detail::double_to_half_bits((double)i)) {}
    __half(unsigned i) : __x(aural_emu_detail::double_to_half_bits((double)i)) {}
    __half(long long i) : __x(aural_emu_detail::double_to_half_bits((double)i)) {}
    __half(short i) : __x(aural_emu_detail::double_to_half_bits((double)i)) {}
    __half(unsigned short i) : __x(aural_emu_detail::double_to_half_bits((double)i)) {}
    operator float() const { return aural_emu_detail::half_bits_to_float(__x); }
    operator __half_raw() const { __half_raw r; r.x = __x; return r; }
    __half& operator=(float f) { __x = aural_emu_detail::double_to_half_bits((double)f); return *this; }
    __half& operator=(double f) { __x = aural_emu_detail::double_to_half_bits(f); return *this; }
    __half& operator=(const __half_raw& r) { __x = r.x; return *this; }
};
struct __attribute__((aligned(4))) __half2 {
    __half x, y;
    __half2() = default;
    constexpr __half2(const __half& a, const __half& b) : x(a), y(b) {}
    __half2(const __half2_raw& r) { x.__x = r.x; y.__x = r.y; }
    operator __half2_raw() const { __half2_raw r; r.x = x.__x; r.y = y.__x; return r; }
};
typedef __half half;
typedef __half2 half2;

namespace aural_emu_detail {
static inline __half mk(double v) { __half h; h.__x = double_to_half_bits(v); return h; }
static inline double d(__half h) { return (double)half_bits_to_float(h.__x); }
}
static inline __half __float2half(float f) { return aural_emu_detail::mk(f); }
static inline __half __float2half_rn(float f) { return aural_emu_detail::mk(f); }
static inline __half __double2half(double f) { return aural_emu_detail::mk(f); }
static inline float __half2float(__half h) { return aural_emu_detail::half_bits_to_float(h.__x); }
static inline __half __int2half_rn(int i) { return aural_emu_detail::mk((double)i); }
static inline __half __uint2half_rn(unsigned i) { return aural_emu_detail::mk((double)i); }
static inline int __half2int_rn(__half h) { return (int)nearbyintf(__half2float(h)); }
static inline int __half2int_rz(__half h) { return (int)__half2float(h); }
static inline unsigned short __half_as_ushort(__half h) { return h.__x; }
static inline short __half_as_short(__half h) { return (short)h.__x; }
static inline __half __ushort_as_half(unsigned short u) { __half h; h.__x = u; return h; }
static inline __half __short_as_half(short u) { __half h; h.__x = (unsigned short)u; return h; }
static inline __half2 __floats2half2_rn(float a, float b) { return __half2(__float2half(a), __float2half(b)); }
static inline __half2 __float2half2_rn(float a) { return __half2(__float2half(a), __float2half(a)); }
static inline __half2 __float22half2_rn(float2 f) { return __floats2half2_rn(f.x, f.y); }
static inline float2 __half22float2(__half2 h) { return make_float2(__half2float(h.x), __half2float(h.y)); }
static inline float __low2float(__half2 h) { return __half2float(h.x); }
static inline float __high2float(__half2 h) { return __half2float(h.y); }
static inline __half __low2half(__half2 h) { return h.x; }
static inline __half __high2half(__half2 h) { return h.y; }
static inline __half2 __half2half2(__half h) { return __half2(h, h); }
static inline __half2 __halves2half2(__half a, __half b) { return __half2(a, b); }
static inline __half2 __lows2half2(__half2 a, __half2 b) { return __half2(a.x, b.x); }
static inline __half2 __highs2half2(__half2 a, __half2 b) { return __half2(a.y, b.y); }
static inline __half2 __low2half2(__half2 a) { return __half2(a.x, a.x); }
static inline __half2 __high2half2(__half2 a) { return __half2(a.y, a.y); }
static inline __half2 __lowhigh2highlow(__half2 a) { return __half2(a.y, a.x); }

#define AURAL_H1(NAME, EXPR) static inline __half NAME(__half a) { double x = aural_emu_detail::d(a); return aural_emu_detail::mk(EXPR); }
#define AURAL_H2OP(NAME, EXPR) static inline __half NAME(__half a, __half b) { double x = aural_emu_detail::d(a), y = aural_emu_detail::d(b); return aural_emu_detail::mk(EXPR); }
AURAL_H2OP(__hadd, x + y) AURAL_H2OP(__hsub, x - y) AURAL_H2OP(__hmul, x * y) AURAL_H2OP(__hdiv, x / y)
AURAL_H2OP(__hadd_rn, x + y) AURAL_H2OP(__hsub_rn, x - y) AURAL_H2OP(__hmul_rn, x * y)
AURAL_H2OP(__hmax, (x != x) ? y : ((y != y) ? x : (x > y ? x : y)))
AURAL_H2OP(__hmin, (x != x) ? y : ((y != y) ? x : (x < y ? x : y)))
AURAL_H2OP(__hadd_sat, fmin(fmax(x + y, 0.0), 1.0)) AURAL_H2OP(__hmul_sat, fmin(fmax(x * y, 0.0), 1.0))
AURAL_H1(__hneg, -x) AURAL_H1(__habs, fabs(x)) AURAL_H1(hsqrt, sqrt(x)) AURAL_H1(hrsqrt, 1.0 / sqrt(x))
AURAL_H1(hexp, exp(x)) AURAL_H1(hlog, log(x)) AURAL_H1(hrcp, 1.0 / x) AURAL_H1(hfloor, floor(x)) AURAL_H1(hceil, ceil(x))
AURAL_H1(htrunc, trunc(x)) AURAL_H1(hrint, nearbyint(x)) AURAL_H1(htanh, tanh(x)) AURAL_H1(hsin, sin(x)) AURAL_H1(hcos, cos(x))
#undef AURAL_H1
#undef AURAL_H2OP
static inline __half __hfma(__half a, __half b, __half c) { return aural_emu_detail::mk(fma(aural_emu_detail::d(a), aural_emu_detail::d(b), aural_emu_detail::d(c))); }
static inline __half __hfma_relu(__half a, __half b, __half c) { __half r = __hfma(a, b, c); return __half2float(r) < 0.0f ? __float2half(0.0f) : r; }
static inline bool __heq(__half a, __half b) { return __half2float(a) == __half2float(b); }
static inline bool __hne(__half a, __half b) { return __half2float(a) != __half2float(b); }
static inline bool __hlt(__half a, __half b) { return __half2float(a) < __half2float(b); }
static inline bool __hle(__half a, __half b) { return __half2float(a) <= __half2float(b); }
static inline bool __hgt(__half a, __half b) { return __half2float(a) > __half2float(b); }
static inline bool __hge(__half a, __half b) { return __half2float(a) >= __half2float(b); }
static inline bool __hisnan(__half a) { return (a.__x & 0x7fffu) > 0x7c00u; }
static inline int __hisinf(__half a) { return (a.__x & 0x7fffu) == 0x7c00u ? ((a.__x & 0x8000u) ? -1 : 1) : 0; }

#define AURAL_H2(NAME, F) static inline __half2 NAME(__half2 a, __half2 b) { return __half2(F(a.x, b.x), F(a.y, b.y)); }
AURAL_H2(__hadd2, __hadd) AURAL_H2(__hsub2, __hsub) AURAL_H2(__hmul2, __hmul) AURAL_H2(__h2div, __hdiv)
AURAL_H2(__hmax2, __hmax) AURAL_H2(__hmin2, __hmin) AURAL_H2(__hadd2_sat, __hadd_sat) AURAL_H2(__hmul2_sat, __hmul_sat)
AURAL_H2(__hadd2_rn, __hadd) AURAL_H2(__hmul2_rn, __hmul)
#undef AURAL_H2
static inline __half2 __hfma2(__half2 a, __half2 b, __half2 c) { return __half2(__hfma(a.x, b.x, c.x), __hfma(a.y, b.y, c.y)); }
static inline __half2 __hneg2(__half2 a) { return __half2(__hneg(a.x), __hneg(a.y)); }
static inline __half2 __habs2(__half2 a) { return __half2(__habs(a.x), __habs(a.y)); }
static inline __half2 h2exp(__half2 a) { return __half2(hexp(a.x), hexp(a.y)); }
static inline __half2 h2sqrt(__half2 a) { return __half2(hsqrt(a.x), hsqrt(a.y)); }
static inline __half2 h2rcp(__half2 a) { return __half2(hrcp(a.x), hrcp(a.y)); }

// Operators (as in cuda_fp16.hpp without __CUDA_NO_HALF_OPERATORS__).
static inline __half operator+(const __half& a, const __half& b) { return __hadd(a, b); }
static inline __half operator-(const __half& a, const __half& b) { return __hsub(a, b); }
static inline __half operator*(const __half& a, const __half& b) { return __hmul(a, b); }
static inline __half operator/(const __half& a, const __half& b) { return __hdiv(a, b); }
static inline __half& operator+=(__half& a, const __half& b) { a = __hadd(a, b); return a; }
static inline __half& operator-=(__half& a, const __half& b) { a = __hsub(a, b); return a; }
static inline __half& operator*=(__half& a, const __half& b) { a = __hmul(a, b); return a; }
static inline __half& operator/=(__half& a, const __half& b) { a = __hdiv(a, b); return a; }
static inline __half operator-(const __half& a) { return __hneg(a); }
static inline __half operator+(const __half& a) { return a; }
static inline bool operator==(const __half& a, const __half& b) { return __heq(a, b); }
static inline bool operator!=(const __half& a, const __half& b) { return __hne(a, b); }
static inline bool operator<(const __half& a, const __half& b) { return __hlt(a, b); }
static inline bool operator<=(const __half& a, const __half& b) { return __hle(a, b); }
static inline bool operator>(const __half& a, const __half& b) { return __hgt(a, b); }
static inline bool operator>=(const __half& a, const __half& b) { return __hge(a, b); }
static inline __half2 operator+(const __half2& a, const __half2& b) { return __hadd2(a, b); }
static inline __half2 operator-(const __half2& a, const __half2& b) { return __hsub2(a, b); }
static inline __half2 operator*(const __half2& a, const __half2& b) { return __hmul2(a, b); }
static inline __half2 operator/(const __half2& a, const __half2& b) { return __h2div(a, b); }
static inline __half2& operator+=(__half2& a, const __half2& b) { a = __hadd2(a, b); return a; }
static inline __half2& operator-=(__half2& a, const __half2& b) { a = __hsub2(a, b); return a; }
static inline __half2& operator*=(__half2& a, const __half2& b) { a = __hmul2(a, b); return a; }
static inline __half2 operator-(const __half2& a) { return __hneg2(a); }
static inline __half __shfl_sync(unsigned mask, __half v, int s, int w = 32) { return aural_emu_detail::shfl_from(mask, v, aural_emu_detail::pick_idx, s, w); }

// ---------------------------------------------------------------------------------------------
// Atomics (fibers never preempt each other, so plain read-modify-write is atomic)
// ---------------------------------------------------------------------------------------------
#define AURAL_ATOMIC(NAME, T, EXPR) static inline T NAME(T* a, T v) { T old = *a; *a = (EXPR); return old; }
#define AURAL_ATOMIC_ALL(NAME, EXPR)                                            \
    AURAL_ATOMIC(NAME, int, EXPR) AURAL_ATOMIC(NAME, unsigned int, EXPR)        \
    AURAL_ATOMIC(NAME, unsigned long long, EXPR) AURAL_ATOMIC(NAME, long long, EXPR)
AURAL_ATOMIC_ALL(atomicAdd, (decltype(v))(old + v))
AURAL_ATOMIC(atomicAdd, float, old + v) AURAL_ATOMIC(atomicAdd, double, old + v)
AURAL_ATOMIC(atomicAdd, __half, __hadd(old, v)) AURAL_ATOMIC(atomicAdd, __half2, __hadd2(old, v))
AURAL_ATOMIC_ALL(atomicSub, (decltype(v))(old - v))
AURAL_ATOMIC(atomicSub, float, old - v)
AURAL_ATOMIC_ALL(atomicMax, (old > v ? old : v)) AURAL_ATOMIC_ALL(atomicMin, (old < v ? old : v))
AURAL_ATOMIC_ALL(atomicAnd, old & v) AURAL_ATOMIC_ALL(atomicOr, old | v) AURAL_ATOMIC_ALL(atomicXor, old ^ v)
AURAL_ATOMIC_ALL(atomicExch, v) AURAL_ATOMIC(atomicExch, float, v)
AURAL_ATOMIC(atomicMax, float, fmaxf(old, v)) AURAL_ATOMIC(atomicMin, float, fminf(old, v))
#undef AURAL_ATOMIC_ALL
#undef AURAL_ATOMIC
static inline unsigned atomicInc(unsigned* a, unsigned v) { unsigned old = *a; *a = (old >= v) ? 0u : old + 1u; return old; }
static inline unsigned atomicDec(unsigned* a, unsigned v) { unsigned old = *a; *a = (old == 0u || old > v) ? v : old - 1u; return old; }
#define AURAL_CAS(T) static inline T atomicCAS(T* a, T cmp, T v) { T old = *a; if (old == cmp) *a = v; return old; }
AURAL_CAS(int) AURAL_CAS(unsigned int) AURAL_CAS(unsigned long long) AURAL_CAS(unsigned short)
#undef AURAL_CAS
#define AURAL_ATOMIC_SCOPES(NAME)                                                                      \
    template <class T, class U> static inline T NAME##_block(T* a, U v) { return NAME(a, (T)v); }     \
    template <class T, class U> static inline T NAME##_system(T* a, U v) { return NAME(a, (T)v); }
AURAL_ATOMIC_SCOPES(atomicAdd) AURAL_ATOMIC_SCOPES(atomicMax) AURAL_ATOMIC_SCOPES(atomicMin)
AURAL_ATOMIC_SCOPES(atomicExch) AURAL_ATOMIC_SCOPES(atomicSub)
#undef AURAL_ATOMIC_SCOPES

// ---------------------------------------------------------------------------------------------
// WMMA (nvcuda::wmma). Every lane holds the whole tile; all 32 lanes call each op.
// ---------------------------------------------------------------------------------------------
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
namespace precision { struct tf32 {}; }

template <class Use, int M, int N, int K> struct dims;
template <int M, int N, int K> struct dims<matrix_a, M, N, K> { enum { R = M, C = K }; };
template <int M, int N, int K> struct dims<matrix_b, M, N, K> { enum { R = K, C = N }; };
template <int M, int N, int K> struct dims<accumulator, M, N, K> { enum { R = M, C = N }; };
template <class T> struct storage { typedef T type; };
template <> struct storage<precision::tf32> { typedef float type; };

// Elements are stored as the logical R x C matrix in row-major order, whatever the layout.
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    typedef typename storage<T>::type element_type;
    enum { rows = dims<Use, M, N, K>::R, cols = dims<Use, M, N, K>::C, num_elements = rows * cols };
    element_type x[num_elements];
};

template <class Use, int M, int N, int K, class T, class L, class V>
static inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, const V& v) {
    for (int i = 0; i < f.num_elements; i++) f.x[i] = (typename fragment<Use, M, N, K, T, L>::element_type)v;
}

namespace detail {
static inline bool is_row(row_major) { return true; }
static inline bool is_row(col_major) { return false; }
template <class Frag, class T>
AURAL_EMU_NOCOUNT void load(Frag& f, const T* p, unsigned ldm, bool row) {
    const int R = Frag::rows, C = Frag::cols;
    const bool count = aural_emu_lane() == 0;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            const T* a = row ? p + (size_t)r * ldm + c : p + (size_t)c * ldm + r;
            if (count) aural_emu_count(a, sizeof(T), 0);
            f.x[r * C + c] = (typename Frag::element_type)*a;
        }
}
template <class Frag, class T>
AURAL_EMU_NOCOUNT void store(T* p, const Frag& f, unsigned ldm, bool row) {
    const int R = Frag::rows, C = Frag::cols;
    const bool count = aural_emu_lane() == 0;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            T* a = row ? p + (size_t)r * ldm + c : p + (size_t)c * ldm + r;
            if (count) aural_emu_count(a, sizeof(T), 1);
            *a = (T)f.x[r * C + c];
        }
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class L, class P>
static inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const P* p, unsigned ldm) {
    detail::load(f, p, ldm, detail::is_row(L()));
}
template <int M, int N, int K, class T, class P>
static inline void load_matrix_sync(fragment<accumulator, M, N, K, T, void>& f, const P* p, unsigned ldm, layout_t l) {
    detail::load(f, p, ldm, l == mem_row_major);
}
template <int M, int N, int K, class T, class P>
static inline void store_matrix_sync(P* p, const fragment<accumulator, M, N, K, T, void>& f, unsigned ldm, layout_t l) {
    detail::store(p, f, ldm, l == mem_row_major);
}
template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC, class TD>
static inline void mma_sync(fragment<accumulator, M, N, K, TD, void>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                            const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, TC, void>& c,
                            bool satf = false) {
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = (float)c.x[i * N + j];
            for (int k = 0; k < K; k++) acc += (float)a.x[i * K + k] * (float)b.x[k * N + j];
            out[i * N + j] = acc;
        }
    for (int i = 0; i < M * N; i++) {
        float v = out[i];
        if (satf) v = v != v ? 0.0f : (v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v));
        d.x[i] = (TD)v;
    }
}
static inline float __float_to_tf32(float f) { return f; }
}  // namespace wmma
}  // namespace nvcuda
