//! Reading and writing `.safetensors` files (the format HF checkpoints and our fixtures use).
//!
//! Writes go to a temporary file in the same directory and are renamed into place, so an
//! interrupted write never destroys an existing file. f32, f16 and bf16 (converted to f32) load;
//! other dtypes are an error naming the tensor. [`load_checkpoint_dir`] reads a model directory as
//! `save_pretrained` writes it: one `model.safetensors`, or shards listed by
//! `model.safetensors.index.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// The weights of a checkpoint directory as HF `save_pretrained` writes them: `dir/model.safetensors`,
/// or, for a sharded save (`max_shard_size`), every shard named by `dir/model.safetensors.index.json`
/// (`{"weight_map": {tensor: shard file}}`). Returns the tensors and the file that names them (the
/// single file or the index), for error messages. A missing shard, a tensor the index puts in a
/// shard that lacks it, or a tensor in two shards is an error naming the file and tensor. A
/// directory with only PyTorch pickles (`pytorch_model.bin`) gets a hint to convert it.
pub fn load_checkpoint_dir(dir: impl AsRef<Path>) -> Result<(BTreeMap<String, Tensor>, PathBuf)> {
    let dir = dir.as_ref();
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok((load(&single)?, single));
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.exists() {
        let pickles = dir.join("pytorch_model.bin").exists() || dir.join("pytorch_model.bin.index.json").exists();
        let hint = if pickles { " (only pytorch_model.bin is there: convert it with save_pretrained(..., safe_serialization=True))" } else { "" };
        return Err(ferr(&single, format!("no such file, and no model.safetensors.index.json beside it{hint}")));
    }
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let text = std::fs::read_to_string(&index).map_err(|e| ferr(&index, e.to_string()))?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| ferr(&index, format!("not a safetensors index ({e})")))?;
    if parsed.weight_map.is_empty() {
        return Err(ferr(&index, "its weight_map lists no tensors"));
    }
    let shards: BTreeSet<&str> = parsed.weight_map.values().map(String::as_str).collect();
    let mut out = BTreeMap::new();
    for shard in shards {
        if Path::new(shard).components().count() != 1 {
            return Err(ferr(&index, format!("shard '{shard}' is not a file name inside the checkpoint directory")));
        }
        let path = dir.join(shard);
        if !path.exists() {
            return Err(ferr(&path, format!("no such file (a shard listed in {})", index.display())));
        }
        for (name, t) in load(&path)? {
            if let Some(listed) = parsed.weight_map.get(&name).filter(|s| s.as_str() != shard) {
                return Err(ferr(&path, format!("holds tensor '{name}', which the index puts in {listed}")));
            }
            if out.insert(name.clone(), t).is_some() {
                return Err(ferr(&path, format!("tensor '{name}' is in more than one shard")));
            }
        }
    }
    if let Some((name, shard)) = parsed.weight_map.iter().find(|(n, _)| !out.contains_key(*n)) {
        return Err(ferr(&dir.join(shard), format!("lacks tensor '{name}', which {} puts there", index.display())));
    }
    Ok((out, index))
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
            Dtype::BF16 => Tensor::from_vec(bytemuck::pod_collect_to_vec::<u8, bf16>(data).iter().map(|x| x.to_f32()).collect(), &shape)?,
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
