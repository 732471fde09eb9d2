//! The CUDA backend: one context and one stream per GPU, a caching allocator, kernels compiled by
//! NVRTC on first use, and launches. The same launch path drives the CUDA-on-CPU emulator
//! (`Device::Emu`), so every launcher is verified on machines without a GPU.
//!
//! Launch parameters are passed exactly as `cuLaunchKernel` takes them (an array of pointers to the
//! argument values); pointer arguments are raw device addresses. That is also the emulator's calling
//! convention, so a launcher builds one [`Launch`] and does not know which of the two runs it.

pub mod emu;
pub mod libs;
pub mod nvrtc;
pub mod nvrtc_lib;
pub mod ptxas;

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr};

use crate::{Device, Error, Result};

/// What `probe` learns about a GPU.
#[derive(Debug, Clone)]
pub struct GpuInfo {
    pub ordinal: usize,
    pub name: String,
    /// Compute capability (major, minor).
    pub cc: (i32, i32),
    pub total_mem: usize,
}

/// Checks, without panicking, that GPU `ordinal` is usable: driver present, device exists, NVRTC
/// present. The error is one sentence.
pub fn probe(ordinal: usize) -> std::result::Result<GpuInfo, String> {
    if !libs::driver_present() {
        return Err("no CUDA driver (libcuda.so) was found on this machine".into());
    }
    let count = CudaContext::device_count().map_err(|e| format!("the CUDA driver reports no usable GPU ({e:?})"))?;
    if count <= 0 {
        return Err("the CUDA driver is installed but reports no GPU".into());
    }
    if ordinal >= count as usize {
        return Err(format!("CUDA device {ordinal} does not exist (this machine has {count})"));
    }
    libs::nvrtc()?;
    let be = backend(Device::Cuda(ordinal)).map_err(|e| e.to_string())?;
    be.info().ok_or_else(|| "internal: CUDA backend without device info".to_string())
}

/// The backend of a GPU device (created on first use, then shared).
pub fn backend(device: Device) -> Result<Arc<GpuBackend>> {
    static REG: OnceLock<Mutex<HashMap<Device, Arc<GpuBackend>>>> = OnceLock::new();
    let reg = REG.get_or_init(Default::default);
    let mut map = reg.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = map.get(&device) {
        return Ok(b.clone());
    }
    let be = match device {
        Device::Cpu => return Err(Error::Msg("internal: the CPU has no GPU backend".into())),
        Device::Emu => {
            emu::check()?;
            Arc::new(GpuBackend { device, kind: Kind::Emu(emu::EmuGpu::default()) })
        }
        Device::Cuda(n) => Arc::new(GpuBackend { device, kind: Kind::Real(RealGpu::new(n)?) }),
    };
    map.insert(device, be.clone());
    Ok(be)
}

/// A GPU (real or emulated) with its stream, kernel modules and memory pool.
pub struct GpuBackend {
    device: Device,
    kind: Kind,
}

enum Kind {
    Real(RealGpu),
    Emu(emu::EmuGpu),
}

struct RealGpu {
    info: GpuInfo,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Loaded modules by family.
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
    functions: Mutex<HashMap<String, CudaFunction>>,
    /// Caching allocator: free blocks by rounded size.
    pool: Mutex<HashMap<usize, Vec<CudaSlice<u8>>>>,
}

impl RealGpu {
    fn new(n: usize) -> Result<RealGpu> {
        if !libs::driver_present() {
            return Err(Error::CudaUnavailable("no CUDA driver (libcuda.so) was found on this machine".into()));
        }
        libs::nvrtc().map_err(Error::CudaUnavailable)?;
        let ctx = CudaContext::new(n).map_err(|e| Error::CudaUnavailable(format!("CUDA device {n} cannot be opened ({e:?})")))?;
        let major = ctx.attribute(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR).map_err(cuda_err("attribute"))?;
        let minor = ctx.attribute(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR).map_err(cuda_err("attribute"))?;
        let info =
            GpuInfo { ordinal: n, name: ctx.name().unwrap_or_else(|_| "unknown GPU".into()), cc: (major, minor), total_mem: ctx.total_mem().unwrap_or(0) };
        let stream = ctx.default_stream();
        Ok(RealGpu { info, ctx, stream, modules: Default::default(), functions: Default::default(), pool: Default::default() })
    }

    fn arch(&self) -> u32 {
        (self.info.cc.0 * 10 + self.info.cc.1) as u32
    }

    fn function(&self, family: &'static str, kernel: &str) -> Result<CudaFunction> {
        if let Some(f) = self.functions.lock().unwrap().get(kernel) {
            return Ok(f.clone());
        }
        let module = {
            let mut mods = self.modules.lock().unwrap();
            match mods.get(family) {
                Some(m) => m.clone(),
                None => {
                    let src = aural_kernels::source(family).ok_or_else(|| Error::Msg(format!("no kernel family '{family}' in kernels/cuda")))?;
                    let (ptx, _) = nvrtc::ptx_cached(family, src.src, self.arch())?;
                    let m = self.ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx)).map_err(cuda_err(&format!("loading module {family}")))?;
                    mods.insert(family, m.clone());
                    m
                }
            }
        };
        let f = module.load_function(kernel).map_err(cuda_err(&format!("finding kernel {kernel} in {family}.cu")))?;
        self.functions.lock().unwrap().insert(kernel.to_string(), f.clone());
        Ok(f)
    }
}

fn cuda_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::Cuda { what: what.to_string(), msg: format!("{e:?}") }
}

/// Allocation granularity of the caching allocator.
const ALIGN: usize = 256;

impl GpuBackend {
    pub fn device(&self) -> Device {
        self.device
    }

    /// Device facts (real GPUs only).
    pub fn info(&self) -> Option<GpuInfo> {
        match &self.kind {
            Kind::Real(r) => Some(r.info.clone()),
            Kind::Emu(_) => None,
        }
    }

    /// A buffer of at least `bytes` bytes, contents unspecified (reused blocks are not cleared).
    pub fn alloc(self: &Arc<Self>, bytes: usize) -> Result<GpuBuffer> {
        let size = bytes.max(1).div_ceil(ALIGN) * ALIGN;
        let mem = match &self.kind {
            Kind::Real(r) => {
                let reused = r.pool.lock().unwrap().get_mut(&size).and_then(|v| v.pop());
                let slice = match reused {
                    Some(s) => s,
                    // SAFETY: uninitialised device memory; every op writes its whole output.
                    None => unsafe { r.stream.alloc::<u8>(size) }.map_err(cuda_err("allocation"))?,
                };
                let ptr = {
                    let (ptr, _sync) = slice.device_ptr(&r.stream);
                    ptr
                };
                Mem::Real { slice: Some(slice), ptr }
            }
            Kind::Emu(_) => Mem::Emu(emu::alloc(size)?),
        };
        Ok(GpuBuffer { backend: self.clone(), bytes, size, mem })
    }

    /// A zero-filled buffer.
    pub fn alloc_zeros(self: &Arc<Self>, bytes: usize) -> Result<GpuBuffer> {
        let mut b = self.alloc(bytes)?;
        match (&self.kind, &mut b.mem) {
            (Kind::Real(r), Mem::Real { slice: Some(s), .. }) => r.stream.memset_zeros(s).map_err(cuda_err("memset"))?,
            (_, Mem::Emu(e)) => emu::zero(e),
            _ => {}
        }
        Ok(b)
    }

    /// Copies host bytes into a new buffer.
    pub fn upload(self: &Arc<Self>, src: &[u8]) -> Result<GpuBuffer> {
        let mut b = self.alloc(src.len())?;
        match (&self.kind, &mut b.mem) {
            (Kind::Real(r), Mem::Real { slice: Some(s), .. }) => {
                let mut view = s.slice_mut(0..src.len());
                r.stream.memcpy_htod(src, &mut view).map_err(cuda_err("host-to-device copy"))?
            }
            (_, Mem::Emu(e)) => emu::write(e, src),
            _ => unreachable!(),
        }
        Ok(b)
    }

    /// Waits for all queued work.
    pub fn synchronize(&self) -> Result<()> {
        match &self.kind {
            Kind::Real(r) => r.stream.synchronize().map_err(cuda_err("synchronize")),
            Kind::Emu(_) => Ok(()),
        }
    }

    /// Compiles (or loads from the cache) the module of `family` now, so timing excludes NVRTC.
    pub fn prepare(&self, family: &'static str, kernel: &str) -> Result<()> {
        match &self.kind {
            Kind::Real(r) => r.function(family, kernel).map(|_| ()),
            Kind::Emu(_) => Ok(()),
        }
    }

    /// Launches a kernel. On the emulator, also records the launch's counted global-memory bytes.
    pub fn launch(&self, l: &Launch) -> Result<()> {
        let mut params: Vec<*mut c_void> = l.args.iter().map(|a| a.as_ptr()).collect();
        match &self.kind {
            Kind::Real(r) => {
                let f = r.function(l.family, &l.kernel)?;
                // SAFETY: the launcher validated shapes and buffer sizes on the host; `params`
                // points into `l.args`, alive for the call; the stream is this context's.
                unsafe { cudarc::driver::result::launch_kernel(f.cu_function(), l.grid, l.block, l.smem, r.stream.cu_stream(), &mut params) }
                    .map_err(|e| Error::Launch { op: l.op, kernel: l.kernel.clone(), msg: format!("{e:?}") })
            }
            Kind::Emu(e) => e.launch(l, &params),
        }
    }

    /// Counted bytes (read, written) of the last emulated launch of `kernel`.
    pub fn emu_bytes(&self, kernel: &str) -> Option<(u64, u64)> {
        match &self.kind {
            Kind::Emu(e) => e.bytes(kernel),
            Kind::Real(_) => None,
        }
    }

    fn release(&self, size: usize, slice: CudaSlice<u8>) {
        if let Kind::Real(r) = &self.kind {
            r.pool.lock().unwrap().entry(size).or_default().push(slice);
        }
    }

    /// Frees every cached block (memory held by live tensors stays).
    pub fn empty_cache(&self) {
        if let Kind::Real(r) = &self.kind {
            r.pool.lock().unwrap().clear();
        }
    }
}

/// Device memory owned by one tensor's storage; returns to the pool when dropped.
pub struct GpuBuffer {
    backend: Arc<GpuBackend>,
    bytes: usize,
    size: usize,
    mem: Mem,
}

enum Mem {
    Real { slice: Option<CudaSlice<u8>>, ptr: u64 },
    Emu(emu::Buf),
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} bytes on {})", self.bytes, self.backend.device)
    }
}

impl GpuBuffer {
    /// Requested length in bytes.
    pub fn len(&self) -> usize {
        self.bytes
    }
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }
    /// The address kernels see (device address, or host address under the emulator).
    pub fn ptr(&self) -> u64 {
        match &self.mem {
            Mem::Real { ptr, .. } => *ptr,
            Mem::Emu(e) => emu::ptr(e),
        }
    }
    pub fn backend(&self) -> &Arc<GpuBackend> {
        &self.backend
    }
    /// Copies the first `n` bytes to the host (synchronising the stream).
    pub fn download(&self, n: usize) -> Result<Vec<u8>> {
        let n = n.min(self.bytes);
        match (&self.backend.kind, &self.mem) {
            (Kind::Real(r), Mem::Real { slice: Some(s), .. }) => {
                let mut out = vec![0u8; n];
                r.stream.memcpy_dtoh(&s.slice(0..n), &mut out).map_err(cuda_err("device-to-host copy"))?;
                r.stream.synchronize().map_err(cuda_err("synchronize"))?;
                Ok(out)
            }
            (_, Mem::Emu(e)) => Ok(emu::read(e, n)),
            _ => unreachable!(),
        }
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Mem::Real { slice, .. } = &mut self.mem {
            if let Some(s) = slice.take() {
                self.backend.release(self.size, s);
            }
        }
    }
}

/// One kernel argument, stored by value so `cuLaunchKernel` can point at it.
pub enum Arg {
    Ptr(u64),
    I32(i32),
    U32(u32),
    F32(f32),
    U64(u64),
    /// A `#[repr(C)]` parameter struct, 8-byte aligned.
    Struct(Vec<u64>),
}

impl Arg {
    fn as_ptr(&self) -> *mut c_void {
        match self {
            Arg::Ptr(v) | Arg::U64(v) => v as *const u64 as *mut c_void,
            Arg::I32(v) => v as *const i32 as *mut c_void,
            Arg::U32(v) => v as *const u32 as *mut c_void,
            Arg::F32(v) => v as *const f32 as *mut c_void,
            Arg::Struct(v) => v.as_ptr() as *mut c_void,
        }
    }
}

/// A kernel launch: which kernel, its launch shape, and its arguments in order.
pub struct Launch {
    pub op: &'static str,
    pub family: &'static str,
    pub kernel: String,
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
    pub smem: u32,
    pub args: Vec<Arg>,
    /// Emulator only: run one thread order instead of three (kernels whose result legitimately
    /// depends on the order, e.g. float atomics).
    pub single_order: bool,
}

impl Launch {
    pub fn new(op: &'static str, family: &'static str, kernel: impl Into<String>) -> Launch {
        Launch { op, family, kernel: kernel.into(), grid: (1, 1, 1), block: (1, 1, 1), smem: 0, args: Vec::new(), single_order: false }
    }
    pub fn grid(mut self, x: u32, y: u32, z: u32) -> Self {
        self.grid = (x, y, z);
        self
    }
    pub fn block(mut self, x: u32, y: u32, z: u32) -> Self {
        self.block = (x, y, z);
        self
    }
    pub fn smem(mut self, bytes: u32) -> Self {
        self.smem = bytes;
        self
    }
    /// Emulator: run one thread order (see [`Launch::single_order`]).
    pub fn single_order(mut self) -> Self {
        self.single_order = true;
        self
    }
    /// A tensor's buffer as a pointer argument.
    pub fn buf(mut self, b: &GpuBuffer) -> Self {
        self.args.push(Arg::Ptr(b.ptr()));
        self
    }
    pub fn i32(mut self, v: i32) -> Self {
        self.args.push(Arg::I32(v));
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.args.push(Arg::U32(v));
        self
    }
    pub fn f32(mut self, v: f32) -> Self {
        self.args.push(Arg::F32(v));
        self
    }
    /// A `#[repr(C)]` parameter struct mirrored in the .cu (convention 4 of DESIGN.md).
    pub fn param<T: bytemuck::Pod>(mut self, v: &T) -> Self {
        let bytes = bytemuck::bytes_of(v);
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        self.args.push(Arg::Struct(words));
        self
    }
    /// Runs it on `backend`.
    pub fn run(self, backend: &GpuBackend) -> Result<()> {
        backend.launch(&self)
    }
}
