//! Reading and writing `.safetensors` files (the format HF checkpoints and our fixtures use).
//!
//! Writes go to a temporary file in the same directory and are renamed into place, so an
//! interrupted write never destroys an existing file. f32, f16 and bf16 (converted to f32) load;
//! other dtypes are an error naming the tensor.

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::{DType, Device, Error, Result, Tensor};

fn ferr(path: &Path, msg: impl Into<String>) -> Error {
    Error::File { path: path.display().to_string(), msg: msg.into() }
}

/// Loads every tensor of a safetensors file onto the CPU, by name.
pub fn load(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| ferr(path, e.to_string()))?;
    load_bytes(&bytes).map_err(|e| match e {
        Error::Msg(m) => ferr(path, m),
        other => other,
    })
}

/// Parses safetensors bytes.
pub fn load_bytes(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Msg(format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let t = match view.dtype() {
            Dtype::F32 => Tensor::from_vec(bytemuck::pod_collect_to_vec(data), &shape)?,
            Dtype::F16 => Tensor::from_vec_f16(bytemuck::pod_collect_to_vec::<u8, f16>(data), &shape)?,
            Dtype::BF16 => Tensor::from_vec(
                bytemuck::pod_collect_to_vec::<u8, bf16>(data).iter().map(|x| x.to_f32()).collect(),
                &shape,
            )?,
            Dtype::F64 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, f64>(data).iter().map(|&x| x as f32).collect(), &shape)?,
            Dtype::I64 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, i64>(data).iter().map(|&x| x as f32).collect(), &shape)?,
            Dtype::I32 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, i32>(data).iter().map(|&x| x as f32).collect(), &shape)?,
            other => return Err(Error::Msg(format!("tensor '{name}' has dtype {other:?}, which aural cannot load"))),
        };
        out.insert(name.to_string(), t);
    }
    Ok(out)
}

/// Writes tensors (any device; copied to the host) to `path` atomically (temp file + rename).
pub fn save<'a>(path: impl AsRef<Path>, tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<()> {
    let path = path.as_ref();
    let mut owned: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = Vec::new();
    for (name, t) in tensors {
        let t = t.to_device(Device::Cpu)?;
        let (dt, bytes) = match t.dtype() {
            DType::F32 => (Dtype::F32, bytemuck::cast_slice(t.cpu_f32()?).to_vec()),
            DType::F16 => (Dtype::F16, bytemuck::cast_slice(t.cpu_f16()?).to_vec()),
        };
        owned.push((name.to_string(), t.shape().to_vec(), dt, bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, d, b)| Ok((n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).map_err(|e| ferr(path, format!("tensor '{n}': {e}")))?)))
        .collect::<Result<_>>()?;
    let data = safetensors::tensor::serialize(views, None).map_err(|e| ferr(path, e.to_string()))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().and_then(|s| s.to_str()).unwrap_or("out"), std::process::id()));
    std::fs::write(&tmp, data).map_err(|e| ferr(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| ferr(path, e.to_string()))?;
    Ok(())
}
