//! Glue between the runtime's launch path and the CUDA-on-CPU emulator of `aural-kernels`.
//!
//! Under `Device::Emu`, buffers are emulator `EmuBuffer`s (registered host memory with guard zones)
//! and every launch runs the kernel three times in different thread orders (forward, reverse,
//! seeded shuffle) from the same inputs, failing on any difference (a race or a missing barrier) and
//! on any out-of-bounds access. The counted global-memory bytes of the last launch of each kernel are
//! kept for `emu_bytes` (the performance model of `aural bench --model-gpu`).
//!
//! Coverage: when `AURAL_EMU_COVERAGE_DIR` is set, each launched kernel name is appended to a file
//! there; `aural doctor --emu-coverage DIR` (run by the test script after the suite) fails when a
//! kernel of `kernels/cuda` was never run under the emulator.

use std::collections::HashMap;
use std::ffi::c_void;
use std::io::Write;
use std::sync::Mutex;

use aural_kernels::emu::{self, Dim3, EmuBuffer, LaunchOptions, Order};

use super::Launch;
use crate::{Error, Result};

pub(super) struct Buf(EmuBuffer);

pub(super) fn check() -> Result<()> {
    if emu::kernels().is_empty() {
        return Err(Error::Msg("the CUDA emulator was built without kernels".into()));
    }
    Ok(())
}
pub(super) fn alloc(size: usize) -> Result<Buf> {
    Ok(Buf(EmuBuffer::new(size)))
}
pub(super) fn zero(b: &mut Buf) {
    b.0.as_mut_slice().fill(0);
}
pub(super) fn write(b: &mut Buf, src: &[u8]) {
    b.0.as_mut_slice()[..src.len()].copy_from_slice(src);
}
pub(super) fn read(b: &Buf, n: usize) -> Vec<u8> {
    b.0.as_slice()[..n].to_vec()
}
pub(super) fn ptr(b: &Buf) -> u64 {
    b.0.as_ptr() as u64
}

/// Per-launch thread orders: the default three, or one (`AURAL_EMU_ORDERS=1`, for kernels that are
/// order-dependent by design, e.g. float atomics — launchers pass `single_order`).
fn options(single: bool) -> LaunchOptions {
    if single {
        LaunchOptions::single(Order::Forward)
    } else {
        LaunchOptions::default()
    }
}

#[derive(Default)]
pub(super) struct EmuGpu {
    bytes: Mutex<HashMap<String, (u64, u64)>>,
}

impl EmuGpu {
    pub(super) fn launch(&self, l: &Launch, params: &[*mut c_void]) -> Result<()> {
        let grid = Dim3::new(l.grid.0, l.grid.1, l.grid.2);
        let block = Dim3::new(l.block.0, l.block.1, l.block.2);
        // SAFETY: pointer arguments are addresses of live EmuBuffers owned by the launch's tensors;
        // `params` points at the argument values held by `l`.
        let stats = unsafe { emu::launch(&l.kernel, grid, block, l.smem, params, &options(l.single_order)) }.map_err(|e| Error::Launch {
            op: l.op,
            kernel: l.kernel.clone(),
            msg: format!("emulator: {e}"),
        })?;
        self.bytes.lock().unwrap().insert(l.kernel.clone(), (stats.bytes_read, stats.bytes_written));
        record_coverage(&l.kernel);
        Ok(())
    }
    pub(super) fn bytes(&self, kernel: &str) -> Option<(u64, u64)> {
        self.bytes.lock().unwrap().get(kernel).copied()
    }
}

fn record_coverage(kernel: &str) {
    let Ok(dir) = std::env::var("AURAL_EMU_COVERAGE_DIR") else { return };
    let _ = std::fs::create_dir_all(&dir);
    let path = std::path::Path::new(&dir).join(format!("{}.txt", std::process::id()));
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{kernel}");
    }
}

/// Every kernel the emulator knows (all of `kernels/cuda`, plus the emulator's self-tests).
pub fn kernel_names() -> Vec<&'static str> {
    emu::kernels()
}
