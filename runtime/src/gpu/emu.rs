//! Glue between the runtime's launch path and the CUDA-on-CPU emulator of `aural-kernels`.
//! (Placeholder until the emulator lands: every launch is refused with a clear error.)

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

use super::Launch;
use crate::{Error, Result};

pub(super) struct Buf(Vec<u64>);

pub(super) fn check() -> Result<()> {
    Ok(())
}
pub(super) fn alloc(size: usize) -> Result<Buf> {
    Ok(Buf(vec![0; size.div_ceil(8)]))
}
pub(super) fn zero(b: &mut Buf) {
    b.0.iter_mut().for_each(|x| *x = 0);
}
pub(super) fn write(b: &mut Buf, src: &[u8]) {
    bytemuck::cast_slice_mut::<u64, u8>(&mut b.0)[..src.len()].copy_from_slice(src);
}
pub(super) fn read(b: &Buf, n: usize) -> Vec<u8> {
    bytemuck::cast_slice::<u64, u8>(&b.0)[..n].to_vec()
}
pub(super) fn ptr(b: &Buf) -> u64 {
    b.0.as_ptr() as u64
}

#[derive(Default)]
pub(super) struct EmuGpu {
    bytes: Mutex<HashMap<String, (u64, u64)>>,
}

impl EmuGpu {
    pub(super) fn launch(&self, l: &Launch, _params: &[*mut c_void]) -> Result<()> {
        let _ = &self.bytes;
        Err(Error::Launch { op: l.op, kernel: l.kernel.clone(), msg: "the emulator is not built yet".into() })
    }
    pub(super) fn bytes(&self, kernel: &str) -> Option<(u64, u64)> {
        self.bytes.lock().unwrap().get(kernel).copied()
    }
}
