//! Reading and writing `.safetensors` files (the format HF checkpoints and our fixtures use).
//!
//! Writes go to a temporary file in the same directory and are renamed into place, so an
//! interrupted write never destroys an existing file. f32, f16 and bf16 (converted to f32) load;
//! other dtypes are an error naming the tensor. [`load_checkpoint_dir`] reads a model directory as
//! `save_pretrained` writes it: one `model.safetensors`, or shards listed by
//! `model.safetensors.index.json`. A header that claims more than the file holds (a tensor past its
//! end, overlapping tensors, a header longer than the file) is an error naming the file and tensor,
//! found before anything is allocated from it.

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
    let text = std::fs::read_to_string(&index).map_err(|e| ferr(&index, e.to_string()))?;
    let weight_map = parse_index(&text).map_err(|e| match e {
        Error::Msg(m) => ferr(&index, m),
        other => other,
    })?;
    let shards: BTreeSet<&str> = weight_map.values().map(String::as_str).collect();
    let mut out = BTreeMap::new();
    for shard in shards {
        let path = dir.join(shard);
        if !path.exists() {
            return Err(ferr(&path, format!("no such file (a shard listed in {})", index.display())));
        }
        for (name, t) in load(&path)? {
            if let Some(listed) = weight_map.get(&name).filter(|s| s.as_str() != shard) {
                return Err(ferr(&path, format!("holds tensor '{name}', which the index puts in {listed}")));
            }
            if out.insert(name.clone(), t).is_some() {
                return Err(ferr(&path, format!("tensor '{name}' is in more than one shard")));
            }
        }
    }
    if let Some((name, shard)) = weight_map.iter().find(|(n, _)| !out.contains_key(*n)) {
        return Err(ferr(&dir.join(shard), format!("lacks tensor '{name}', which {} puts there", index.display())));
    }
    Ok((out, index))
}

/// The `weight_map` of a sharded checkpoint's `model.safetensors.index.json` text (tensor → shard
/// file). Errors (without the file's name, which the caller adds): not JSON (nesting deeper than 128
/// levels included), no `weight_map`, an empty one, a shard that is not a plain file name.
pub fn parse_index(text: &str) -> Result<BTreeMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let parsed: Index = serde_json::from_str(text).map_err(|e| Error::Msg(format!("not a safetensors index ({e})")))?;
    if parsed.weight_map.is_empty() {
        return Err(Error::Msg("its weight_map lists no tensors".into()));
    }
    for (name, shard) in &parsed.weight_map {
        let mut parts = Path::new(shard).components();
        if !matches!((parts.next(), parts.next()), (Some(std::path::Component::Normal(_)), None)) {
            return Err(Error::Msg(format!("shard '{shard}' of tensor '{name}' is not a file name inside the checkpoint directory")));
        }
    }
    Ok(parsed.weight_map)
}

/// The element size in bytes of the dtypes aural loads (`None`: another dtype).
fn dtype_size(dtype: &str) -> Option<u64> {
    match dtype {
        "F64" | "I64" => Some(8),
        "F32" | "I32" => Some(4),
        "F16" | "BF16" => Some(2),
        _ => None,
    }
}

/// Checks the header of safetensors `bytes` against their real length before anything is read or
/// allocated from it: the header length, then per tensor its dtype, its data offsets (inside the
/// data that follows the header), its size (shape × dtype, without overflow, equal to the offsets'
/// span) and that no two tensors overlap. Errors name the tensor.
fn check_header(bytes: &[u8]) -> Result<()> {
    let msg = |m: String| Err(Error::Msg(m));
    let Some(len) = bytes.get(..8) else {
        return msg(format!("{} bytes: too short for a safetensors file (it starts with an 8-byte header length)", bytes.len()));
    };
    let n = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let rest = bytes.len() as u64 - 8;
    if n > rest {
        return msg(format!("the header length is {n} bytes, but only {rest} bytes follow it"));
    }
    let header = std::str::from_utf8(&bytes[8..8 + n as usize]).map_err(|e| Error::Msg(format!("the header is not UTF-8 ({e})")))?;
    let map: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(header).map_err(|e| Error::Msg(format!("the header is not a JSON object of tensors ({e})")))?;
    let data = rest - n;
    let mut spans: Vec<(u64, u64, &str)> = Vec::new();
    for (name, info) in &map {
        if name == "__metadata__" {
            continue;
        }
        let bad = |m: String| Err(Error::Msg(format!("tensor '{name}': {m}")));
        let Some(dtype) = info.get("dtype").and_then(|d| d.as_str()) else { return bad("no dtype".into()) };
        let Some(size) = dtype_size(dtype) else { return bad(format!("dtype {dtype}, which aural cannot load (F32, F16, BF16, F64, I64, I32)")) };
        let shape: Option<Vec<u64>> = info.get("shape").and_then(|s| s.as_array()).and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let Some(shape) = shape else { return bad("no shape (a list of sizes)".into()) };
        let offsets: Option<Vec<u64>> = info.get("data_offsets").and_then(|s| s.as_array()).and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let Some(&[begin, end]) = offsets.as_deref() else { return bad("no data_offsets [begin, end]".into()) };
        if begin > end || end > data {
            return bad(format!("data_offsets [{begin}, {end}] are outside the {data} bytes of data the file holds"));
        }
        match shape.iter().try_fold(size, |a, &d| a.checked_mul(d)) {
            Some(b) if b == end - begin => {}
            Some(b) => return bad(format!("shape {shape:?} of {dtype} is {b} bytes, but its data_offsets [{begin}, {end}] span {}", end - begin)),
            None => return bad(format!("shape {shape:?} of {dtype} overflows 64 bits")),
        }
        spans.push((begin, end, name));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        let ((b0, e0, n0), (b1, e1, n1)) = (w[0], w[1]);
        if b1 < e0 {
            return msg(format!("tensor '{n1}' (bytes {b1}..{e1}) overlaps tensor '{n0}' (bytes {b0}..{e0})"));
        }
    }
    Ok(())
}

/// Parses safetensors bytes. The header's claims (its length, each tensor's offsets, dtype and shape,
/// overlaps) are checked against the bytes' real length before anything is allocated from them; errors
/// name the tensor.
pub fn load_bytes(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>> {
    check_header(bytes)?;
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
    // Host copies only of device tensors (a CPU tensor is shared, not copied); the views borrow
    // their bytes and safetensors writes them straight to the file (no serialised copy in memory).
    let host: Vec<(String, Tensor)> = tensors.into_iter().map(|(name, t)| Ok((name.to_string(), t.to_device(Device::Cpu)?))).collect::<Result<_>>()?;
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = host
        .iter()
        .map(|(n, t)| {
            let view = safetensors::tensor::TensorView::new(st_dtype(t.dtype()), t.shape().to_vec(), host_bytes(t)?);
            Ok((n.clone(), view.map_err(|e| ferr(path, format!("tensor '{n}': {e}")))?))
        })
        .collect::<Result<_>>()?;
    write_through_tmp(path, |tmp| safetensors::tensor::serialize_to_file(views, None, tmp))
}

/// The safetensors dtype of a tensor dtype.
fn st_dtype(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
    }
}

/// The bytes of a CPU tensor's values.
fn host_bytes(t: &Tensor) -> Result<&[u8]> {
    Ok(match t.dtype() {
        DType::F32 => bytemuck::cast_slice(&t.cpu_f32()?[..t.numel()]),
        DType::F16 => bytemuck::cast_slice(&t.cpu_f16()?[..t.numel()]),
    })
}

/// Writes the file by `write` into a temporary file beside `path`, renamed into place once whole;
/// on an error (a full disk) the partial file goes and the message names the file being written.
fn write_through_tmp(path: &Path, write: impl FnOnce(&Path) -> std::result::Result<(), safetensors::SafeTensorError>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{}.{}.tmp", path.file_name().and_then(|s| s.to_str()).unwrap_or("out"), std::process::id()));
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        let msg = match e {
            safetensors::SafeTensorError::IoError(io) => io.to_string(),
            other => other.to_string(),
        };
        return Err(ferr(path, format!("{msg} (writing it through {})", tmp.display())));
    }
    std::fs::rename(&tmp, path).map_err(|e| ferr(path, e.to_string()))?;
    Ok(())
}

/// Writes tensors whose names, dtypes and shapes are known before their values (the file's header
/// comes first): `fetch(name)` is asked for each tensor once, in the order the file stores them (by
/// name, as the safetensors crate sorts them), and its bytes are written and dropped before the
/// next is asked for, so memory holds one tensor at a time whatever the file's size. The first
/// error of `fetch`, or a tensor of another dtype or shape than announced, stops the write: no file
/// is left (the temporary one is removed) and that error is returned.
pub fn save_streamed(path: impl AsRef<Path>, specs: Vec<(String, DType, Vec<usize>)>, fetch: impl FnMut(&str) -> Result<Tensor>) -> Result<()> {
    use std::borrow::Cow;
    use std::cell::{OnceCell, RefCell};
    let path = path.as_ref();
    struct Lazy<'f> {
        name: String,
        dtype: DType,
        shape: Vec<usize>,
        got: OnceCell<Option<Tensor>>,
        fetch: &'f RefCell<dyn FnMut(&str) -> Result<Tensor> + 'f>,
        err: &'f RefCell<Option<Error>>,
    }
    impl Lazy<'_> {
        fn take(&self) -> Option<Tensor> {
            if self.err.borrow().is_some() {
                return None;
            }
            let t = (self.fetch.borrow_mut())(&self.name).and_then(|t| {
                if t.dtype() != self.dtype || t.shape() != self.shape.as_slice() {
                    return Err(Error::Msg(format!(
                        "tensor '{}' came as {:?} {:?}; the header has {:?} {:?}",
                        self.name,
                        t.dtype(),
                        t.shape(),
                        self.dtype,
                        self.shape
                    )));
                }
                t.to_device(Device::Cpu)
            });
            t.map_err(|e| *self.err.borrow_mut() = Some(e)).ok()
        }
    }
    impl safetensors::View for Lazy<'_> {
        fn dtype(&self) -> Dtype {
            st_dtype(self.dtype)
        }
        fn shape(&self) -> &[usize] {
            &self.shape
        }
        fn data(&self) -> Cow<'_, [u8]> {
            // after an error nothing more is written (the file is then removed)
            match self.got.get_or_init(|| self.take()).as_ref().map(host_bytes) {
                Some(Ok(bytes)) => Cow::Borrowed(bytes),
                Some(Err(e)) => {
                    *self.err.borrow_mut() = Some(e);
                    Cow::Borrowed(&[])
                }
                None => Cow::Borrowed(&[]),
            }
        }
        fn data_len(&self) -> usize {
            self.shape.iter().product::<usize>() * self.dtype.size()
        }
    }
    let fetch = RefCell::new(fetch);
    let err = RefCell::new(None);
    let views: Vec<(String, Lazy)> =
        specs.into_iter().map(|(name, dtype, shape)| (name.clone(), Lazy { name, dtype, shape, got: OnceCell::new(), fetch: &fetch, err: &err })).collect();
    let written = write_through_tmp(path, |tmp| {
        safetensors::tensor::serialize_to_file(views, None, tmp)?;
        // a fetch that failed wrote nothing: the file is short, and goes
        if err.borrow().is_some() {
            return Err(safetensors::SafeTensorError::IoError(std::io::Error::other("not written")));
        }
        Ok(())
    });
    if let Some(e) = err.into_inner() {
        return Err(e);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors() -> Vec<(String, Tensor)> {
        ["b/x", "a", "c", "b/w"].iter().enumerate().map(|(i, n)| (n.to_string(), crate::testing::rand_tensor(&[i + 1, 3], i as u64))).collect()
    }

    /// The streamed file equals `save`'s byte for byte; each tensor is fetched once, in the file's
    /// (sorted) order.
    #[test]
    fn streamed_equals_save_and_fetches_in_file_order() {
        let d = tempfile::tempdir().unwrap();
        let ts = tensors();
        save(d.path().join("a.safetensors"), ts.iter().map(|(n, t)| (n.as_str(), t))).unwrap();
        let specs = ts.iter().map(|(n, t)| (n.clone(), t.dtype(), t.shape().to_vec())).collect();
        let mut asked = Vec::new();
        save_streamed(d.path().join("b.safetensors"), specs, |name| {
            asked.push(name.to_string());
            Ok(ts.iter().find(|(n, _)| n == name).unwrap().1.clone())
        })
        .unwrap();
        assert_eq!(asked, ["a", "b/w", "b/x", "c"]);
        assert_eq!(std::fs::read(d.path().join("a.safetensors")).unwrap(), std::fs::read(d.path().join("b.safetensors")).unwrap());
    }

    /// A failing fetch or a tensor of another shape than announced: that error, and no file (nor a
    /// temporary one) left; an existing file of that name is kept.
    #[test]
    fn a_failed_fetch_leaves_no_file() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("o.safetensors");
        std::fs::write(&out, b"old").unwrap();
        let ts = tensors();
        let specs: Vec<_> = ts.iter().map(|(n, t)| (n.clone(), t.dtype(), t.shape().to_vec())).collect();
        let get = |name: &str| ts.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let e =
            save_streamed(&out, specs.clone(), |name| if name == "b/x" { Err(Error::Msg("input b/x is broken".into())) } else { Ok(get(name)) }).unwrap_err();
        assert!(e.to_string().contains("input b/x is broken"), "{e}");
        let e = save_streamed(&out, specs, |name| if name == "c" { Ok(crate::testing::rand_tensor(&[2, 2], 0)) } else { Ok(get(name)) }).unwrap_err();
        assert!(e.to_string().contains("tensor 'c'") && e.to_string().contains("[2, 2]"), "{e}");
        assert_eq!(std::fs::read(&out).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["o.safetensors"], "a temporary file was left");
    }
}
