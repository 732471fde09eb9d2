//! The named parameter store: name → leaf [`Var`], the names being those of the safetensors files,
//! so checkpoints and optimizers address parameters alike.

use std::collections::BTreeMap;
use std::path::Path;

use aural_runtime::{safetensors_io, DType, Device, Error, Result, Tensor};

use crate::{Grads, Var};

/// Parameters by name (ordered), each a leaf Var that requires a gradient and whose id is stable
/// across optimizer steps.
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    params: BTreeMap<String, Var>,
}

impl ParamStore {
    pub fn new() -> ParamStore {
        ParamStore::default()
    }

    /// Adds (or replaces) a parameter; returns its Var.
    pub fn insert(&mut self, name: impl Into<String>, t: Tensor) -> Var {
        let v = Var::leaf(t);
        self.params.insert(name.into(), v.clone());
        v
    }

    /// The parameter's Var (an error naming it when absent).
    pub fn get(&self, name: &str) -> Result<Var> {
        self.params.get(name).cloned().ok_or_else(|| Error::Msg(format!("parameter '{name}' is not in the store ({} parameters)", self.params.len())))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    /// Replaces a parameter's value, keeping its Var id; the shape must not change.
    pub fn set(&mut self, name: &str, t: Tensor) -> Result<()> {
        let v = self.params.get_mut(name).ok_or_else(|| Error::Msg(format!("parameter '{name}' is not in the store")))?;
        if v.shape() != t.shape() {
            return Err(Error::Msg(format!("parameter '{name}': new value has shape {:?}, the parameter {:?}", t.shape(), v.shape())));
        }
        *v = v.with_value(t);
        Ok(())
    }

    pub fn names(&self) -> Vec<String> {
        self.params.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.params.iter()
    }

    /// Total number of scalars.
    pub fn numel(&self) -> usize {
        self.params.values().map(|v| v.value().numel()).sum()
    }

    /// Every parameter moved to `device` (ids kept).
    pub fn to_device(&self, device: Device) -> Result<ParamStore> {
        let mut out = ParamStore::new();
        for (k, v) in &self.params {
            out.params.insert(k.clone(), v.with_value(v.value().to_device(device)?));
        }
        Ok(out)
    }

    /// Loads every tensor of a safetensors file (f16/bf16 converted to f32) onto `device`.
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<ParamStore> {
        let mut out = ParamStore::new();
        for (k, t) in safetensors_io::load(path)? {
            let t = if t.dtype() == DType::F16 { aural_runtime::ops::unary::to_f32(&t)? } else { t };
            out.insert(k, t.to_device(device)?);
        }
        Ok(out)
    }

    /// Overwrites the store's parameters with the file's (ids kept). Strict: a parameter missing from
    /// the file or a shape mismatch is an error naming the tensor (and both shapes); tensors of the
    /// file that the store lacks are returned (callers decide whether that is an error).
    pub fn load_into(&mut self, path: impl AsRef<Path>) -> Result<Vec<String>> {
        let path = path.as_ref();
        let mut file = safetensors_io::load(path)?;
        self.take_from(&mut file, "", path)?;
        Ok(file.into_keys().collect())
    }

    /// Overwrites every parameter `name` with the tensor `prefix` + `name` removed from `tensors`
    /// (ids kept; f16/bf16 converted, moved to the parameter's device). Strict as
    /// [`ParamStore::load_into`]; `source` names the file in errors.
    pub fn take_from(&mut self, tensors: &mut BTreeMap<String, Tensor>, prefix: &str, source: &Path) -> Result<()> {
        for (k, v) in self.params.iter_mut() {
            let key = format!("{prefix}{k}");
            let t = tensors.remove(&key).ok_or_else(|| Error::Msg(format!("{}: parameter '{key}' is missing", source.display())))?;
            if t.shape() != v.shape() {
                return Err(Error::Msg(format!("{}: parameter '{key}' has shape {:?} in the file, {:?} in the model", source.display(), t.shape(), v.shape())));
            }
            let t = if t.dtype() == DType::F16 { aural_runtime::ops::unary::to_f32(&t)? } else { t };
            *v = v.with_value(t.to_device(v.value().device())?);
        }
        Ok(())
    }

    /// Writes every parameter to a safetensors file atomically (temp file + rename).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        safetensors_io::save(path, self.params.iter().map(|(k, v)| (k.as_str(), v.value())))
    }

    /// The gradient of each parameter that has one, by name.
    pub fn grads<'a>(&'a self, grads: &'a Grads) -> impl Iterator<Item = (&'a String, &'a Tensor)> + 'a {
        self.params.iter().filter_map(move |(k, v)| grads.get(v).map(|g| (k, g)))
    }

    /// An error naming every parameter whose gradient holds NaN or inf (training must stop).
    pub fn check_finite(&self, grads: &Grads) -> Result<()> {
        let mut bad = Vec::new();
        for (k, g) in self.grads(grads) {
            let v = g.to_vec()?;
            if let Some((i, x)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                bad.push(format!("'{k}' (first at flat index {i}: {x})"));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(Error::Msg(format!("non-finite gradient in parameter {}; refusing to update", bad.join(", "))))
        }
    }
}
