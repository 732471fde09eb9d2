//! Taking a checkpoint's tensors by name with shape checks, onto a device (every model loader).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aural_runtime::ops::matmul::Linear;
use aural_runtime::{DType, Device, Error, Result, Tensor};

/// The non-AST tensors of a checkpoint, taken by name with shape checks.
pub(crate) struct Params<'a> {
    pub tensors: &'a BTreeMap<String, Tensor>,
    pub used: BTreeSet<String>,
    pub source: String,
    pub device: Device,
    /// Probing (see [`Params::probing`]): every tensor a loader asks for, with its shape.
    pub probe: Option<Vec<(String, Vec<usize>)>>,
}

impl<'a> Params<'a> {
    pub fn new(tensors: &'a BTreeMap<String, Tensor>, source: &Path, device: Device) -> Params<'a> {
        Params { tensors, used: BTreeSet::new(), source: source.display().to_string(), device, probe: None }
    }

    /// A loader run that reads nothing: every `take` is recorded (name, shape) and answered with
    /// zeros, so a model's loader lists the tensors a config needs.
    pub fn probing(tensors: &'a BTreeMap<String, Tensor>) -> Params<'a> {
        Params { probe: Some(Vec::new()), ..Params::new(tensors, Path::new("(probe)"), Device::Cpu) }
    }

    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if let Some(p) = self.probe.as_mut() {
            p.push((name.to_string(), shape.to_vec()));
            return Tensor::zeros(shape, DType::F32, Device::Cpu);
        }
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::File { path: self.source.clone(), msg: format!("missing tensor '{name}' (expected shape {shape:?})") })?;
        if t.shape() != shape {
            return Err(Error::File {
                path: self.source.clone(),
                msg: format!("tensor '{name}' has shape {:?}, expected {shape:?} from config.json", t.shape()),
            });
        }
        self.used.insert(name.to_string());
        let t = match t.dtype() {
            DType::F32 => t.clone(),
            DType::F16 => Tensor::from_vec(t.to_vec()?, t.shape())?,
        };
        t.to_device(self.device)
    }

    /// `{prefix}.weight` (out, inp) and `{prefix}.bias` as a [`Linear`] laid out for the device.
    pub fn linear(&mut self, prefix: &str, out: usize, inp: usize) -> Result<Linear> {
        Linear::new(self.take(&format!("{prefix}.weight"), &[out, inp])?, Some(self.take(&format!("{prefix}.bias"), &[out])?))
    }

    pub fn norm(&mut self, prefix: &str, n: usize) -> Result<(Tensor, Tensor)> {
        Ok((self.take(&format!("{prefix}.weight"), &[n])?, self.take(&format!("{prefix}.bias"), &[n])?))
    }
}
