//! The run directory and what every trainer (`trainer sed`, `trainer separator`) shares: the command
//! line and the run's configuration copy ([`RunArgs`], [`start`]), atomic checkpoint directories, the
//! JSONL logs, the optimizer state in checkpoints ([`optimizer_tensors`], [`restore_optimizer`]), the
//! learning-rate schedule, the mean-teacher formulas, the progress bar and the curves.
//!
//! ## Checkpoints survive a kill at any moment
//! A checkpoint `NAME` (`last`, `best`) is written whole into `RUN/.NAME.tmp/`, then swapped in:
//! `NAME` → `.NAME.old`, `.NAME.tmp` → `NAME`, `.NAME.old` removed. A kill before the first rename
//! leaves the previous `NAME` untouched (the half-written `.NAME.tmp` is never read, and is removed by
//! the next write); a kill between the renames leaves the previous checkpoint as `.NAME.old`, which
//! [`RunDir::checkpoint`] returns when `NAME` is missing. Files inside are complete before the first
//! rename, so a directory named `NAME` is always a complete checkpoint.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use aural_autograd::optim::AdamW;
use aural_autograd::ParamStore;
use aural_runtime::{Device, Tensor};
use serde_json::{json, Value};

use crate::config::ScheduleCfg;

/// The command line every trainer takes.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// The training configuration (TOML; README has complete examples). With --resume: optional, and
    /// when given it must equal the run's own copy (RUN_DIR/train.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The run directory to create (last/, best/, log.jsonl, validation.jsonl, curves.png).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this global step (the schedules still follow the config's length).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Device: auto, cpu, cuda[:N], emu.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A started run: its folder, configuration, device and whether it resumes.
pub struct Started<C> {
    pub run: RunDir,
    pub cfg: C,
    pub resume: bool,
    pub device: Device,
}

/// Opens the device and the run directory of `a`: a new run copies its configuration into
/// RUN_DIR/train.toml (and the folder its relative paths are taken from into train.base); a resumed
/// run reads that copy back (a `--config` given with `--resume` must equal it). `parse(text, path,
/// base)` parses and validates a configuration.
pub fn start<C>(a: &RunArgs, parse: impl Fn(&str, &Path, &Path) -> Result<C>) -> Result<Started<C>> {
    let (dev, why) = Device::parse(&a.device)?;
    dev.check().map_err(|e| anyhow!("{dev} is not usable: {e}"))?;
    let (root, resume) = match (&a.out, &a.resume) {
        (Some(o), None) => (o.clone(), false),
        (None, Some(r)) => (r.clone(), true),
        _ => bail!("give --out RUN_DIR (a new run) or --resume RUN_DIR"),
    };
    let run = RunDir::open(&root, resume)?;
    let saved = root.join("train.toml");
    let cfg = if resume {
        if !saved.exists() {
            bail!("{}: not a run directory (no train.toml)", root.display());
        }
        if let Some(c) = &a.config {
            let (x, y) = (std::fs::read(c).with_context(|| format!("reading {}", c.display()))?, std::fs::read(&saved)?);
            if x != y {
                bail!(
                    "{} differs from the run's configuration {}: a resumed run keeps its configuration (start a new run to change it)",
                    c.display(),
                    saved.display()
                );
            }
        }
        // The run's copy, with relative paths taken from the original config's folder.
        let base = std::fs::read_to_string(root.join("train.base")).with_context(|| format!("reading {}/train.base", root.display()))?;
        parse(&std::fs::read_to_string(&saved)?, &saved, Path::new(base.trim()))?
    } else {
        let cfg_path = a.config.as_ref().ok_or_else(|| anyhow!("--config FILE is required for a new run"))?;
        let text = std::fs::read_to_string(cfg_path).with_context(|| format!("reading {}", cfg_path.display()))?;
        let base_dir = cfg_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let c = parse(&text, cfg_path, base_dir)?;
        std::fs::write(&saved, text.as_bytes()).with_context(|| format!("writing {}", saved.display()))?;
        let base = std::fs::canonicalize(base_dir)?;
        std::fs::write(root.join("train.base"), base.to_string_lossy().as_bytes())?;
        c
    };
    eprintln!("device: {dev} ({why})");
    Ok(Started { run, cfg, resume, device: dev })
}

/// The progress bar of a run (hidden with `quiet`).
pub fn progress(quiet: bool, end: u64, pos: u64) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(end);
    b.set_style(indicatif::ProgressStyle::with_template("{bar:30} step {pos}/{len} {elapsed} ETA {eta} {msg}").expect("valid template"));
    b.set_position(pos);
    b
}

/// The AdamW moments as checkpoint tensors (`adam.exp_avg/NAME`, `adam.exp_avg_sq/NAME`, and with
/// amsgrad `adam.max_exp_avg_sq/NAME`) and the step counts by name (a JSON object).
pub fn optimizer_tensors(opt: &AdamW) -> (Vec<(String, Tensor)>, Value) {
    let mut tensors = Vec::new();
    let mut steps = serde_json::Map::new();
    for s in opt.state() {
        let name = s.name;
        tensors.push((format!("adam.exp_avg/{name}"), s.exp_avg.clone()));
        tensors.push((format!("adam.exp_avg_sq/{name}"), s.exp_avg_sq.clone()));
        if let Some(x) = s.max_exp_avg_sq {
            tensors.push((format!("adam.max_exp_avg_sq/{name}"), x.clone()));
        }
        steps.insert(name.to_string(), json!(s.step));
    }
    (tensors, Value::Object(steps))
}

/// Restores what [`optimizer_tensors`] wrote: `steps` (from `sp`, the state JSON) names the
/// parameters, `file` (read from `tp`) holds their moments; every name and shape is checked against
/// `store`. `adam.max_exp_avg_sq/NAME` is optional (absent in checkpoints of runs without amsgrad).
pub fn restore_optimizer(
    opt: &mut AdamW,
    store: &ParamStore,
    file: &mut BTreeMap<String, Tensor>,
    steps: &Value,
    sp: &Path,
    tp: &Path,
    device: Device,
) -> Result<()> {
    let steps = steps.as_object().ok_or_else(|| anyhow!("{}: no adam_steps", sp.display()))?;
    for (name, st) in steps {
        let want = store.get(name).map_err(|_| anyhow!("{}: optimizer state for '{name}', which the model does not have", tp.display()))?;
        let mut get = |k: &str, required: bool| -> Result<Option<Tensor>> {
            let key = format!("{k}/{name}");
            let Some(t) = file.remove(&key) else {
                if required {
                    bail!("{}: tensor '{key}' is missing", tp.display());
                }
                return Ok(None);
            };
            if t.shape() != want.shape() {
                bail!("{}: '{key}' has shape {:?}, the parameter {:?}", tp.display(), t.shape(), want.shape());
            }
            Ok(Some(t.to_device(device)?))
        };
        let m = get("adam.exp_avg", true)?.expect("required");
        let v = get("adam.exp_avg_sq", true)?.expect("required");
        let vmax = get("adam.max_exp_avg_sq", false)?;
        opt.set_state(name, st.as_u64().ok_or_else(|| anyhow!("{}: bad step count of '{name}'", sp.display()))?, m, v, vmax)?;
    }
    Ok(())
}

/// Writes a trainer's state into checkpoint directory `d`: `trainer_state.safetensors` (`tensors`,
/// then the AdamW moments of [`optimizer_tensors`]) and `trainer_state.json` (`state` with the AdamW
/// step counts added as `adam_steps`).
pub fn write_trainer_state(d: &Path, opt: &AdamW, mut tensors: Vec<(String, Tensor)>, mut state: Value) -> Result<()> {
    let (adam, steps) = optimizer_tensors(opt);
    tensors.extend(adam);
    aural_runtime::safetensors_io::save(d.join("trainer_state.safetensors"), tensors.iter().map(|(k, t)| (k.as_str(), t)))?;
    state["adam_steps"] = steps;
    std::fs::write(d.join("trainer_state.json"), serde_json::to_string_pretty(&state)?)?;
    Ok(())
}

/// What [`write_trainer_state`] wrote, read back from `dir` and checked: its `format` must be
/// `format` (a state of another trainer is an error naming `command`); `step` and `best`
/// (`{"value", "step"}` or null) are parsed.
pub struct SavedState {
    pub json: Value,
    pub json_path: PathBuf,
    pub tensors: BTreeMap<String, Tensor>,
    pub tensors_path: PathBuf,
    pub step: u64,
    pub best: Option<(f64, u64)>,
}

pub fn read_trainer_state(dir: &Path, format: &str, command: &str) -> Result<SavedState> {
    let sp = dir.join("trainer_state.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&sp).with_context(|| format!("reading {}", sp.display()))?)
        .with_context(|| format!("{}", sp.display()))?;
    if json["format"] != format {
        bail!("{}: not a `{command}` state (format {})", sp.display(), json["format"]);
    }
    let step = json["step"].as_u64().ok_or_else(|| anyhow!("{}: no step", sp.display()))?;
    let best = json["best"].as_object().and_then(|b| Some((b.get("value")?.as_f64()?, b.get("step")?.as_u64()?)));
    let tp = dir.join("trainer_state.safetensors");
    let tensors = aural_runtime::safetensors_io::load(&tp).with_context(|| format!("reading {}", tp.display()))?;
    Ok(SavedState { json, json_path: sp, tensors, tensors_path: tp, step, best })
}

/// A training run's output folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// Creates `root` (a fresh run: it must not hold a checkpoint yet) or opens it (resume).
    pub fn open(root: &Path, resume: bool) -> Result<RunDir> {
        let r = RunDir { root: root.to_path_buf() };
        if !resume && r.checkpoint("last").is_some() {
            bail!("{} already holds a run (last/): resume it with --resume {0}, or choose another --out", root.display());
        }
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
        Ok(r)
    }

    /// The complete checkpoint `name`, if any (see the module doc).
    pub fn checkpoint(&self, name: &str) -> Option<PathBuf> {
        let d = self.root.join(name);
        if d.is_dir() {
            return Some(d);
        }
        let old = self.root.join(format!(".{name}.old"));
        old.is_dir().then_some(old)
    }

    /// Writes checkpoint `name` through `write(dir)` (which fills an empty directory) and swaps it in.
    pub fn write_checkpoint(&self, name: &str, write: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        let tmp = self.root.join(format!(".{name}.tmp"));
        let old = self.root.join(format!(".{name}.old"));
        let dst = self.root.join(name);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("removing the unfinished {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        if let Err(e) = write(&tmp) {
            // A failed write (a full disk) leaves the previous checkpoint alone and frees its space.
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.context(format!("writing checkpoint {name} into {}", tmp.display())));
        }
        if dst.is_dir() {
            if old.exists() {
                std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
            }
            std::fs::rename(&dst, &old).with_context(|| format!("renaming {} to {}", dst.display(), old.display()))?;
        }
        std::fs::rename(&tmp, &dst).with_context(|| format!("renaming {} to {}", tmp.display(), dst.display()))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        }
        Ok(dst)
    }

    /// Appends one JSON object as a line of `RUN/file`.
    pub fn append(&self, file: &str, v: &Value) -> Result<()> {
        let p = self.root.join(file);
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&p).with_context(|| format!("opening {}", p.display()))?;
        writeln!(f, "{v}").with_context(|| format!("writing {}", p.display()))
    }

    /// The objects of `RUN/file` (missing file: none). A line that is not JSON (a write cut by a
    /// kill) ends the log.
    pub fn read_log(&self, file: &str) -> Result<Vec<Value>> {
        let p = self.root.join(file);
        let Ok(text) = std::fs::read_to_string(&p) else { return Ok(Vec::new()) };
        Ok(text.lines().map_while(|l| serde_json::from_str::<Value>(l).ok()).collect())
    }

    /// Keeps the lines of `RUN/file` whose `step` is at most `step` (a resumed run rewrites what came
    /// after its checkpoint), atomically.
    pub fn truncate_log(&self, file: &str, step: u64) -> Result<()> {
        let p = self.root.join(file);
        if !p.exists() {
            return Ok(());
        }
        let kept: String = self.read_log(file)?.iter().filter(|v| v["step"].as_u64().is_some_and(|s| s <= step)).map(|v| format!("{v}\n")).collect();
        let tmp = self.root.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, kept).and_then(|_| std::fs::rename(&tmp, &p)).with_context(|| format!("rewriting {}", p.display()))
    }
}

/// The learning-rate factor at optimizer step `step` (0-based) of `total`, with `per_epoch` steps per
/// epoch: warm-up (linear (s + 1)/W, or the DESED baseline's exp(−5(1 − s/W)²)), then constant,
/// `exp` (constant for `constant_steps`, then ×gamma per epoch, continuously) or `cosine` (from 1
/// down to `min_factor` at the last step).
pub fn lr_factor(s: &ScheduleCfg, step: u64, total: u64, per_epoch: u64) -> f64 {
    let w = s.warmup_steps;
    if step < w {
        return match s.warmup.as_str() {
            "exp" => exp_rampup(step, w),
            _ => (step + 1) as f64 / w as f64,
        };
    }
    let t = step - w;
    let rest = total.saturating_sub(w).max(1);
    match s.kind.as_str() {
        "constant" => 1.0,
        "cosine" => {
            let p = (t as f64 / (rest.saturating_sub(1)).max(1) as f64).min(1.0);
            s.min_factor + (1.0 - s.min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        _ => {
            let c = s.constant_steps.unwrap_or(rest / 2);
            if t < c {
                1.0
            } else {
                s.gamma.powf((t - c) as f64 / per_epoch.max(1) as f64)
            }
        }
    }
}

/// The DESED baseline's exponential ramp-up: exp(−5(1 − min(current, length)/length)²); 1 when the
/// length is 0.
pub fn exp_rampup(current: u64, length: u64) -> f64 {
    if length == 0 {
        return 1.0;
    }
    let phase = 1.0 - current.min(length) as f64 / length as f64;
    (-5.0 * phase * phase).exp()
}

/// The mean teacher's EMA factor after optimizer step `global_step` (1-based: the DESED baseline's
/// scheduler `step_num`): min(1 − 1/(global_step + 1), max) — the true average until the exponential
/// one is more accurate.
pub fn ema_alpha(global_step: u64, max: f64) -> f64 {
    (1.0 - 1.0 / (global_step as f64 + 1.0)).min(max)
}

/// Writes the curves PNG: the losses of `log` (one point per logged step) and the validation metrics.
pub fn plot_curves(path: &Path, steps: &[Value], vals: &[Value], losses: &[&str], metrics: &[(&str, &str)]) -> Result<()> {
    use plotters::prelude::*;
    let text = aural_models::plot::font_ready();
    let tmp = path.with_file_name(format!(".{}.tmp.png", path.file_stem().unwrap_or_default().to_string_lossy()));
    {
        let root = BitMapBackend::new(&tmp, (1100, 800)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(400);
        let palette =
            [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40), RGBColor(148, 103, 189), RGBColor(140, 86, 75)];
        let series = |rows: &[Value], key: &str| -> Vec<(f64, f64)> {
            rows.iter()
                .filter_map(|v| {
                    let mut x = v;
                    for k in key.split('.') {
                        x = &x[k];
                    }
                    Some((v["step"].as_f64()?, x.as_f64()?))
                })
                .collect()
        };
        for (area, rows, keys, title) in
            [(&top, steps, losses.iter().map(|k| (*k, *k)).collect::<Vec<_>>(), "training losses"), (&bottom, vals, metrics.to_vec(), "validation")]
        {
            let all: Vec<Vec<(f64, f64)>> = keys.iter().map(|(k, _)| series(rows, k)).collect();
            let pts = all.iter().flatten();
            let (x0, x1) = pts.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
            let (y0, y1) = pts.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
            if !x0.is_finite() || !y0.is_finite() {
                continue;
            }
            let (x1, y1) = (if x1 > x0 { x1 } else { x0 + 1.0 }, if y1 > y0 { y1 } else { y0 + 1e-3 });
            let mut b = ChartBuilder::on(area);
            b.margin(12).x_label_area_size(if text { 30 } else { 0 }).y_label_area_size(if text { 55 } else { 0 });
            if text {
                b.caption(title, ("sans-serif", 18));
            }
            let mut chart = b.build_cartesian_2d(x0..x1, y0..y1 + (y1 - y0) * 0.05)?;
            if text {
                chart.configure_mesh().x_desc("step").draw()?;
            }
            for (i, ((_, label), s)) in keys.iter().zip(&all).enumerate() {
                let c = palette[i % palette.len()];
                let ser = chart.draw_series(LineSeries::new(s.iter().copied(), c.stroke_width(2)))?;
                if text {
                    ser.label(*label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
                }
            }
            if text {
                chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
            }
        }
        root.present()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
