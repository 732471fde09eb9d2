//! Devices and the `auto` choice.
//!
//! `Device::Cuda(n)` is a real GPU driven through cudarc (dynamic loading: no CUDA toolkit at build
//! time; libcuda and libnvrtc are found at run time). `Device::Emu` runs the very same CUDA kernels and
//! launchers on the CPU through the emulator of `aural-kernels` — it exists to verify kernels on
//! machines without a GPU and to count their global-memory traffic; it is slow and never chosen by
//! `auto`.

use crate::{gpu, Error, Result};

/// Where a tensor lives and where its ops run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU backend (rayon). The reference and the fallback.
    Cpu,
    /// A CUDA GPU by ordinal.
    Cuda(usize),
    /// The CUDA kernels run by the CUDA-on-CPU emulator (tests, byte counting).
    Emu,
}

impl Device {
    /// The best device here and why: CUDA when a driver, a GPU and NVRTC are usable, else the CPU.
    pub fn auto() -> (Device, String) {
        match gpu::probe(0) {
            Ok(info) => (Device::Cuda(0), format!("CUDA device 0 ({}, compute capability {}.{}) is usable", info.name, info.cc.0, info.cc.1)),
            Err(why) => (Device::Cpu, format!("using the CPU: {why}")),
        }
    }

    /// Parses `auto`, `cpu`, `cuda`, `cuda:N` or `emu`. `auto` resolves immediately.
    pub fn parse(s: &str) -> Result<(Device, String)> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Device::auto()),
            "cpu" => Ok((Device::Cpu, "the CPU was asked for".into())),
            "emu" => Ok((Device::Emu, "the CUDA-on-CPU emulator was asked for".into())),
            "cuda" | "gpu" => Ok((Device::Cuda(0), "CUDA device 0 was asked for".into())),
            _ => {
                if let Some(n) = s.strip_prefix("cuda:") {
                    let n: usize = n.parse().map_err(|_| Error::Msg(format!("device '{s}': expected cuda:N with N a GPU ordinal")))?;
                    Ok((Device::Cuda(n), format!("CUDA device {n} was asked for")))
                } else {
                    Err(Error::Msg(format!("unknown device '{s}' (expected auto, cpu, cuda or cuda:N)")))
                }
            }
        }
    }

    /// Checks that the device can be used now: `Ok` for the CPU, the emulator, or a usable GPU;
    /// otherwise one sentence saying why not.
    pub fn check(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Emu => gpu::backend(*self).map(|_| ()),
            Device::Cuda(n) => gpu::probe(*n).map(|_| ()).map_err(Error::CudaUnavailable),
        }
    }

    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Emu => f.write_str("emu"),
        }
    }
}
