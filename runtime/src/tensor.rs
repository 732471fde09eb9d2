//! `Tensor`: a shape, a dtype and contiguous storage on one device.
//!
//! Tensors are immutable values: ops return new tensors, and `reshape` shares storage. Storage is
//! always contiguous, row-major; permutations and slices are ops that copy. Moving between devices is
//! explicit (`to_device`), so host↔device copies happen only where a caller asks for them.

use std::sync::Arc;

use half::f16;

use crate::gpu::GpuBuffer;
use crate::{DType, Device, Error, Result};

/// Host storage of the CPU backend.
#[derive(Debug, Clone)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

/// Storage shared by tensors that are reshapes of one another.
#[derive(Debug)]
pub(crate) enum Storage {
    Cpu(CpuStorage),
    Gpu(GpuBuffer),
}

/// An n-dimensional array.
#[derive(Debug, Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    shape: Vec<usize>,
    dtype: DType,
    device: Device,
}

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    // ---------------------------------------------------------------- constructors

    /// A CPU f32 tensor owning `data`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        check_len("Tensor::from_vec", data.len(), shape)?;
        Ok(Tensor::from_cpu(CpuStorage::F32(data), shape))
    }

    /// A CPU f16 tensor owning `data`.
    pub fn from_vec_f16(data: Vec<f16>, shape: &[usize]) -> Result<Tensor> {
        check_len("Tensor::from_vec_f16", data.len(), shape)?;
        Ok(Tensor::from_cpu(CpuStorage::F16(data), shape))
    }

    /// An f32 tensor with a copy of `data` on `device`.
    pub fn from_slice(data: &[f32], shape: &[usize], device: Device) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)?.to_device(device)
    }

    /// Zeros of `dtype` on `device`.
    pub fn zeros(shape: &[usize], dtype: DType, device: Device) -> Result<Tensor> {
        let n = numel(shape);
        let cpu = match dtype {
            DType::F32 => Tensor::from_cpu(CpuStorage::F32(vec![0.0; n]), shape),
            DType::F16 => Tensor::from_cpu(CpuStorage::F16(vec![f16::ZERO; n]), shape),
        };
        cpu.to_device(device)
    }

    /// A scalar-filled f32 tensor on `device`.
    pub fn full(shape: &[usize], value: f32, device: Device) -> Result<Tensor> {
        Tensor::from_vec(vec![value; numel(shape)], shape)?.to_device(device)
    }

    pub(crate) fn from_cpu(s: CpuStorage, shape: &[usize]) -> Tensor {
        let dtype = match &s {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
        };
        Tensor { storage: Arc::new(Storage::Cpu(s)), shape: shape.to_vec(), dtype, device: Device::Cpu }
    }

    pub(crate) fn from_gpu(buf: GpuBuffer, shape: &[usize], dtype: DType, device: Device) -> Tensor {
        debug_assert!(buf.len() >= numel(shape) * dtype.size());
        Tensor { storage: Arc::new(Storage::Gpu(buf)), shape: shape.to_vec(), dtype, device }
    }

    // ---------------------------------------------------------------- accessors

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn device(&self) -> Device {
        self.device
    }
    /// Size of dimension `d`; negative `d` counts from the end.
    pub fn dim(&self, d: isize) -> Result<usize> {
        let ax = self.axis(d, "Tensor::dim")?;
        Ok(self.shape[ax])
    }
    /// Resolves a possibly negative axis.
    pub fn axis(&self, d: isize, op: &'static str) -> Result<usize> {
        let r = self.rank() as isize;
        let a = if d < 0 { d + r } else { d };
        if a < 0 || a >= r {
            return Err(Error::shape(op, format!("axis {d} out of range for shape {:?}", self.shape)));
        }
        Ok(a as usize)
    }

    /// The f32 host data of a CPU tensor.
    pub fn cpu_f32(&self) -> Result<&[f32]> {
        match &*self.storage {
            Storage::Cpu(CpuStorage::F32(v)) => Ok(&v[..self.numel()]),
            Storage::Cpu(_) => Err(Error::DType { op: "cpu_f32", got: self.dtype, msg: "expected f32".into() }),
            Storage::Gpu(_) => Err(Error::Msg(format!("cpu_f32: tensor is on {}, not the CPU", self.device))),
        }
    }

    /// The f16 host data of a CPU tensor.
    pub fn cpu_f16(&self) -> Result<&[f16]> {
        match &*self.storage {
            Storage::Cpu(CpuStorage::F16(v)) => Ok(&v[..self.numel()]),
            Storage::Cpu(_) => Err(Error::DType { op: "cpu_f16", got: self.dtype, msg: "expected f16".into() }),
            Storage::Gpu(_) => Err(Error::Msg(format!("cpu_f16: tensor is on {}, not the CPU", self.device))),
        }
    }

    /// The device buffer of a CUDA (or emulated) tensor.
    pub fn gpu_buf(&self) -> Result<&GpuBuffer> {
        match &*self.storage {
            Storage::Gpu(b) => Ok(b),
            Storage::Cpu(_) => Err(Error::Msg("gpu_buf: tensor is on the CPU".into())),
        }
    }

    // ---------------------------------------------------------------- conversions

    /// Copies the tensor to `device` (a clone of the handle when it is already there).
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device {
            return Ok(self.clone());
        }
        let bytes: Vec<u8> = match &*self.storage {
            Storage::Cpu(CpuStorage::F32(v)) => bytemuck::cast_slice(&v[..self.numel()]).to_vec(),
            Storage::Cpu(CpuStorage::F16(v)) => bytemuck::cast_slice(&v[..self.numel()]).to_vec(),
            Storage::Gpu(b) => b.download(self.numel() * self.dtype.size())?,
        };
        match device {
            Device::Cpu => {
                let s = match self.dtype {
                    DType::F32 => CpuStorage::F32(bytemuck::pod_collect_to_vec(&bytes)),
                    DType::F16 => CpuStorage::F16(bytemuck::pod_collect_to_vec(&bytes)),
                };
                Ok(Tensor::from_cpu(s, &self.shape))
            }
            Device::Cuda(_) | Device::Emu => {
                let be = crate::gpu::backend(device)?;
                let buf = be.upload(&bytes)?;
                Ok(Tensor::from_gpu(buf, &self.shape, self.dtype, device))
            }
        }
    }

    /// The elements as f32 on the host (converting f16), whatever the device.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        let t = self.to_device(Device::Cpu)?;
        match &*t.storage {
            Storage::Cpu(CpuStorage::F32(v)) => Ok(v[..t.numel()].to_vec()),
            Storage::Cpu(CpuStorage::F16(v)) => Ok(v[..t.numel()].iter().map(|x| x.to_f32()).collect()),
            Storage::Gpu(_) => unreachable!("to_device(Cpu) returns host storage"),
        }
    }

    /// [`Tensor::to_vec`] without the copy when this is the only handle of an f32 CPU tensor (its
    /// buffer is moved out); otherwise the same copy as `to_vec`.
    pub fn into_vec(self) -> Result<Vec<f32>> {
        if self.device == Device::Cpu && self.dtype == DType::F32 {
            let n = self.numel();
            match Arc::try_unwrap(self.storage) {
                Ok(Storage::Cpu(CpuStorage::F32(mut v))) => {
                    v.truncate(n);
                    return Ok(v);
                }
                Ok(other) => return Tensor { storage: Arc::new(other), ..self }.to_vec(),
                Err(storage) => return Tensor { storage, ..self }.to_vec(),
            }
        }
        self.to_vec()
    }

    /// Same data, new shape (no copy). One dimension may be `usize::MAX` to be inferred.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let mut shape = shape.to_vec();
        let n = self.numel();
        if let Some(i) = shape.iter().position(|&d| d == usize::MAX) {
            let rest: usize = shape.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, &d)| d).product();
            if rest == 0 || n % rest != 0 {
                return Err(Error::shape("reshape", format!("cannot infer a dimension of {:?} from {:?}", shape, self.shape)));
            }
            shape[i] = n / rest;
        }
        if numel(&shape) != n {
            return Err(Error::shape("reshape", format!("{:?} has {} elements, {:?} has {}", self.shape, n, shape, numel(&shape))));
        }
        Ok(Tensor { storage: self.storage.clone(), shape, dtype: self.dtype, device: self.device })
    }
}

fn check_len(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    if len != numel(shape) {
        return Err(Error::shape(op, format!("{len} values do not fill shape {shape:?} ({} elements)", numel(shape))));
    }
    Ok(())
}

/// Checks that all tensors share one device and returns it.
pub(crate) fn same_device(op: &'static str, ts: &[&Tensor]) -> Result<Device> {
    let d = ts[0].device();
    for t in &ts[1..] {
        if t.device() != d {
            return Err(Error::DeviceMismatch { op, a: d.to_string(), b: t.device().to_string() });
        }
    }
    Ok(d)
}

/// Checks that a tensor has the given dtype.
pub(crate) fn expect_dtype(op: &'static str, t: &Tensor, dt: DType) -> Result<()> {
    if t.dtype() != dt {
        return Err(Error::DType { op, got: t.dtype(), msg: format!("expected {dt}") });
    }
    Ok(())
}
