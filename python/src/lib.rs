//! `aural._aural`, the native module of the `aural` Python package (pyo3 + numpy): numpy in, numpy
//! out. The Python layer (`aural/__init__.py`) re-exports it and adds the pandas form of events.
//!
//! Inputs: C-contiguous float32 (read in place and copied once into the engine's buffer, a memcpy)
//! or float64 (converted); any other dtype, a non-contiguous array, the wrong rank or a non-finite
//! sample raises a `ValueError` or `TypeError` naming the argument. Outputs are numpy arrays that own
//! the engine's result buffers (no copy). Compute runs with the GIL released; errors of the engine raise
//! `aural.AuralError` with the message the CLI prints.

use std::path::PathBuf;

use aural::models::ast::AstModel;
use aural::models::ast_sed::{AstSed, DetectOpts};
use aural::models::audio;
use aural::models::separator::{label_passes, separate_long, ChunkOpts, Conditioning, ResUNet};
use aural::runtime::ops::fbank::{fbank as fbank_op, AstNorm, FbankOpts, FbankPlan, Window};
use aural::runtime::{Device, Tensor};
use numpy::{PyArray1, PyArray2, PyArray3, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

pyo3::create_exception!(_aural, AuralError, PyException, "An error of the aural engine (the message the CLI prints).");

fn engine(e: impl Into<anyhow::Error>) -> PyErr {
    AuralError::new_err(format!("{:#}", e.into()))
}

fn value(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// A waveform argument as owned f32 rows: (rows, samples). 1-D → one row.
struct Waves {
    rows: Vec<Vec<f32>>,
    batched: bool,
}

/// Whether every value is finite: a NaN/inf makes (v − v) NaN; sixteen partial sums so the pass
/// vectorises (a per-element branch or one accumulator cost a tenth of an fbank).
fn all_finite(x: &[f32]) -> bool {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder().iter().fold(0f32, |a, &v| a + (v - v));
    for c in chunks {
        for l in 0..16 {
            acc[l] += c[l] - c[l];
        }
    }
    acc.iter().sum::<f32>() + rest == 0.0
}

/// Reads `x` (float32 or float64, C-contiguous, 1-D or 2-D, finite) into rows.
fn waves(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Waves> {
    let arr = x.downcast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a numpy array (float32 or float64), got {}",
            x.get_type().name().map(|n| n.to_string()).unwrap_or_default()
        ))
    })?;
    let nd = arr.ndim();
    if nd != 1 && nd != 2 {
        return Err(value(format!("{what} must be 1-D (samples) or 2-D (rows × samples), got {nd}-D with shape {:?}", arr.shape())));
    }
    if !arr.is_c_contiguous() {
        return Err(value(format!("{what} must be C-contiguous (pass numpy.ascontiguousarray({what}))")));
    }
    let shape = arr.shape().to_vec();
    let flat: Vec<f32> = if let Ok(a) = x.downcast::<PyArrayDyn<f32>>() {
        a.readonly().as_slice().map_err(|e| value(format!("{what}: {e}")))?.to_vec()
    } else if let Ok(a) = x.downcast::<PyArrayDyn<f64>>() {
        a.readonly().as_slice().map_err(|e| value(format!("{what}: {e}")))?.iter().map(|&v| v as f32).collect()
    } else {
        return Err(PyTypeError::new_err(format!("{what} must be float32 or float64, got dtype {}", arr.dtype())));
    };
    if !all_finite(&flat) {
        let i = flat.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(value(format!("{what} has a non-finite sample (NaN or inf) at flat index {i}")));
    }
    let (r, n) = if nd == 1 { (1, shape[0]) } else { (shape[0], shape[1]) };
    if n == 0 || r == 0 {
        return Err(value(format!("{what} is empty (shape {shape:?})")));
    }
    if nd == 1 {
        return Ok(Waves { rows: vec![flat], batched: false });
    }
    Ok(Waves { rows: flat.chunks(n).map(<[f32]>::to_vec).collect(), batched: nd == 2 })
}

fn device(spec: &str) -> PyResult<Device> {
    let (d, _) = Device::parse(spec).map_err(|e| value(e.to_string()))?;
    d.check().map_err(|e| value(format!("{d} is not usable: {e}")))?;
    Ok(d)
}

fn resample(x: Vec<f32>, from: f64, to: u32) -> PyResult<Vec<f32>> {
    if !(from.is_finite() && from >= 1.0 && from.fract() == 0.0) {
        return Err(value(format!("sample_rate must be a positive whole number of Hz, got {from}")));
    }
    let from = from as u32;
    if from == to {
        return Ok(x);
    }
    let a = audio::Audio { sample_rate: from, channels: vec![x] };
    Ok(audio::resample(std::path::Path::new("<array>"), a, to).map_err(engine)?.channels.remove(0))
}

/// torchaudio.compliance.kaldi.fbank with the same options and defaults (see the .pyi).
#[pyfunction]
#[pyo3(signature = (waveform, sample_rate=None, *, sample_frequency=None, num_mel_bins=23, frame_length=25.0, frame_shift=10.0,
    window_type="povey", preemphasis_coefficient=0.97, low_freq=20.0, high_freq=0.0, dither=0.0, remove_dc_offset=true,
    round_to_power_of_two=true, use_energy=false, use_log_fbank=true, use_power=true, snip_edges=true, htk_compat=false,
    subtract_mean=false, energy_floor=1.0, raw_energy=true, vtln_warp=1.0, min_duration=0.0, channel=-1, device="cpu"))]
#[allow(clippy::too_many_arguments)]
fn fbank<'py>(
    py: Python<'py>,
    waveform: &Bound<'py, PyAny>,
    sample_rate: Option<f64>,
    sample_frequency: Option<f64>,
    num_mel_bins: usize,
    frame_length: f64,
    frame_shift: f64,
    window_type: &str,
    preemphasis_coefficient: f64,
    low_freq: f64,
    high_freq: f64,
    dither: f64,
    remove_dc_offset: bool,
    round_to_power_of_two: bool,
    use_energy: bool,
    use_log_fbank: bool,
    use_power: bool,
    snip_edges: bool,
    htk_compat: bool,
    subtract_mean: bool,
    energy_floor: f64,
    raw_energy: bool,
    vtln_warp: f64,
    min_duration: f64,
    channel: i64,
    device: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let _ = (htk_compat, energy_floor, raw_energy); // only matter with use_energy
    let rate = match (sample_rate, sample_frequency) {
        (Some(a), Some(b)) if a != b => return Err(value(format!("sample_rate {a} and sample_frequency {b} differ"))),
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => 16000.0,
    };
    for (bad, what) in [
        (dither != 0.0, "dither != 0 (random; aural's fbank is deterministic)"),
        (use_energy, "use_energy=True"),
        (!use_log_fbank, "use_log_fbank=False"),
        (!use_power, "use_power=False"),
        (!snip_edges, "snip_edges=False"),
        (vtln_warp != 1.0, "vtln_warp != 1"),
    ] {
        if bad {
            return Err(value(format!("fbank: {what} is not supported")));
        }
    }
    let window = match window_type {
        "hanning" => Window::Hanning,
        "hamming" => Window::Hamming,
        "povey" => Window::Povey,
        "rectangular" => Window::Rectangular,
        "blackman" => Window::Blackman,
        w => return Err(value(format!("fbank: window_type must be hanning, hamming, povey, rectangular or blackman, got {w:?}"))),
    };
    let w = waves(waveform, "waveform")?;
    let ch = if channel < 0 { 0 } else { channel as usize };
    let x = w.rows.into_iter().nth(ch).ok_or_else(|| value(format!("fbank: channel {channel} out of range")))?;
    if (x.len() as f64) < min_duration * rate {
        return Err(value(format!("fbank: {} samples is shorter than min_duration {min_duration} s", x.len())));
    }
    let opts = FbankOpts {
        sample_rate: rate as f32,
        num_mel_bins,
        frame_length_ms: frame_length as f32,
        frame_shift_ms: frame_shift as f32,
        preemph: preemphasis_coefficient as f32,
        low_freq: low_freq as f32,
        high_freq: high_freq as f32,
        remove_dc_offset,
        window,
        round_to_power_of_two,
        ast_norm: None,
    };
    FbankPlan::new(&opts).map_err(|e| value(format!("fbank options: {e}")))?;
    let dev = self::device(device)?;
    let (data, shape) = py
        .allow_threads(|| -> anyhow::Result<(Vec<f32>, Vec<usize>)> {
            let n = x.len();
            let t = fbank_op(&Tensor::from_vec(x, &[n])?.to_device(dev)?, &opts)?;
            let shape = t.shape().to_vec();
            let mut v = t.into_vec()?;
            if subtract_mean && shape[0] > 0 {
                let (f, m) = (shape[0], shape[1]);
                for j in 0..m {
                    let mean = (0..f).map(|i| v[i * m + j] as f64).sum::<f64>() / f as f64;
                    (0..f).for_each(|i| v[i * m + j] -= mean as f32);
                }
            }
            Ok((v, shape))
        })
        .map_err(engine)?;
    Ok(PyArray1::from_vec(py, data).reshape([shape[0], shape[1]])?)
}

/// HF ASTFeatureExtractor's `input_values` (batch × max_length × num_mel_bins).
#[pyfunction]
#[pyo3(signature = (waveform, sample_rate=16000.0, *, max_length=1024, num_mel_bins=128, mean=-4.2677393, std=4.5689974, do_normalize=true, device="cpu"))]
#[allow(clippy::too_many_arguments)]
fn ast_features<'py>(
    py: Python<'py>,
    waveform: &Bound<'py, PyAny>,
    sample_rate: f64,
    max_length: usize,
    num_mel_bins: usize,
    mean: f64,
    std: f64,
    do_normalize: bool,
    device: &str,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    if max_length == 0 || num_mel_bins == 0 {
        return Err(value("ast_features: max_length and num_mel_bins must be at least 1".into()));
    }
    let w = waves(waveform, "waveform")?;
    let rows = w.rows.into_iter().map(|r| resample(r, sample_rate, 16000)).collect::<PyResult<Vec<_>>>()?;
    let (m, s) = if do_normalize { (mean as f32, std as f32) } else { (0.0, 0.5) };
    let opts = FbankOpts { num_mel_bins, window: Window::Hanning, ast_norm: Some(AstNorm { max_length, mean: m, std: s }), ..Default::default() };
    let dev = self::device(device)?;
    let b = rows.len();
    let data = py
        .allow_threads(|| -> anyhow::Result<Vec<f32>> {
            let mut out = Vec::with_capacity(b * max_length * num_mel_bins);
            for r in rows {
                let n = r.len();
                out.extend(fbank_op(&Tensor::from_vec(r, &[n])?.to_device(dev)?, &opts)?.into_vec()?);
            }
            Ok(out)
        })
        .map_err(engine)?;
    Ok(PyArray1::from_vec(py, data).reshape([b, max_length, num_mel_bins])?)
}

/// An AST backbone from an HF checkpoint directory (see the .pyi).
#[pyclass(frozen, module = "aural._aural")]
struct AST {
    model: AstModel,
}

#[pymethods]
impl AST {
    #[new]
    #[pyo3(signature = (model_dir, device="auto"))]
    fn new(py: Python<'_>, model_dir: PathBuf, device: &str) -> PyResult<AST> {
        let dev = self::device(device)?;
        let model = py
            .allow_threads(|| AstModel::load(&model_dir, dev, None))
            .map_err(|e| engine(anyhow::Error::new(e).context(format!("loading the AST checkpoint {}", model_dir.display()))))?;
        Ok(AST { model })
    }

    /// Hidden states of each clip: (tokens, D) for a 1-D input, (batch, tokens, D) for 2-D.
    #[pyo3(signature = (waveform, sample_rate=16000.0, layer=None, pooled=false))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        waveform: &Bound<'py, PyAny>,
        sample_rate: f64,
        layer: Option<usize>,
        pooled: bool,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let c = &self.model.config;
        if let Some(k) = layer {
            if k > self.model.layers.len() {
                return Err(value(format!("layer {k} out of range: the model has {} blocks (0 = the embeddings)", self.model.layers.len())));
            }
        }
        let w = waves(waveform, "waveform")?;
        let batched = w.batched;
        let rows = w.rows.into_iter().map(|r| resample(r, sample_rate, 16000)).collect::<PyResult<Vec<_>>>()?;
        let opts = FbankOpts { num_mel_bins: c.num_mel_bins, ast_norm: Some(AstNorm { max_length: c.max_length, ..AstNorm::AUDIOSET }), ..Default::default() };
        let (b, t, d) = (rows.len(), c.seq_len(), c.hidden_size);
        let model = &self.model;
        let data = py
            .allow_threads(|| -> anyhow::Result<Vec<f32>> {
                let mut x = Vec::with_capacity(b * c.max_length * c.num_mel_bins);
                for r in rows {
                    let n = r.len();
                    x.extend(fbank_op(&Tensor::from_vec(r, &[n])?.to_device(model.device)?, &opts)?.to_vec()?);
                }
                let x = Tensor::from_vec(x, &[b, c.max_length, c.num_mel_bins])?.to_device(model.device)?;
                let h = match layer {
                    Some(k) => model.hidden_state(&x, k)?,
                    None => model.forward(&x)?,
                };
                let h = if pooled { model.pooled(&h)? } else { h };
                Ok(h.to_device(Device::Cpu)?.to_vec()?)
            })
            .map_err(engine)?;
        let shape: Vec<usize> = match (pooled, batched) {
            (true, true) => vec![b, d],
            (true, false) => vec![d],
            (false, true) => vec![b, t, d],
            (false, false) => vec![t, d],
        };
        Ok(PyArray1::from_vec(py, data).reshape(shape)?)
    }

    /// The HF config's main fields.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.model.config;
        let d = PyDict::new(py);
        d.set_item("hidden_size", c.hidden_size)?;
        d.set_item("num_hidden_layers", self.model.layers.len())?;
        d.set_item("num_attention_heads", c.num_attention_heads)?;
        d.set_item("max_length", c.max_length)?;
        d.set_item("num_mel_bins", c.num_mel_bins)?;
        d.set_item("tokens", c.seq_len())?;
        Ok(d)
    }
}

/// An AST-SED / AST-GRU sound event detector (see the .pyi).
#[pyclass(frozen, subclass, module = "aural._aural")]
struct SoundEventDetector {
    model: AstSed,
    source: String,
}

#[pymethods]
impl SoundEventDetector {
    #[new]
    #[pyo3(signature = (model_dir=None, device="auto"))]
    fn new(py: Python<'_>, model_dir: Option<PathBuf>, device: &str) -> PyResult<SoundEventDetector> {
        let dev = self::device(device)?;
        let (model, source) = match model_dir {
            Some(d) => (
                py.allow_threads(|| AstSed::load(&d, dev))
                    .map_err(|e| engine(anyhow::Error::new(e).context(format!("loading the AST-SED checkpoint {}", d.display()))))?,
                d.display().to_string(),
            ),
            None => (py.allow_threads(|| aural::demo::load(dev)).map_err(engine)?, aural::demo::NAME.to_string()),
        };
        Ok(SoundEventDetector { model, source })
    }

    /// The class names, in the order of the score columns.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.model.config.classes.clone()
    }

    /// Seconds per output frame.
    #[getter]
    fn frame_hop(&self) -> f64 {
        self.model.config.geometry().hop_s
    }

    /// Where the weights came from (a directory or the builtin demo model).
    #[getter]
    fn source(&self) -> String {
        self.source.clone()
    }

    /// (strong, weak): frame probabilities (frames × classes) and clip probabilities (classes), float32.
    #[pyo3(signature = (waveform, sample_rate=16000.0))]
    fn scores<'py>(&self, py: Python<'py>, waveform: &Bound<'py, PyAny>, sample_rate: f64) -> PyResult<(Bound<'py, PyArray2<f32>>, Bound<'py, PyArray1<f32>>)> {
        let x = self.mono(waveform, sample_rate)?;
        let sc = py.allow_threads(|| self.model.detect(&x, &DetectOpts { keep_fbank: false, ..Default::default() })).map_err(engine)?;
        let (f, k) = (sc.strong.frames, sc.strong.classes);
        Ok((PyArray1::from_vec(py, sc.strong.data).reshape([f, k])?, PyArray1::from_vec(py, sc.weak)))
    }

    /// Events after the model's post-processing: a list of (onset, offset, label).
    #[pyo3(signature = (waveform, sample_rate=16000.0))]
    fn events(&self, py: Python<'_>, waveform: &Bound<'_, PyAny>, sample_rate: f64) -> PyResult<Vec<(f64, f64, String)>> {
        let x = self.mono(waveform, sample_rate)?;
        let dur = x.len() as f64 / self.model.config.sample_rate as f64;
        let ev = py
            .allow_threads(|| -> anyhow::Result<Vec<aural::models::sed::Event>> {
                let sc = self.model.detect(&x, &DetectOpts { keep_fbank: false, ..Default::default() })?;
                let mut pp = self.model.config.post_process()?;
                pp.clip_duration = Some(dur);
                Ok(pp.events("clip", &sc.strong)?)
            })
            .map_err(engine)?;
        Ok(ev.into_iter().map(|e| (e.onset, e.offset, e.event_label)).collect())
    }

    /// Times `reps` Rust calls of the detector on `waveform` (no Python in the loop): the median
    /// seconds, for the overhead benchmark.
    #[pyo3(signature = (waveform, reps=5))]
    fn _rust_seconds(&self, py: Python<'_>, waveform: &Bound<'_, PyAny>, reps: usize) -> PyResult<f64> {
        let x = self.mono(waveform, self.model.config.sample_rate as f64)?;
        py.allow_threads(|| -> anyhow::Result<f64> {
            let mut t = Vec::new();
            for _ in 0..reps.max(1) {
                let s = std::time::Instant::now();
                std::hint::black_box(self.model.detect(&x, &DetectOpts { keep_fbank: false, ..Default::default() })?);
                t.push(s.elapsed().as_secs_f64());
            }
            t.sort_by(f64::total_cmp);
            Ok(t[t.len() / 2])
        })
        .map_err(engine)
    }
}

impl SoundEventDetector {
    fn mono(&self, waveform: &Bound<'_, PyAny>, sample_rate: f64) -> PyResult<Vec<f32>> {
        let w = waves(waveform, "waveform")?;
        if w.batched && w.rows.len() != 1 {
            return Err(value(format!("waveform: one clip (1-D samples) expected, got {} rows; call once per clip", w.rows.len())));
        }
        resample(w.rows.into_iter().next().unwrap(), sample_rate, self.model.config.sample_rate)
    }
}

/// A label- or query-conditioned ResUNet separator (see the .pyi).
#[pyclass(frozen, module = "aural._aural")]
struct Separator {
    model: ResUNet,
}

#[pymethods]
impl Separator {
    #[new]
    #[pyo3(signature = (model_dir, device="auto"))]
    fn new(py: Python<'_>, model_dir: PathBuf, device: &str) -> PyResult<Separator> {
        let dev = self::device(device)?;
        let model = py
            .allow_threads(|| ResUNet::load(&model_dir, dev))
            .map_err(|e| engine(anyhow::Error::new(e).context(format!("loading the separator checkpoint {}", model_dir.display()))))?;
        if model.config.needs_sed() {
            return Err(value(format!(
                "{}: this separator is conditioned by its SED model (CP-JKU): run it with `aural separate --sed` or `aural s5`",
                model_dir.display()
            )));
        }
        Ok(Separator { model })
    }

    /// The class names a label-conditioned model takes.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.model.config.classes.clone()
    }

    /// The model's sample rate (Hz) and input channel count.
    #[getter]
    fn sample_rate(&self) -> u32 {
        self.model.config.sample_rate
    }

    #[getter]
    fn channels(&self) -> usize {
        self.model.config.input_channels
    }

    /// {label: (output_channels × samples) float32} for a (channels × samples) mixture.
    #[pyo3(signature = (mixture, sample_rate, labels=None, *, query=None, chunk=10.0, overlap=1.0))]
    #[allow(clippy::too_many_arguments)]
    fn separate<'py>(
        &self,
        py: Python<'py>,
        mixture: &Bound<'py, PyAny>,
        sample_rate: f64,
        labels: Option<Vec<String>>,
        query: Option<&Bound<'py, PyAny>>,
        chunk: f64,
        overlap: f64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.model.config;
        if !(chunk.is_finite() && chunk > 0.0 && overlap.is_finite() && overlap >= 0.0 && overlap < chunk) {
            return Err(value(format!("chunk must be > 0 seconds and overlap in [0, chunk), got {chunk} and {overlap}")));
        }
        let w = waves(mixture, "mixture")?;
        let rows = if w.batched { w.rows } else { vec![w.rows.into_iter().next().unwrap()] };
        if rows.len() != c.input_channels {
            return Err(value(format!("mixture has {} channel(s) but this separator takes {} (pass channels × samples)", rows.len(), c.input_channels)));
        }
        let rows = rows.into_iter().map(|r| resample(r, sample_rate, c.sample_rate)).collect::<PyResult<Vec<_>>>()?;
        let n = rows[0].len();
        if n <= c.window_size / 2 {
            return Err(value(format!("mixture: {n} samples at {} Hz is too short (more than n_fft/2 = {} needed)", c.sample_rate, c.window_size / 2)));
        }
        // (condition vector, output names) per pass
        let passes: Vec<(Vec<f32>, Vec<Option<String>>)> = match c.conditioning {
            Conditioning::Query => {
                let q = query.ok_or_else(|| value(format!("this separator is conditioned on a query vector: pass query= ({} values)", c.condition_size)))?;
                let q = waves(q, "query")?.rows.concat();
                if q.len() != c.condition_size {
                    return Err(value(format!("query has {} values; the model takes {}", q.len(), c.condition_size)));
                }
                vec![(q, vec![Some("query".into())])]
            }
            Conditioning::Label => {
                let labels = labels
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| value(format!("give labels=[...]; the separator's classes are: {}", c.classes.join(", "))))?;
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                label_passes(c, &labels).map_err(engine)?
            }
        };
        let opts = ChunkOpts { chunk_s: chunk, overlap_s: overlap };
        let o = c.output_channels;
        let outs = py
            .allow_threads(|| -> anyhow::Result<Vec<(String, Vec<f32>)>> {
                let mut out = Vec::new();
                for (cond, names) in &passes {
                    let y = separate_long(&self.model, &rows, cond, &opts, |_, _| {})?.to_vec()?;
                    for (slot, name) in names.iter().enumerate() {
                        if let Some(name) = name {
                            out.push((name.clone(), y[slot * o * n..(slot + 1) * o * n].to_vec()));
                        }
                    }
                }
                Ok(out)
            })
            .map_err(engine)?;
        let d = PyDict::new(py);
        for (name, y) in outs {
            d.set_item(name, PyArray1::from_vec(py, y).reshape([o, n])?)?;
        }
        Ok(d)
    }
}

/// The usable devices, best first (`cuda:N` where a GPU is usable, then `cpu`).
#[pyfunction]
fn devices() -> Vec<String> {
    let mut v = Vec::new();
    for n in 0..16 {
        if Device::Cuda(n).check().is_ok() {
            v.push(format!("cuda:{n}"));
        } else {
            break;
        }
    }
    v.push("cpu".into());
    v
}

/// What `auto` picks and why, and the version: {"auto": "cpu", "why": "...", "version": "..."}.
#[pyfunction]
fn doctor(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let (d, why) = Device::auto();
    let out = PyDict::new(py);
    out.set_item("version", env!("CARGO_PKG_VERSION"))?;
    out.set_item("auto", d.to_string())?;
    out.set_item("why", why)?;
    out.set_item("devices", devices())?;
    out.set_item("threads", rayon_threads())?;
    Ok(out)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[pymodule]
fn _aural(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AuralError", m.py().get_type::<AuralError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(fbank, m)?)?;
    m.add_function(wrap_pyfunction!(ast_features, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(doctor, m)?)?;
    m.add_class::<AST>()?;
    m.add_class::<SoundEventDetector>()?;
    m.add_class::<Separator>()?;
    Ok(())
}
