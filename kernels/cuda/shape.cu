// shape.cu — data movement: concat, slice (narrow, strided), permute, repeat_interleave, index_select.
//
// Math: pure copies, out[i] = in[src(i)]; no arithmetic on values, so every kernel is bitwise equal to
// the CPU reference. Element types: f32 (`float`) and f16 moved as its 16-bit pattern
// (`unsigned short`, no cuda_fp16.h needed). One template per kernel, instantiated by SHAPE_KERNELS.
// Layouts: row-major. The host (runtime/src/ops/shape/) reduces every op to one of these views:
//   rows ops (concat, slice, repeat_interleave, index_select): in (O, Rin, I) → out (O, Rout, I), where
//     O = product of the dims before the axis, R = the axis, I = product of the dims after it;
//   permute: the input with size-1 dims dropped and adjacent dims that stay adjacent merged
//     (rank ≤ 6); for v2 that is a batched transpose (B, R, C) → (B, C, R); for v3 the last dim stays.
// Build: compiled at run time by NVRTC (runtime/src/gpu/nvrtc.rs); under the emulator as C++.
//
// Versions (llm.c style, one line each):
//   concat v1 — one launch per input; one thread per element of that input (grid-stride), writing
//        its rows into the output at the input's row offset. Reads and writes coalesced along I.
//   slice v1 — one thread per output element; source row = start + r·step (narrow: step 1).
//   repeat_interleave v1 — one thread per output element; source row = r / times.
//   index_select v1 — one thread per output element; source row = idx[r] (u32, validated on the host).
//   permute v1 — general: one thread per output element, the linear index decomposed over the output
//        dims into an input offset (rank ≤ 6). Writes coalesced, reads strided unless the last dim
//        stays; ~20 integer ops per element.
//   permute v2 — batched 2-D transpose (B, R, C) → (B, C, R), the last dim moves: a 32×32 tile is read
//        coalesced into shared memory and written coalesced from it; the tile's row is padded so its
//        stride is an odd number of 4-byte words (33 floats / 34 halves) — no bank conflicts when a
//        warp reads a tile column. Block 32×8, each thread moves 4 elements per tile.
//   permute v3 — the last dim stays (attention head split/merge (T,H,D)↔(H,T,D), (F′,T′,D)↔(T′,F′,D)):
//        rows of I contiguous elements are copied; the index decomposition is done once per row, not
//        per element. A transpose of I-vectors needs no shared memory: both sides are contiguous runs.
//        (A tiled v2 for I > 1 was considered and dropped: with I ≥ 32 the runs already coalesce.)
//
// Bytes per launch (minimum): n·sizeof(T) read + n·sizeof(T) written (index_select: + 4·Rout index
// bytes, cached); n = elements written by the launch.

struct ShapeParams {
    int n;          // elements written by this launch
    int rank;       // permute: rank of the reduced shape
    int outer;      // O
    int rows;       // rows iterated by this launch (concat: the input's rows; others: Rout)
    int inner;      // I
    int src_rows;   // Rin: rows of the source along the axis
    int dst_rows;   // Rout of the destination (concat: the output's total rows)
    int start;      // concat: destination row offset; slice: first source row
    int step;       // slice: source row step (≥ 1)
    int times;      // repeat_interleave: repeats per row
    int pad0;
    int pad1;
    int dims[6];    // permute v1/v3: output dims (reduced); v2: (B, R, C) in dims[0..3]
    int strides[6]; // permute v1/v3: input element stride of each output dim
};
static_assert(sizeof(ShapeParams) == 96, "ShapeParams must match runtime/src/ops/shape/cuda.rs");

// concat v1. Launch: 1-D grid × 256 threads, grid-stride over n = O·rows·I (one input).
// src: one input (O, rows, I); dst: the output (O, dst_rows, I), rows [start, start+rows) written.
template <typename T>
__device__ void concat_v1(const T* __restrict__ src, T* __restrict__ dst, const ShapeParams p) {
    const int ri = p.rows * p.inner;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        int o = i / ri, rem = i - o * ri;
        dst[(long long)o * p.dst_rows * p.inner + (long long)p.start * p.inner + rem] = src[i];
    }
}

// slice v1. Launch: 1-D grid × 256 threads, grid-stride over n = O·rows·I.
// src: (O, src_rows, I); dst: (O, rows, I); dst row r = src row start + r·step.
template <typename T>
__device__ void slice_v1(const T* __restrict__ src, T* __restrict__ dst, const ShapeParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        int c = i % p.inner, orow = i / p.inner;
        int o = orow / p.rows, r = orow - o * p.rows;
        dst[i] = src[((long long)o * p.src_rows + p.start + (long long)r * p.step) * p.inner + c];
    }
}

// repeat_interleave v1. Launch: 1-D grid × 256 threads, grid-stride over n = O·rows·I, rows = Rin·times.
// src: (O, src_rows, I); dst: (O, rows, I); dst row r = src row r / times.
template <typename T>
__device__ void repeat_interleave_v1(const T* __restrict__ src, T* __restrict__ dst, const ShapeParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        int c = i % p.inner, orow = i / p.inner;
        int o = orow / p.rows, r = orow - o * p.rows;
        dst[i] = src[((long long)o * p.src_rows + r / p.times) * p.inner + c];
    }
}

// index_select v1. Launch: 1-D grid × 256 threads, grid-stride over n = O·rows·I.
// src: (O, src_rows, I); idx: [rows] u32, each < src_rows (checked on the host); dst: (O, rows, I).
template <typename T>
__device__ void index_select_v1(const T* __restrict__ src, const unsigned int* __restrict__ idx,
                                T* __restrict__ dst, const ShapeParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        int c = i % p.inner, orow = i / p.inner;
        int o = orow / p.rows, r = orow - o * p.rows;
        dst[i] = src[((long long)o * p.src_rows + idx[r]) * p.inner + c];
    }
}

// permute v1. Launch: 1-D grid × 256 threads, grid-stride over n. One thread owns one output element.
// src: the input (any shape, numel n); dst: (dims[0..rank]); strides[d] = input stride of output dim d.
template <typename T>
__device__ void permute_v1(const T* __restrict__ src, T* __restrict__ dst, const ShapeParams p) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += gridDim.x * blockDim.x) {
        int rem = i, off = 0;
        for (int d = p.rank - 1; d >= 0; --d) {
            int k = rem % p.dims[d];
            rem /= p.dims[d];
            off += k * p.strides[d];
        }
        dst[i] = src[off];
    }
}

#define TILE 32
#define TILE_ROWS 8

// permute v2 (batched transpose). Launch: grid (ceil(C/32), ceil(R/32), min(B, 65535)), block (32, 8),
// static shared memory 32 × (32 + 4/sizeof(T)) elements. One block owns one 32×32 tile of one batch
// (and loops over batches with stride gridDim.z); each thread moves 4 elements.
// src: (B, R, C) = (dims[0], dims[1], dims[2]); dst: (B, C, R).
template <typename T>
__device__ void permute_v2(const T* __restrict__ src, T* __restrict__ dst, const ShapeParams p) {
    __shared__ T tile[TILE][TILE + 4 / sizeof(T)];
    const int B = p.dims[0], R = p.dims[1], C = p.dims[2];
    const int c0 = blockIdx.x * TILE, r0 = blockIdx.y * TILE;
    const int tx = threadIdx.x, ty = threadIdx.y;
    for (int b = blockIdx.z; b < B; b += gridDim.z) {
        const T* s = src + (long long)b * R * C;
        T* d = dst + (long long)b * R * C;
        for (int k = ty; k < TILE; k += TILE_ROWS) {
            int r = r0 + k, c = c0 + tx;
            if (r < R && c < C) tile[k][tx] = s[(long long)r * C + c];
        }
        __syncthreads();
        for (int k = ty; k < TILE; k += TILE_ROWS) {
            int c = c0 + k, r = r0 + tx;
            if (r < R && c < C) d[(long long)c * R + r] = tile[tx][k];
        }
        __syncthreads();  // the tile is refilled for the next batch
    }
}

// permute v3 (rows). Launch: grid min(ceil(nrows/blockDim.y), 65535·8) × block (bx, 256/bx), bx =
// min(256, 32·ceil(I/32)); threadIdx.y picks a row (grid-stride over nrows = n / I), threadIdx.x
// strides along it. src: input; dst: (dims[0..rank]) with dims[rank-1] = I, strides[rank-1] = 1.
template <typename T>
__device__ void permute_v3(const T* __restrict__ src, T* __restrict__ dst, const ShapeParams p) {
    const int I = p.inner, nrows = p.n / I;
    for (int row = blockIdx.x * blockDim.y + threadIdx.y; row < nrows; row += gridDim.x * blockDim.y) {
        int rem = row, off = 0;
        for (int d = p.rank - 2; d >= 0; --d) {
            int k = rem % p.dims[d];
            rem /= p.dims[d];
            off += k * p.strides[d];
        }
        const T* s = src + off;
        T* o = dst + (long long)row * I;
        for (int c = threadIdx.x; c < I; c += blockDim.x) o[c] = s[c];
    }
}

#define SHAPE_KERNELS(dt, T)                                                                             \
    extern "C" __global__ void concat_fwd_##dt##_v1(const T* src, T* dst, const ShapeParams p) {         \
        concat_v1<T>(src, dst, p);                                                                       \
    }                                                                                                    \
    extern "C" __global__ void slice_fwd_##dt##_v1(const T* src, T* dst, const ShapeParams p) {          \
        slice_v1<T>(src, dst, p);                                                                        \
    }                                                                                                    \
    extern "C" __global__ void repeat_interleave_fwd_##dt##_v1(const T* src, T* dst, const ShapeParams p) { \
        repeat_interleave_v1<T>(src, dst, p);                                                            \
    }                                                                                                    \
    extern "C" __global__ void index_select_fwd_##dt##_v1(const T* src, const unsigned int* idx, T* dst, \
                                                          const ShapeParams p) {                         \
        index_select_v1<T>(src, idx, dst, p);                                                            \
    }                                                                                                    \
    extern "C" __global__ void permute_fwd_##dt##_v1(const T* src, T* dst, const ShapeParams p) {        \
        permute_v1<T>(src, dst, p);                                                                      \
    }                                                                                                    \
    extern "C" __global__ void __launch_bounds__(256) permute_fwd_##dt##_v2(const T* src, T* dst,       \
                                                                            const ShapeParams p) {       \
        permute_v2<T>(src, dst, p);                                                                      \
    }                                                                                                    \
    extern "C" __global__ void permute_fwd_##dt##_v3(const T* src, T* dst, const ShapeParams p) {        \
        permute_v3<T>(src, dst, p);                                                                      \
    }

SHAPE_KERNELS(f32, float)
SHAPE_KERNELS(f16, unsigned short)
