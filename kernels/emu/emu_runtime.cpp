// aural CUDA-on-CPU emulator runtime: fiber scheduler, buffer registry, access hooks, launch.
// Compiled WITHOUT instrumentation. Launches are serialised by the Rust side (one global lock); the
// registry has its own mutex because buffers are created and dropped by any thread at any time.
#include "cuda_emu.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <vector>

uint3 threadIdx;
uint3 blockIdx;
dim3 blockDim;
dim3 gridDim;
extern "C" {
void* aural_emu_dyn_smem = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Context switch
// ---------------------------------------------------------------------------------------------
#if defined(__x86_64__)
extern "C" void aural_emu_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl aural_emu_switch
.type aural_emu_switch,@function
aural_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size aural_emu_switch,.-aural_emu_switch
.section .note.GNU-stack,"",@progbits
.text
)");
#define AURAL_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

namespace {

const size_t kStack = 256 * 1024;
const uintptr_t kGuard = 4096;  // bytes before and after every registered buffer (allocated by Rust)

enum State { RUNNABLE = 0, AT_BAR = 1, AT_WARP = 2, DONE = 3 };

struct Fiber {
    void* sp;
#if !AURAL_ASM_SWITCH
    ucontext_t ctx;
#endif
    char* stack;
    int tid;
    uint3 idx;
    int state;
    unsigned mask;                 // warp op: lanes that must arrive
    unsigned long long* out_all;   // warp op: where to copy the 32 deposits
    unsigned* out_members;
    int pred;                      // block op predicate
    int result, result_n;          // block op result
};

struct Warp {
    unsigned long long dep[32];
};

struct Region {
    uintptr_t lo, base, len, span;  // span = len + 2*kGuard; lo = base - kGuard
};

struct ErrorInfo {
    int code;  // 0 none, 1 oob, 2 deadlock, 3 trap
    char msg[1024];
    uintptr_t addr, buf_base, buf_len;
    long long offset;
    unsigned size;
    int is_store;
    unsigned block[3], thread[3];
};

// Registry (any thread).
std::mutex g_reg_mu;
std::vector<Region> g_reg;

// Per-launch state (guarded by the Rust launch lock).
struct Launch {
    void (*thunk)(void**) = nullptr;
    void** params = nullptr;
    const char* name = "";
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    Fiber* cur = nullptr;
    void* sched_sp = nullptr;
#if !AURAL_ASM_SWITCH
    ucontext_t sched_ctx;
#endif
    int nthreads = 0;
    std::vector<Region> regions;  // snapshot of the registry, sorted by lo
    unsigned long long bytes_read = 0, bytes_written = 0;
    ErrorInfo err;
    bool active = false;
};
Launch g;
Region g_none = {0, 0, 0, 0};
const Region* g_last = &g_none;
std::vector<char*> g_stacks;

char* get_stack(size_t i) {
    while (g_stacks.size() <= i) {
        void* p = mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) { fprintf(stderr, "aural emu: mmap of a fiber stack failed\n"); abort(); }
        mprotect(p, 4096, PROT_NONE);  // guard page: a fiber stack overflow faults instead of corrupting
        g_stacks.push_back((char*)p + 4096);
    }
    return g_stacks[i];
}

void set_error(int code, const char* fmt_msg) {
    if (g.err.code) return;
    g.err.code = code;
    snprintf(g.err.msg, sizeof g.err.msg, "%s", fmt_msg);
    g.err.block[0] = blockIdx.x; g.err.block[1] = blockIdx.y; g.err.block[2] = blockIdx.z;
    g.err.thread[0] = threadIdx.x; g.err.thread[1] = threadIdx.y; g.err.thread[2] = threadIdx.z;
}

const Region* find_region(uintptr_t a) {
    const std::vector<Region>& r = g.regions;
    size_t lo = 0, hi = r.size();
    while (lo < hi) {  // last region with r.lo <= a
        size_t mid = (lo + hi) / 2;
        if (r[mid].lo <= a) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) return nullptr;
    const Region* c = &r[lo - 1];
    return (a - c->lo < c->span) ? c : nullptr;
}

inline void access(uintptr_t a, size_t n, int is_store) {
    if (!g.active) return;
    const Region* r = g_last;
    if (!(a - r->lo < r->span)) {
        r = find_region(a);
        if (!r) return;  // stack, shared memory, kernel parameters, globals: not global memory
        g_last = r;
    }
    if (a >= r->base && a + n <= r->base + r->len) {
        if (is_store) g.bytes_written += n; else g.bytes_read += n;
        return;
    }
    if (g.err.code) return;
    char m[512];
    long long off = (long long)(a - r->base);
    snprintf(m, sizeof m, "%s of %zu bytes at byte offset %lld of a %zu-byte buffer (%s)",
             is_store ? "store" : "load", n, off, (size_t)r->len,
             off < 0 ? "before its start" : "past its end");
    set_error(1, m);
    g.err.addr = a; g.err.buf_base = r->base; g.err.buf_len = r->len; g.err.offset = off;
    g.err.size = (unsigned)n; g.err.is_store = is_store;
}

// -- scheduling -------------------------------------------------------------------------------

inline void to_scheduler() {
    Fiber* f = g.cur;
#if AURAL_ASM_SWITCH
    aural_emu_switch(&f->sp, g.sched_sp);
#else
    swapcontext(&f->ctx, &g.sched_ctx);
#endif
}

void fiber_main() {
    g.thunk(g.params);
    g.cur->state = DONE;
    to_scheduler();
    abort();  // never resumed
}

#if !AURAL_ASM_SWITCH
void fiber_main_uc() { fiber_main(); }
#endif

void init_fiber(Fiber& f, int i) {
    f.stack = get_stack(i);
    f.state = RUNNABLE;
    f.out_all = nullptr; f.out_members = nullptr;
#if AURAL_ASM_SWITCH
    uintptr_t top = ((uintptr_t)f.stack + kStack) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;              // fake return address of fiber_main (keeps rsp % 16 == 8 at entry)
    *--sp = (void*)&fiber_main;   // `ret` of aural_emu_switch lands here
    for (int k = 0; k < 6; k++) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStack;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, fiber_main_uc, 0);
#endif
}

inline void resume(Fiber& f) {
    g.cur = &f;
    threadIdx = f.idx;
#if AURAL_ASM_SWITCH
    aural_emu_switch(&g.sched_sp, f.sp);
#else
    swapcontext(&g.sched_ctx, &f.ctx);
#endif
}

struct Rng {
    uint64_t s;
    uint64_t next() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
};

// Releases complete warp groups; returns true if any fiber became runnable.
bool release_warps() {
    bool any = false;
    const int n = g.nthreads;
    for (int w = 0; w * 32 < n; w++) {
        int base = w * 32, cnt = std::min(32, n - base);
        unsigned live = 0, waiting = 0;
        for (int l = 0; l < cnt; l++) {
            int s = g.fibers[base + l].state;
            if (s != DONE) live |= 1u << l;
            if (s == AT_WARP) waiting |= 1u << l;
        }
        if (!waiting) continue;
        unsigned done_groups = 0;
        for (int l = 0; l < cnt; l++) {
            if (!((waiting >> l) & 1u) || ((done_groups >> l) & 1u)) continue;
            Fiber& f = g.fibers[base + l];
            unsigned group = (f.mask | (1u << l)) & live;
            if ((group & waiting) != group) continue;  // someone in the mask has not arrived yet
            for (int m = 0; m < cnt; m++) {
                if (!((group >> m) & 1u)) continue;
                Fiber& p = g.fibers[base + m];
                if (p.out_all) memcpy(p.out_all, g.warps[w].dep, sizeof(g.warps[w].dep));
                if (p.out_members) *p.out_members = group;
                p.state = RUNNABLE;
            }
            done_groups |= group;
            waiting &= ~group;
            any = true;
        }
    }
    return any;
}

bool run_block(int order, Rng& rng) {
    const int n = g.nthreads;
    std::vector<int> list;
    list.reserve(n);
    for (;;) {
        list.clear();
        for (int i = 0; i < n; i++) if (g.fibers[i].state == RUNNABLE) list.push_back(i);
        if (list.empty()) {
            if (release_warps()) continue;
            int bar = 0, warp = 0, live = 0, count = 0;
            for (int i = 0; i < n; i++) {
                const Fiber& f = g.fibers[i];
                if (f.state == DONE) continue;
                live++;
                if (f.state == AT_BAR) { bar++; count += f.pred; }
                if (f.state == AT_WARP) warp++;
            }
            if (live == 0) return true;
            if (bar == live) {
                for (int i = 0; i < n; i++) {
                    Fiber& f = g.fibers[i];
                    if (f.state == AT_BAR) { f.state = RUNNABLE; f.result = count; f.result_n = live; }
                }
                continue;
            }
            char m[512];
            snprintf(m, sizeof m,
                     "deadlock: %d live threads, %d waiting at __syncthreads, %d at a warp-collective op whose "
                     "mask names lanes that never arrive (a barrier in divergent code?)", live, bar, warp);
            set_error(2, m);
            return false;
        }
        if (order == 1) std::reverse(list.begin(), list.end());
        else if (order == 2)
            for (size_t i = list.size(); i > 1; i--) std::swap(list[i - 1], list[rng.next() % i]);
        for (int i : list) resume(g.fibers[i]);
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Calls from kernels (through cuda_emu.h)
// ---------------------------------------------------------------------------------------------
extern "C" {

void aural_emu_syncthreads(void) {
    Fiber* f = g.cur;
    f->pred = 0;
    f->state = AT_BAR;
    to_scheduler();
}

int aural_emu_syncthreads_op(int pred, int* participants) {
    Fiber* f = g.cur;
    f->pred = pred != 0;
    f->state = AT_BAR;
    to_scheduler();
    *participants = f->result_n;
    return f->result;
}

void aural_emu_warp_op(unsigned mask, unsigned long long v, unsigned long long* all32, unsigned* members) {
    Fiber* f = g.cur;
    g.warps[f->tid / 32].dep[f->tid % 32] = v;
    f->mask = mask;
    f->out_all = all32;
    f->out_members = members;
    f->state = AT_WARP;
    to_scheduler();
    f->out_all = nullptr;
    f->out_members = nullptr;
}

unsigned aural_emu_activemask(void) {
    Fiber* f = g.cur;
    int base = f->tid & ~31;
    unsigned m = 0;
    for (int l = 0; l < 32 && base + l < g.nthreads; l++)
        if (g.fibers[base + l].state != DONE) m |= 1u << l;
    return m;
}

int aural_emu_lane(void) { return g.cur->tid & 31; }

void aural_emu_count(const void* addr, size_t n, int is_store) { access((uintptr_t)addr, n, is_store); }

void aural_emu_trap(const char* what, const char* file, int line) {
    char m[900];
    snprintf(m, sizeof m, "%s at %s:%d", what, file, line);
    set_error(3, m);
    g.cur->state = DONE;
    to_scheduler();
    abort();
}

unsigned long long aural_emu_clock(void) {
    static unsigned long long c = 0;
    return c += 100;
}

// -- ThreadSanitizer hooks: every load/store of an instrumented kernel TU lands here ----------
#define AURAL_HOOK(N)                                                                          \
    void __tsan_read##N(void* a) { access((uintptr_t)a, N, 0); }                              \
    void __tsan_write##N(void* a) { access((uintptr_t)a, N, 1); }                             \
    void __tsan_unaligned_read##N(void* a) { access((uintptr_t)a, N, 0); }                    \
    void __tsan_unaligned_write##N(void* a) { access((uintptr_t)a, N, 1); }                   \
    void __tsan_volatile_read##N(void* a) { access((uintptr_t)a, N, 0); }                     \
    void __tsan_volatile_write##N(void* a) { access((uintptr_t)a, N, 1); }                    \
    void __tsan_unaligned_volatile_read##N(void* a) { access((uintptr_t)a, N, 0); }           \
    void __tsan_unaligned_volatile_write##N(void* a) { access((uintptr_t)a, N, 1); }
AURAL_HOOK(1) AURAL_HOOK(2) AURAL_HOOK(4) AURAL_HOOK(8) AURAL_HOOK(16)
#undef AURAL_HOOK
void __tsan_read_range(void* a, size_t n) { access((uintptr_t)a, n, 0); }
void __tsan_write_range(void* a, size_t n) { access((uintptr_t)a, n, 1); }
// Atomic loads/stores (e.g. guard variables of function-local statics): plain, fibers never preempt.
#define AURAL_ATOMIC_HOOK(N, T)                                                                        \
    T __tsan_atomic##N##_load(const volatile T* a, int) { access((uintptr_t)a, sizeof(T), 0); return *a; } \
    void __tsan_atomic##N##_store(volatile T* a, T v, int) { access((uintptr_t)a, sizeof(T), 1); *a = v; }
AURAL_ATOMIC_HOOK(8, unsigned char) AURAL_ATOMIC_HOOK(16, unsigned short) AURAL_ATOMIC_HOOK(32, unsigned int)
AURAL_ATOMIC_HOOK(64, unsigned long long)
#undef AURAL_ATOMIC_HOOK
void __tsan_init(void) {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit(void) {}
void __tsan_vptr_update(void*, void*) {}
void __tsan_vptr_read(void*) {}

// ---------------------------------------------------------------------------------------------
// Calls from Rust (src/emu.rs)
// ---------------------------------------------------------------------------------------------
void aural_emu_register(void* base, size_t len) {
    std::lock_guard<std::mutex> l(g_reg_mu);
    uintptr_t b = (uintptr_t)base;
    g_reg.push_back(Region{b - kGuard, b, len, len + 2 * kGuard});
}

void aural_emu_unregister(void* base) {
    std::lock_guard<std::mutex> l(g_reg_mu);
    for (size_t i = 0; i < g_reg.size(); i++)
        if (g_reg[i].base == (uintptr_t)base) { g_reg[i] = g_reg.back(); g_reg.pop_back(); return; }
}

// The registered buffer whose data [base, base+len) contains addr.
int aural_emu_lookup(uintptr_t addr, uintptr_t* base, size_t* len) {
    std::lock_guard<std::mutex> l(g_reg_mu);
    for (const Region& r : g_reg)
        if (addr >= r.base && addr < r.base + r.len) { *base = r.base; *len = r.len; return 1; }
    return 0;
}

size_t aural_emu_guard_bytes(void) { return kGuard; }

struct AuralEmuResult {
    unsigned long long bytes_read, bytes_written, blocks;
    int code;  // 0 ok, 1 out of bounds, 2 deadlock, 3 trap/assert
    char msg[1024];
    unsigned long long addr, buf_base, buf_len;
    long long offset;
    unsigned size;
    int is_store;
    unsigned block[3], thread[3];
};

// order: 0 forward, 1 reverse, 2 shuffled(seed). Blocks run in the same order kind.
void aural_emu_run(void (*thunk)(void**), const char* name, const unsigned grid[3], const unsigned block[3],
                   unsigned shared_bytes, void** params, int order, unsigned long long seed, AuralEmuResult* out) {
    memset(out, 0, sizeof *out);
    g.thunk = thunk;
    g.params = params;
    g.name = name;
    g.err = ErrorInfo();
    g.bytes_read = g.bytes_written = 0;
    // The registry lock is held for the whole launch: a buffer that another thread drops meanwhile
    // (unregister, then free) would otherwise leave a stale region in the snapshot, and the heap memory
    // this launch allocates next (fibers, warps, dynamic shared memory) could land inside it, so that
    // shared-memory traffic was counted as global bytes. Dropping a buffer now waits for the launch.
    std::unique_lock<std::mutex> reg_lock(g_reg_mu);
    g.regions = g_reg;
    std::sort(g.regions.begin(), g.regions.end(), [](const Region& a, const Region& b) { return a.lo < b.lo; });
    g_last = &g_none;
    const int nt = (int)(block[0] * block[1] * block[2]);
    g.nthreads = nt;
    g.fibers.assign(nt, Fiber());
    g.warps.assign((nt + 31) / 32, Warp());
    gridDim = dim3(grid[0], grid[1], grid[2]);
    blockDim = dim3(block[0], block[1], block[2]);
    for (int i = 0; i < nt; i++) {
        Fiber& f = g.fibers[i];
        f.tid = i;
        f.idx = uint3{(unsigned)(i % block[0]), (unsigned)((i / block[0]) % block[1]), (unsigned)(i / (block[0] * block[1]))};
    }
    std::vector<unsigned char> smem((size_t)shared_bytes + 512);
    unsigned char* dyn = (unsigned char*)(((uintptr_t)smem.data() + 255) & ~(uintptr_t)255);
    aural_emu_dyn_smem = dyn;

    const unsigned long long nblocks = (unsigned long long)grid[0] * grid[1] * grid[2];
    std::vector<unsigned long long> border;
    if (order != 0) {
        border.resize(nblocks);
        for (unsigned long long i = 0; i < nblocks; i++) border[i] = i;
        if (order == 1) std::reverse(border.begin(), border.end());
        else {
            Rng r{seed * 0x9E3779B97F4A7C15ull + 1};
            for (size_t i = border.size(); i > 1; i--) std::swap(border[i - 1], border[r.next() % i]);
        }
    }
    Rng rng{seed * 0xD1B54A32D192ED03ull + 7};
    g.active = true;
    unsigned long long ran = 0;
    for (unsigned long long k = 0; k < nblocks; k++) {
        unsigned long long b = order == 0 ? k : border[k];
        blockIdx = uint3{(unsigned)(b % grid[0]), (unsigned)((b / grid[0]) % grid[1]), (unsigned)(b / ((unsigned long long)grid[0] * grid[1]))};
        memset(dyn, 0xff, shared_bytes);  // uninitialised shared memory reads as NaN / -1
        for (int i = 0; i < nt; i++) init_fiber(g.fibers[i], i);
        bool ok = run_block(order, rng);
        ran++;
        if (!ok || g.err.code) break;
    }
    g.active = false;
    aural_emu_dyn_smem = nullptr;
    out->bytes_read = g.bytes_read;
    out->bytes_written = g.bytes_written;
    out->blocks = ran;
    out->code = g.err.code;
    memcpy(out->msg, g.err.msg, sizeof out->msg);
    out->addr = g.err.addr; out->buf_base = g.err.buf_base; out->buf_len = g.err.buf_len;
    out->offset = g.err.offset; out->size = g.err.size; out->is_store = g.err.is_store;
    memcpy(out->block, g.err.block, sizeof out->block);
    memcpy(out->thread, g.err.thread, sizeof out->thread);
}

// Microbenchmark of one fiber round trip (scheduler -> fiber -> scheduler), in nanoseconds.
static int g_bench_iters;
static void bench_thunk(void**) { for (int i = 0; i < g_bench_iters; i++) aural_emu_syncthreads(); }
double aural_emu_bench_switch(int iters) {
    g_bench_iters = iters;
    AuralEmuResult r;
    unsigned grid[3] = {1, 1, 1}, block[3] = {32, 1, 1};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    aural_emu_run(bench_thunk, "bench", grid, block, 0, nullptr, 0, 0, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    return ns / ((double)iters * 32.0);
}

}  // extern "C"
