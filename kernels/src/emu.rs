//! The CUDA-on-CPU emulator: every `cuda/*.cu` kernel, compiled as C++ by `build.rs` with
//! `emu/cuda_emu.h`, launched on the CPU with CUDA semantics.
//!
//! - **Threads** of a block are fibers that switch only at barriers (`__syncthreads*`, `__syncwarp`,
//!   shuffles, votes); blocks run one after another on the calling thread. Between barriers the
//!   scheduler resumes fibers in an [`Order`]; [`LaunchOptions::default`] runs the whole grid three
//!   times (forward, reverse, seeded shuffle — blocks are visited in the same kind of order) from the
//!   same initial buffer contents and compares the results bytewise: a difference is
//!   [`EmuError::OrderDependent`], i.e. a race or a missing barrier.
//! - **Global memory** is [`EmuBuffer`]s: zeroed host allocations, 4 KiB-aligned, with a 4 KiB guard
//!   before and after, registered in a global table while alive. Kernel pointer parameters are plain
//!   host pointers into them (`buf.as_ptr()`).
//! - **Bytes are counted, not estimated**: the kernel objects are compiled with `-fsanitize=thread`,
//!   so g++ calls `__tsan_read{1,2,4,8,16}` / `__tsan_write*` before every load and store; the
//!   emulator defines those hooks and counts each access whose address lies in a registered buffer
//!   (stack, shared memory, parameters are ignored). An access landing in a buffer's guard zone
//!   (within 4 KiB before its start or past its end) fails the launch with
//!   [`EmuError::OutOfBounds`]. WMMA loads/stores are counted once per warp.
//! - Launches are serialised by a global lock: safe to call from parallel tests.
//!
//! Kernel conventions: see `emu/cuda_emu.h`. `extern __shared__ T name[];` works as written (build.rs
//! rewrites it to the launch's dynamic shared memory, filled with 0xFF bytes before every block).
use std::alloc::Layout;
use std::ffi::{c_char, c_void, CStr};
use std::fmt;
use std::sync::Mutex;

/// A CUDA `dim3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dim3 {
    pub x: u32,
    pub y: u32,
    pub z: u32,
}

impl Dim3 {
    pub const fn new(x: u32, y: u32, z: u32) -> Self {
        Dim3 { x, y, z }
    }
    pub const fn x(x: u32) -> Self {
        Dim3 { x, y: 1, z: 1 }
    }
    pub const fn xy(x: u32, y: u32) -> Self {
        Dim3 { x, y, z: 1 }
    }
    /// x·y·z.
    pub fn count(&self) -> u64 {
        self.x as u64 * self.y as u64 * self.z as u64
    }
}
impl From<u32> for Dim3 {
    fn from(x: u32) -> Self {
        Dim3::x(x)
    }
}
impl From<(u32, u32)> for Dim3 {
    fn from((x, y): (u32, u32)) -> Self {
        Dim3::xy(x, y)
    }
}
impl From<(u32, u32, u32)> for Dim3 {
    fn from((x, y, z): (u32, u32, u32)) -> Self {
        Dim3::new(x, y, z)
    }
}

/// The order in which the fibers of a block are resumed between barriers (and blocks are run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Threads (and blocks) by increasing linear index.
    Forward,
    /// Threads (and blocks) by decreasing linear index.
    Reverse,
    /// A fresh seeded permutation of the runnable threads at every scheduling round (blocks permuted once).
    Shuffled(u64),
}

impl Order {
    fn code(self) -> (i32, u64) {
        match self {
            Order::Forward => (0, 0),
            Order::Reverse => (1, 0),
            Order::Shuffled(s) => (2, s),
        }
    }
}

/// How to run a launch.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchOptions {
    /// Each order runs the whole grid from the same initial buffer contents; results must agree bytewise.
    pub orders: Vec<Order>,
}

impl Default for LaunchOptions {
    /// Forward, Reverse and Shuffled(0x5eed): a missing barrier is often hidden by one order only.
    fn default() -> Self {
        LaunchOptions { orders: vec![Order::Forward, Order::Reverse, Order::Shuffled(0x5eed)] }
    }
}

impl LaunchOptions {
    /// One run in `order` (no order comparison). For kernels whose result legitimately depends on the
    /// order (e.g. float atomicAdd accumulation), or for speed.
    pub fn single(order: Order) -> Self {
        LaunchOptions { orders: vec![order] }
    }
}

/// What a launch did (of the first order run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaunchStats {
    /// Bytes loaded from registered buffers (global memory), every access counted.
    pub bytes_read: u64,
    /// Bytes stored to registered buffers.
    pub bytes_written: u64,
    /// Blocks run.
    pub blocks: u64,
    pub threads_per_block: u32,
}

/// Why a launch failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmuError {
    #[error("emulator: no kernel named `{name}`; known kernels: {}", known.join(", "))]
    UnknownKernel { name: String, known: Vec<String> },
    #[error("emulator: bad launch of `{kernel}`: {msg}")]
    BadLaunch { kernel: String, msg: String },
    #[error(
        "emulator: `{kernel}` out of bounds ({order:?} order): {msg}; buffer = {} (param index), \
         block ({}, {}, {}), thread ({}, {}, {})",
        buffer_index.map_or("?".to_string(), |i| i.to_string()),
        block[0], block[1], block[2], thread[0], thread[1], thread[2]
    )]
    OutOfBounds {
        kernel: String,
        /// Index of the kernel parameter pointing into the buffer, if one does.
        buffer_index: Option<usize>,
        /// Byte offset of the access from the buffer's start (negative: before it).
        byte_offset: i64,
        access_bytes: u32,
        is_store: bool,
        buffer_len: usize,
        block: [u32; 3],
        thread: [u32; 3],
        order: Order,
        msg: String,
    },
    #[error(
        "emulator: `{kernel}` is order dependent (race or missing barrier): buffer of param {buffer_index} \
         differs at byte {first_byte_offset} (float index {}): {order_a:?} wrote {byte_a:#04x}, {order_b:?} \
         wrote {byte_b:#04x}; {differing_bytes} bytes differ",
        first_byte_offset / 4
    )]
    OrderDependent {
        kernel: String,
        /// Index of the kernel parameter pointing into the buffer.
        buffer_index: usize,
        first_byte_offset: usize,
        order_a: Order,
        order_b: Order,
        byte_a: u8,
        byte_b: u8,
        differing_bytes: usize,
    },
    #[error("emulator: `{kernel}` deadlocked ({order:?} order) in block ({}, {}, {}): {msg}", block[0], block[1], block[2])]
    Deadlock { kernel: String, order: Order, block: [u32; 3], msg: String },
    #[error(
        "emulator: `{kernel}` trapped ({order:?} order) in block ({}, {}, {}) thread ({}, {}, {}): {msg}",
        block[0], block[1], block[2], thread[0], thread[1], thread[2]
    )]
    Trap { kernel: String, order: Order, block: [u32; 3], thread: [u32; 3], msg: String },
}

// ---------------------------------------------------------------------------------------------
// FFI
// ---------------------------------------------------------------------------------------------

#[repr(C)]
struct AuralEmuKernel {
    name: *const c_char,
    thunk: unsafe extern "C" fn(*mut *mut c_void),
    nparams: u32,
    sizes: *const u32,
    file: *const c_char,
}

#[repr(C)]
struct AuralEmuResult {
    bytes_read: u64,
    bytes_written: u64,
    blocks: u64,
    code: i32,
    msg: [c_char; 1024],
    addr: u64,
    buf_base: u64,
    buf_len: u64,
    offset: i64,
    size: u32,
    is_store: i32,
    block: [u32; 3],
    thread: [u32; 3],
}

extern "C" {
    static aural_emu_kernel_table: [*const AuralEmuKernel; 0];
    static aural_emu_kernel_count: u32;
    fn aural_emu_register(base: *mut c_void, len: usize);
    fn aural_emu_unregister(base: *mut c_void);
    fn aural_emu_lookup(addr: usize, base: *mut usize, len: *mut usize) -> i32;
    fn aural_emu_run(
        thunk: unsafe extern "C" fn(*mut *mut c_void),
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        shared_bytes: u32,
        params: *mut *mut c_void,
        order: i32,
        seed: u64,
        out: *mut AuralEmuResult,
    );
    fn aural_emu_bench_switch(iters: i32) -> f64;
}

static LAUNCH_LOCK: Mutex<()> = Mutex::new(());

/// One emulated kernel.
#[derive(Debug, Clone)]
pub struct KernelInfo {
    pub name: &'static str,
    /// Source file, relative to the kernels crate (`cuda/binary.cu`, `emu/selftest/…`).
    pub file: &'static str,
    /// `sizeof` of each parameter, from the kernel's C++ signature.
    pub param_sizes: Vec<usize>,
}

fn table() -> &'static [&'static AuralEmuKernel] {
    // SAFETY: build.rs generates `aural_emu_kernel_count` non-null entries followed by a null.
    unsafe {
        let p = std::ptr::addr_of!(aural_emu_kernel_table) as *const &'static AuralEmuKernel;
        std::slice::from_raw_parts(p, aural_emu_kernel_count as usize)
    }
}

fn cstr(p: *const c_char) -> &'static str {
    // SAFETY: string literals in the generated C++ tables.
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?")
}

fn info_of(k: &AuralEmuKernel) -> KernelInfo {
    let sizes = (0..k.nparams as usize).map(|i| unsafe { *k.sizes.add(i) } as usize).collect();
    KernelInfo { name: cstr(k.name), file: cstr(k.file), param_sizes: sizes }
}

/// Names of all emulated kernels (every exported `__global__` of `cuda/*.cu` and the emulator's selftests).
pub fn kernels() -> Vec<&'static str> {
    table().iter().map(|k| cstr(k.name)).collect()
}

/// Details of one emulated kernel.
pub fn kernel_info(name: &str) -> Option<KernelInfo> {
    table().iter().find(|k| cstr(k.name) == name).map(|k| info_of(k))
}

/// Mean cost of one fiber round trip (scheduler → fiber → scheduler at a `__syncthreads`), in ns.
pub fn bench_fiber_switch(iters: u32) -> f64 {
    let _g = LAUNCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    unsafe { aural_emu_bench_switch(iters as i32) }
}

// ---------------------------------------------------------------------------------------------
// Buffers
// ---------------------------------------------------------------------------------------------

const GUARD: usize = 4096;

/// Plain-old-data element types for the typed helpers of [`EmuBuffer`].
pub trait Scalar: Copy + Default + sealed::Sealed + 'static {}
mod sealed {
    pub trait Sealed {}
}
macro_rules! scalar {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {} impl Scalar for $t {})* };
}
scalar!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// Emulated global memory: a zeroed, 4 KiB-aligned host allocation with 4 KiB guards on both sides,
/// registered with the emulator while it lives.
pub struct EmuBuffer {
    alloc: *mut u8,
    layout: Layout,
    len: usize,
}

// SAFETY: a plain heap allocation; access follows Rust borrows (kernels run under the launch lock).
unsafe impl Send for EmuBuffer {}
unsafe impl Sync for EmuBuffer {}

impl EmuBuffer {
    /// A zeroed buffer of `bytes` bytes.
    pub fn new(bytes: usize) -> Self {
        let size = bytes.div_ceil(GUARD) * GUARD + 2 * GUARD;
        let layout = Layout::from_size_align(size, GUARD).expect("EmuBuffer layout");
        // SAFETY: non-zero size.
        let alloc = unsafe { std::alloc::alloc_zeroed(layout) };
        if alloc.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let b = EmuBuffer { alloc, layout, len: bytes };
        unsafe { aural_emu_register(b.as_ptr() as *mut c_void, bytes) };
        b
    }
    /// A buffer holding a copy of `v`.
    pub fn from_slice<T: Scalar>(v: &[T]) -> Self {
        let mut b = EmuBuffer::new(std::mem::size_of_val(v));
        b.copy_from(v);
        b
    }
    pub fn from_f32(v: &[f32]) -> Self {
        Self::from_slice(v)
    }
    /// A zeroed buffer of `n` elements of `T`.
    pub fn zeros<T: Scalar>(n: usize) -> Self {
        EmuBuffer::new(n * std::mem::size_of::<T>())
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Start of the data: the "device pointer" to pass to a kernel.
    pub fn as_ptr(&self) -> *mut u8 {
        // SAFETY: within the allocation.
        unsafe { self.alloc.add(GUARD) }
    }
    pub fn as_slice(&self) -> &[u8] {
        unsafe { std::slice::from_raw_parts(self.as_ptr(), self.len) }
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.as_ptr(), self.len) }
    }
    /// Copies `src` to the start of the buffer (panics if it does not fit).
    pub fn copy_from_bytes(&mut self, src: &[u8]) {
        self.as_mut_slice()[..src.len()].copy_from_slice(src);
    }
    /// Copies `src` to the start of the buffer (panics if it does not fit).
    pub fn copy_from<T: Scalar>(&mut self, src: &[T]) {
        let n = std::mem::size_of_val(src);
        assert!(n <= self.len, "EmuBuffer::copy_from: {n} bytes into a {}-byte buffer", self.len);
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr() as *const u8, self.as_ptr(), n) };
    }
    pub fn copy_from_f32(&mut self, src: &[f32]) {
        self.copy_from(src)
    }
    /// The whole buffer as elements of `T` (trailing bytes that do not fill an element are dropped).
    pub fn to_vec<T: Scalar>(&self) -> Vec<T> {
        let n = self.len / std::mem::size_of::<T>();
        let mut v = vec![T::default(); n];
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr(), v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>()) };
        v
    }
    pub fn to_vec_f32(&self) -> Vec<f32> {
        self.to_vec()
    }
}

impl Drop for EmuBuffer {
    fn drop(&mut self) {
        unsafe {
            aural_emu_unregister(self.as_ptr() as *mut c_void);
            std::alloc::dealloc(self.alloc, self.layout);
        }
    }
}

impl fmt::Debug for EmuBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmuBuffer({} bytes at {:p})", self.len, self.as_ptr())
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

/// Owns kernel argument values and yields CUDA-style `kernelParams` (`params[i]` points at argument i).
///
/// ```ignore
/// let mut args = Args::new().buf(&x).buf(&y).arg(n as i32);
/// unsafe { emu::launch("copy_f32", grid, block, 0, &args.params(), &LaunchOptions::default()) }
/// ```
#[derive(Default)]
pub struct Args<'a> {
    values: Vec<Box<[u128]>>,
    _bufs: std::marker::PhantomData<&'a EmuBuffer>,
}

impl<'a> Args<'a> {
    pub fn new() -> Self {
        Args { values: Vec::new(), _bufs: std::marker::PhantomData }
    }
    /// A by-value argument (scalar or `#[repr(C)]` struct mirroring the kernel's parameter type).
    pub fn arg<T: Copy + 'static>(mut self, v: T) -> Self {
        assert!(std::mem::align_of::<T>() <= 16, "Args::arg: alignment above 16");
        let words = std::mem::size_of::<T>().div_ceil(16).max(1);
        let mut slot = vec![0u128; words].into_boxed_slice();
        unsafe { std::ptr::write(slot.as_mut_ptr() as *mut T, v) };
        self.values.push(slot);
        self
    }
    /// A pointer to the start of `b`.
    pub fn buf(self, b: &'a EmuBuffer) -> Self {
        self.arg(b.as_ptr() as usize)
    }
    /// A pointer `byte_offset` bytes into `b`.
    pub fn buf_at(self, b: &'a EmuBuffer, byte_offset: usize) -> Self {
        self.arg(b.as_ptr() as usize + byte_offset)
    }
    /// The `kernelParams` array (valid while `self` lives and is not modified).
    pub fn params(&mut self) -> Vec<*mut c_void> {
        self.values.iter_mut().map(|v| v.as_mut_ptr() as *mut c_void).collect()
    }
}

/// [`launch`] with an [`Args`].
///
/// # Safety
/// As [`launch`]: the kernel's parameter types must match the arguments.
pub unsafe fn launch_args(
    kernel: &str,
    grid: Dim3,
    block: Dim3,
    shared_bytes: u32,
    args: &mut Args<'_>,
    opts: &LaunchOptions,
) -> Result<LaunchStats, EmuError> {
    let p = args.params();
    launch(kernel, grid, block, shared_bytes, &p, opts)
}

// ---------------------------------------------------------------------------------------------
// Launch
// ---------------------------------------------------------------------------------------------

/// Shared memory per block on an H100 (opt-in maximum).
pub const MAX_SHARED_BYTES: u32 = 227 * 1024;

/// Runs `kernel` on the CPU with CUDA semantics.
///
/// `params` are exactly `cuLaunchKernel`'s kernelParams: `params[i]` points at the value of argument
/// `i`; pointer arguments are host pointers into [`EmuBuffer`]s. With several orders, every registered
/// buffer that a parameter points into (parameters are scanned as 8-byte words, so pointers inside
/// struct parameters count too) is snapshotted, the grid is run from the same contents in each order,
/// and the final contents are compared bytewise. Returns the stats of the first order.
///
/// # Safety
/// The kernel runs arbitrary C++: the values behind `params` must have the kernel's parameter types,
/// and its pointers must point into live buffers (accesses up to 4 KiB outside a buffer are caught).
pub unsafe fn launch(kernel: &str, grid: Dim3, block: Dim3, shared_bytes: u32, params: &[*mut c_void], opts: &LaunchOptions) -> Result<LaunchStats, EmuError> {
    let _guard = LAUNCH_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let Some(k) = table().iter().find(|k| cstr(k.name) == kernel) else {
        let mut known: Vec<String> = kernels().into_iter().map(String::from).collect();
        known.sort();
        return Err(EmuError::UnknownKernel { name: kernel.to_string(), known });
    };
    let info = info_of(k);
    let bad = |msg: String| Err(EmuError::BadLaunch { kernel: kernel.to_string(), msg });
    if params.len() != info.param_sizes.len() {
        return bad(format!("{} params given, the kernel takes {}", params.len(), info.param_sizes.len()));
    }
    if let Some(i) = params.iter().position(|p| p.is_null()) {
        return bad(format!("params[{i}] is null"));
    }
    if block.x == 0 || block.y == 0 || block.z == 0 || grid.x == 0 || grid.y == 0 || grid.z == 0 {
        return bad(format!("zero dimension: grid {grid:?}, block {block:?}"));
    }
    if block.x > 1024 || block.y > 1024 || block.z > 64 || block.count() > 1024 {
        return bad(format!("block {block:?} exceeds CUDA limits (x,y <= 1024, z <= 64, x*y*z <= 1024)"));
    }
    if grid.x > i32::MAX as u32 || grid.y > 65535 || grid.z > 65535 {
        return bad(format!("grid {grid:?} exceeds CUDA limits (x < 2^31, y,z <= 65535)"));
    }
    if shared_bytes > MAX_SHARED_BYTES {
        return bad(format!("{shared_bytes} bytes of dynamic shared memory > {MAX_SHARED_BYTES} (H100 maximum)"));
    }
    if opts.orders.is_empty() {
        return bad("LaunchOptions::orders is empty".into());
    }

    // Buffers reachable from the parameters: (base, len, param index).
    let mut bufs: Vec<(usize, usize, usize)> = Vec::new();
    for (i, (&p, &size)) in params.iter().zip(&info.param_sizes).enumerate() {
        let mut off = 0;
        while off + 8 <= size {
            let v = std::ptr::read_unaligned((p as *const u8).add(off) as *const u64) as usize;
            let (mut base, mut len) = (0usize, 0usize);
            if v != 0 && aural_emu_lookup(v, &mut base, &mut len) != 0 && !bufs.iter().any(|b| b.0 == base) {
                bufs.push((base, len, i));
            }
            off += 8;
        }
    }
    let snapshot =
        |bufs: &[(usize, usize, usize)]| -> Vec<Vec<u8>> { bufs.iter().map(|&(b, l, _)| std::slice::from_raw_parts(b as *const u8, l).to_vec()).collect() };
    let multi = opts.orders.len() > 1;
    let initial = if multi { snapshot(&bufs) } else { Vec::new() };
    let mut first: Option<(LaunchStats, Vec<Vec<u8>>)> = None;
    let name_c = std::ffi::CString::new(kernel).unwrap();
    let mut pv: Vec<*mut c_void> = params.to_vec();
    for (oi, &order) in opts.orders.iter().enumerate() {
        if oi > 0 {
            for (&(b, l, _), s) in bufs.iter().zip(&initial) {
                std::ptr::copy_nonoverlapping(s.as_ptr(), b as *mut u8, l);
            }
        }
        let (code, seed) = order.code();
        let mut r: AuralEmuResult = std::mem::zeroed();
        let g = [grid.x, grid.y, grid.z];
        let bl = [block.x, block.y, block.z];
        aural_emu_run(k.thunk, name_c.as_ptr(), g.as_ptr(), bl.as_ptr(), shared_bytes, pv.as_mut_ptr(), code, seed, &mut r);
        if r.code != 0 {
            let msg = CStr::from_ptr(r.msg.as_ptr()).to_string_lossy().into_owned();
            let kname = kernel.to_string();
            return Err(match r.code {
                1 => EmuError::OutOfBounds {
                    kernel: kname,
                    buffer_index: bufs.iter().find(|b| b.0 as u64 == r.buf_base).map(|b| b.2),
                    byte_offset: r.offset,
                    access_bytes: r.size,
                    is_store: r.is_store != 0,
                    buffer_len: r.buf_len as usize,
                    block: r.block,
                    thread: r.thread,
                    order,
                    msg,
                },
                2 => EmuError::Deadlock { kernel: kname, order, block: r.block, msg },
                _ => EmuError::Trap { kernel: kname, order, block: r.block, thread: r.thread, msg },
            });
        }
        let stats = LaunchStats { bytes_read: r.bytes_read, bytes_written: r.bytes_written, blocks: r.blocks, threads_per_block: block.count() as u32 };
        match &first {
            None => first = Some((stats, if multi { snapshot(&bufs) } else { Vec::new() })),
            Some((_, want)) => {
                for (&(b, l, pi), w) in bufs.iter().zip(want) {
                    let got = std::slice::from_raw_parts(b as *const u8, l);
                    if got != &w[..] {
                        let first_off = got.iter().zip(w).position(|(a, b)| a != b).unwrap();
                        let differing = got.iter().zip(w).filter(|(a, b)| a != b).count();
                        return Err(EmuError::OrderDependent {
                            kernel: kernel.to_string(),
                            buffer_index: pi,
                            first_byte_offset: first_off,
                            order_a: opts.orders[0],
                            order_b: order,
                            byte_a: w[first_off],
                            byte_b: got[first_off],
                            differing_bytes: differing,
                        });
                    }
                }
            }
        }
    }
    Ok(first.unwrap().0)
}
