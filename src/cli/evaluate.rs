//! `aural evaluate`: the DCASE SED metrics (models::sed::metrics) of thresholded events or of
//! per-file score tables against a strong-label reference.
//!
//! Every file of the durations TSV is evaluated (a detection in a file without reference events is
//! a false positive; the DESED baseline's scripts only loop over the files that have reference
//! events). Classes are the union of the reference and predicted labels (`--predictions`) or the
//! score tables' columns (`--scores`), unless `--classes` names them. Prints a table; `--json`
//! writes every number with stable keys, `--plot` the PSD-ROC curves; `--tune` writes the per-class
//! thresholds and median filters with the best event-based F1 (models::sed::metrics::tune).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use aural::models::sed::metrics::event_based::EventParams;
use aural::models::sed::metrics::report::{self, desed_thresholds, EvalOptions, Predictions, Which};
use aural::models::sed::metrics::{io, tune, PsdsParams};
use aural::models::sed::MedianOn;
use serde_json::{json, Value};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("pred").required(true).args(["predictions", "scores"])))]
pub struct Args {
    /// Reference strong labels: TSV `filename onset offset event_label` with a header.
    #[arg(long, value_name = "GT.tsv")]
    reference: PathBuf,
    /// Durations: TSV `filename duration`; every file listed is evaluated.
    #[arg(long, value_name = "DUR.tsv")]
    durations: PathBuf,
    /// Thresholded events (what `aural detect --tsv` writes): event- and segment-based metrics.
    #[arg(long, value_name = "P.tsv")]
    predictions: Option<PathBuf>,
    /// Per-file score tables `<file id>.tsv` (`onset offset <class>…`, what `aural detect
    /// --scores-dir` writes): event- and segment-based metrics at --threshold, PSDS1/PSDS2 and the
    /// PSDS on the operating points.
    #[arg(long, value_name = "DIR")]
    scores: Option<PathBuf>,
    /// Write every number as JSON (stable keys: event_based.f1_macro, psds1, …).
    #[arg(long, value_name = "OUT.json")]
    json: Option<PathBuf>,
    /// Draw the PSD-ROC curves (with --scores) to a PNG.
    #[arg(long, value_name = "PSDROC.png", requires = "scores")]
    plot: Option<PathBuf>,
    /// The class list, comma-separated (default: the labels seen, or the score tables' columns).
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
    /// Event-based onset collar in seconds.
    #[arg(long, default_value_t = 0.2)]
    t_collar: f64,
    /// Event-based offset tolerance as a share of the reference event's length.
    #[arg(long, default_value_t = 0.2)]
    percentage_of_length: f64,
    /// Segment length of the segment-based metrics in seconds.
    #[arg(long, default_value_t = 1.0)]
    segment: f64,
    /// With --scores: the threshold for the event/segment-based metrics (active when score > t).
    #[arg(long, default_value_t = 0.5)]
    threshold: f64,
    /// With --scores: median filter window in frames (1 = none), before any thresholding.
    #[arg(long, default_value_t = 1)]
    median_filter: usize,
    /// Where the median filter runs: on the scores (DESED 2023+) or on the 0/1 decisions (2022).
    #[arg(long, value_enum, default_value = "scores")]
    median_on: MedianArg,
    /// PSDS1 parameters to change, `key=value,…` with keys dtc, gtc, cttc (a number or none),
    /// alpha_ct, alpha_st, max_efpr, unit (hour, minute, second). Default
    /// dtc=0.7,gtc=0.7,cttc=none,alpha_ct=0,alpha_st=1,max_efpr=100,unit=hour.
    #[arg(long, value_name = "K=V,…")]
    psds1: Option<String>,
    /// PSDS2 parameters to change (as --psds1). Default
    /// dtc=0.1,gtc=0.1,cttc=0.3,alpha_ct=0.5,alpha_st=1,max_efpr=100,unit=hour.
    #[arg(long, value_name = "K=V,…")]
    psds2: Option<String>,
    /// Compute only these metrics, comma-separated: event, segment, psds1, psds2, psds1_op, psds2_op,
    /// psds (the four PSDS). Default: all that the input allows.
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Operating points of the psds_eval PSDS: thresholds 1/(2n), 3/(2n), … (the DESED baseline's 50).
    #[arg(long, default_value_t = 50)]
    operating_points: usize,
    /// With --scores: tune each class's threshold and median filter for the best event-based F1
    /// over --tune-thresholds × --tune-medians, and write them as `threshold` and `median_filter`
    /// ({class: value}) into this JSON file: an AST-SED config.json is updated in place (its other
    /// keys kept), any other path gets a new file with the two keys and the F1s.
    #[arg(long, value_name = "CONFIG.json", requires = "scores")]
    tune: Option<PathBuf>,
    /// Median-filter windows (output frames) tried by --tune.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,7,9,11,15,21,31")]
    tune_medians: Vec<usize>,
    /// Thresholds tried by --tune: FROM:TO:STEP or a comma-separated list.
    #[arg(long, default_value = "0.05:0.95:0.05")]
    tune_thresholds: String,
}

/// `FROM:TO:STEP` (inclusive) or `a,b,…`.
fn threshold_grid(s: &str) -> Result<Vec<f64>> {
    let num =
        |t: &str| t.trim().parse::<f64>().ok().filter(|x| (0.0..=1.0).contains(x)).ok_or_else(|| anyhow!("--tune-thresholds: {t:?} is not a number in [0, 1]"));
    let parts: Vec<&str> = s.split(':').collect();
    let v: Vec<f64> = if parts.len() == 3 {
        let (a, b, st) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
        if !(st > 0.0) || b < a {
            bail!("--tune-thresholds {s}: expected FROM:TO:STEP with FROM ≤ TO and STEP > 0");
        }
        (0..).map(|i| a + i as f64 * st).take_while(|t| *t <= b + 1e-9).map(|t| (t * 1e6).round() / 1e6).collect()
    } else {
        s.split(',').map(num).collect::<Result<_>>()?
    };
    if v.is_empty() {
        bail!("--tune-thresholds: empty");
    }
    Ok(v)
}

/// Writes the tuned settings (see `Args::tune`).
fn write_tuned(path: &Path, tuned: &[tune::Tuned]) -> Result<()> {
    let thr: serde_json::Map<String, Value> = tuned.iter().map(|t| (t.class.clone(), json!(t.threshold))).collect();
    let med: serde_json::Map<String, Value> = tuned.iter().map(|t| (t.class.clone(), json!(t.median))).collect();
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(serde_json::from_str::<Value>(&text).with_context(|| format!("--tune {}: not valid JSON", path.display()))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("--tune {}: {e}", path.display()),
    };
    let v = match existing {
        Some(mut c) if c.get("architecture").is_some() || c.get("classes").is_some() => {
            let obj = c.as_object_mut().ok_or_else(|| anyhow!("--tune {}: not a JSON object", path.display()))?;
            obj.insert("threshold".into(), Value::Object(thr));
            obj.insert("median_filter".into(), Value::Object(med));
            c
        }
        _ => {
            let f1: serde_json::Map<String, Value> = tuned.iter().map(|t| (t.class.clone(), json!(if t.f1.is_nan() { None } else { Some(t.f1) }))).collect();
            json!({"threshold": thr, "median_filter": med, "event_f1": f1})
        }
    };
    super::write_atomic(path, (serde_json::to_string_pretty(&v)? + "\n").as_bytes())
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MedianArg {
    Scores,
    Binary,
}

/// `key=value,…` over the defaults `base`.
fn psds_params(base: PsdsParams, spec: Option<&str>, what: &str) -> Result<PsdsParams> {
    let mut p = base;
    for kv in spec.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| anyhow!("--{what}: '{kv}' is not key=value"))?;
        let (k, v) = (k.trim(), v.trim());
        let x = || v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| anyhow!("--{what}: {k}={v} is not a number"));
        match k {
            "dtc" => p.dtc = x()?,
            "gtc" => p.gtc = x()?,
            "cttc" => p.cttc = if v == "none" { None } else { Some(x()?) },
            "alpha_ct" => p.alpha_ct = x()?,
            "alpha_st" => p.alpha_st = x()?,
            "max_efpr" => p.max_efpr = x()?,
            "unit" => {
                p.unit_s = match v {
                    "hour" => 3600.0,
                    "minute" => 60.0,
                    "second" => 1.0,
                    _ => bail!("--{what}: unit must be hour, minute or second, got {v}"),
                }
            }
            _ => bail!("--{what}: unknown key '{k}' (dtc, gtc, cttc, alpha_ct, alpha_st, max_efpr, unit)"),
        }
    }
    if p.alpha_ct != 0.0 && p.cttc.is_none() {
        bail!("--{what}: alpha_ct = {} needs a cttc", p.alpha_ct);
    }
    if !(p.max_efpr > 0.0) {
        bail!("--{what}: max_efpr must be > 0");
    }
    Ok(p)
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let opts = EvalOptions {
        event: EventParams { t_collar: a.t_collar, percentage_of_length: a.percentage_of_length, ..Default::default() },
        segment_s: a.segment,
        threshold: a.threshold,
        median: a.median_filter.max(1),
        median_on: match a.median_on {
            MedianArg::Scores => MedianOn::Scores,
            MedianArg::Binary => MedianOn::Binary,
        },
        psds1: psds_params(PsdsParams::SCENARIO1, a.psds1.as_deref(), "psds1")?,
        psds2: psds_params(PsdsParams::SCENARIO2, a.psds2.as_deref(), "psds2")?,
        op_thresholds: desed_thresholds(a.operating_points.max(1)),
        which: a.only.as_deref().map(Which::parse).transpose()?.unwrap_or(Which::ALL),
    };
    let reference = io::read_strong(&a.reference)?;
    let durations = io::read_durations(&a.durations)?;
    let files: Vec<String> = durations.iter().map(|(f, _)| f.clone()).collect();
    let (gt, pred, warnings) = if let Some(p) = &a.predictions {
        let pred = io::read_strong(p)?;
        let labels: Vec<&str> = pred.events.iter().map(|e| e.label.as_str()).collect();
        let (gt, w) = io::ground_truth(&reference, &durations, &a.durations, a.classes.as_deref(), &labels)?;
        let ev = io::per_file(&gt, &pred)?;
        (gt, Predictions::Events(ev), w)
    } else {
        let dir = a.scores.as_ref().expect("clap: predictions or scores");
        let (classes, tables) = io::read_score_dir(dir, &files, a.classes.as_deref())?;
        let (gt, w) = io::ground_truth(&reference, &durations, &a.durations, Some(&classes), &[])
            .with_context(|| format!("the reference's labels must be columns of the score tables in {}", dir.display()))?;
        (gt, Predictions::Scores(tables), w)
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let t_read = t0.elapsed().as_secs_f64();
    let rep = report::evaluate(&gt, &pred, &opts)?;
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    eprintln!(
        "evaluated {} files in {:.3} s (reading {t_read:.3} s, metrics {:.3} s)",
        gt.files.len(),
        t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64() - t_read
    );
    print!("{}", rep.table());
    if let Some(j) = &a.json {
        let mut v = rep.to_json(&opts);
        if let Some(w) = v.get_mut("warnings").and_then(|w| w.as_array_mut()) {
            w.splice(0..0, warnings.iter().map(|s| serde_json::Value::String(s.clone())));
        }
        super::write_atomic(j, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    if let Some(png) = &a.plot {
        super::plot::psd_roc(png, &rep)?;
    }
    if let (Some(out), Predictions::Scores(tables)) = (&a.tune, &pred) {
        let tuned = tune::tune(&gt, tables, &opts.event, &a.tune_medians, &threshold_grid(&a.tune_thresholds)?)?;
        println!("\ntuned on these files (event-based F1 per class):");
        println!("{:<28} {:>9} {:>7} {:>8} {:>12}", "class", "threshold", "median", "F1", "F1 at 0.5/1");
        for t in &tuned {
            println!("{:<28} {:>9.3} {:>7} {:>8.4} {:>12.4}", t.class, t.threshold, t.median, t.f1, t.f1_default);
        }
        let mean = |f: &dyn Fn(&tune::Tuned) -> f64| {
            let v: Vec<f64> = tuned.iter().map(f).filter(|x| !x.is_nan()).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        println!("{:<28} {:>9} {:>7} {:>8.4} {:>12.4}", "macro", "", "", mean(&|t| t.f1), mean(&|t| t.f1_default));
        write_tuned(out, &tuned)?;
        eprintln!("wrote the tuned thresholds and median filters to {}", out.display());
    }
    Ok(())
}
