//! A tiny labelled data set in the DESED layout, for tests and for trying the trainer in seconds:
//! clips of a few simple sounds (one per class: tone bursts, chirps, low harmonic buzz, amplitude-
//! modulated noise band, broadband noise) over quiet noise, written as 16-bit WAVs with their strong,
//! weak and durations TSVs ([`write_layout`]), and 4-channel pre-mixed separation sets
//! ([`write_premixed`]). Everything is a function of the seed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use rand::Rng;

use crate::data::rng_for;

/// One generated clip: file name and events (onset, offset, class index).
pub type ToyClip = (String, Vec<(f64, f64, usize)>);

fn sound(class: usize, t: f64, dur: f64, rng: &mut impl Rng) -> f32 {
    let env = (t / 0.01).min(1.0) * ((dur - t) / 0.01).clamp(0.0, 1.0);
    let tau = std::f64::consts::TAU;
    let v = match class % 5 {
        0 => (tau * 1000.0 * t).sin() * if (t * 8.0) as u64 % 2 == 0 { 1.0 } else { 0.2 },
        1 => (tau * (500.0 * t + 1000.0 * t * t / dur.max(1e-3))).sin(),
        2 => (1..5).map(|h| (tau * 150.0 * h as f64 * t).sin() / h as f64).sum::<f64>() * 0.6,
        3 => (rng.gen::<f64>() * 2.0 - 1.0) * (0.5 + 0.5 * (tau * 4.0 * t).sin()) * (tau * 2000.0 * t).sin(),
        _ => rng.gen::<f64>() * 2.0 - 1.0,
    };
    (0.4 * env * v) as f32
}

/// Writes `n` clips of `seconds` s at `rate` Hz into `dir` (`{prefix}{i}.wav`), each with one or two
/// events of random classes among `classes` classes.
pub fn write_clips(dir: &Path, prefix: &str, n: usize, seconds: f64, rate: u32, classes: usize, seed: u64) -> Result<Vec<ToyClip>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    for i in 0..n {
        let mut rng = rng_for(seed, 100, i as u64, prefix.len() as u64);
        let len = (seconds * rate as f64) as usize;
        let mut x: Vec<f32> = (0..len).map(|_| (rng.gen::<f32>() * 2.0 - 1.0) * 0.003).collect();
        let mut events = Vec::new();
        for _ in 0..rng.gen_range(1..=2) {
            let c = rng.gen_range(0..classes);
            let d = rng.gen_range(0.2..(seconds * 0.6));
            let on = rng.gen_range(0.0..(seconds - d));
            let (a, b) = ((on * rate as f64) as usize, ((on + d) * rate as f64) as usize);
            for (j, s) in x[a..b.min(len)].iter_mut().enumerate() {
                *s += sound(c, j as f64 / rate as f64, d, &mut rng);
            }
            let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
            events.push((r3(on), r3(on + d).min(seconds), c));
        }
        let name = format!("{prefix}{i}.wav");
        let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let p = dir.join(&name);
        let mut w = hound::WavWriter::create(&p, spec).with_context(|| format!("writing {}", p.display()))?;
        for s in &x {
            w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)?;
        }
        w.finalize()?;
        out.push((name, events));
    }
    Ok(out)
}

/// A strong-label TSV of `clips`.
pub fn strong_tsv(clips: &[ToyClip], classes: &[String]) -> String {
    let mut s = "filename\tonset\toffset\tevent_label\n".to_string();
    for (name, ev) in clips {
        for &(on, off, c) in ev {
            let _ = writeln!(s, "{name}\t{on}\t{off}\t{}", classes[c]);
        }
    }
    s
}

/// A weak-label TSV of `clips`.
pub fn weak_tsv(clips: &[ToyClip], classes: &[String]) -> String {
    let mut s = "filename\tevent_labels\n".to_string();
    for (name, ev) in clips {
        let mut l: Vec<&str> = ev.iter().map(|e| classes[e.2].as_str()).collect();
        l.sort();
        l.dedup();
        let _ = writeln!(s, "{name}\t{}", l.join(","));
    }
    s
}

/// The DESED layout under `root`: `strong/`, `weak/`, `unlabeled/`, `validation/` audio folders and
/// `strong.tsv`, `weak.tsv`, `validation.tsv`, `validation_durations.tsv`; `n` clips per set of
/// `seconds` s.
pub fn write_layout(root: &Path, classes: &[String], n: usize, seconds: f64, rate: u32, seed: u64) -> Result<()> {
    let k = classes.len();
    let strong = write_clips(&root.join("strong"), "s", n, seconds, rate, k, seed)?;
    std::fs::write(root.join("strong.tsv"), strong_tsv(&strong, classes))?;
    let weak = write_clips(&root.join("weak"), "w", n, seconds, rate, k, seed)?;
    std::fs::write(root.join("weak.tsv"), weak_tsv(&weak, classes))?;
    write_clips(&root.join("unlabeled"), "u", n, seconds, rate, k, seed)?;
    let val = write_clips(&root.join("validation"), "v", n, seconds, rate, k, seed + 1)?;
    std::fs::write(root.join("validation.tsv"), strong_tsv(&val, classes))?;
    let mut d = "filename\tduration\n".to_string();
    for (name, _) in &val {
        let _ = writeln!(d, "{name}\t{seconds}");
    }
    std::fs::write(root.join("validation_durations.tsv"), d)?;
    Ok(())
}

/// A tiny separation set in the DCASE 2025 task 4 baseline's pre-mixed layout under `root`:
/// `soundscape/m{i}.wav` (`channels` channels) and `oracle_target/m{i}_<Label>.wav` (mono), `n`
/// mixtures of `seconds` s. Each mixture holds two sources of different classes among the first
/// `classes.len().min(5)` (the sounds of [`write_clips`], each lasting most of the clip) plus quiet
/// noise; microphone c hears source s delayed by d(c, s) ∈ [0, 8] samples with gain g(c, s) ∈
/// [0.6, 1.2]; the target of a source is what microphone 0 hears of it (no room: the direct path).
pub fn write_premixed(root: &Path, classes: &[String], n: usize, seconds: f64, rate: u32, channels: usize, seed: u64) -> Result<()> {
    let (sdir, tdir) = (root.join("soundscape"), root.join("oracle_target"));
    for d in [&sdir, &tdir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let len = (seconds * rate as f64) as usize;
    let k = classes.len().min(5);
    for i in 0..n {
        let mut rng = rng_for(seed, 200, i as u64, 0);
        let mut mix: Vec<Vec<f32>> = (0..channels).map(|_| (0..len).map(|_| (rng.gen::<f32>() * 2.0 - 1.0) * 0.003).collect()).collect();
        let first = rng.gen_range(0..k);
        let second = (first + rng.gen_range(1..k)) % k;
        for c in [first, second] {
            let d = rng.gen_range(0.7..0.95) * seconds;
            let on = rng.gen_range(0.0..(seconds - d));
            let a = (on * rate as f64) as usize;
            let src: Vec<f32> = (0..(d * rate as f64) as usize).map(|j| sound(c, j as f64 / rate as f64, d, &mut rng)).collect();
            let mut target = vec![0f32; len];
            for (ch, m) in mix.iter_mut().enumerate() {
                let (delay, gain) = (rng.gen_range(0..=8usize), rng.gen_range(0.6f32..1.2));
                for (j, &s) in src.iter().enumerate() {
                    if let Some(x) = m.get_mut(a + j + delay) {
                        *x += gain * s;
                        if ch == 0 {
                            target[a + j + delay] += gain * s;
                        }
                    }
                }
            }
            write_wav16(&tdir.join(format!("m{i}_{}.wav", classes[c])), rate, &[&target])?;
        }
        let refs: Vec<&[f32]> = mix.iter().map(|c| c.as_slice()).collect();
        write_wav16(&sdir.join(format!("m{i}.wav")), rate, &refs)?;
    }
    Ok(())
}

/// A 16-bit WAV of planar channels.
fn write_wav16(p: &Path, rate: u32, channels: &[&[f32]]) -> Result<()> {
    let spec = hound::WavSpec { channels: channels.len() as u16, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(p, spec).with_context(|| format!("writing {}", p.display()))?;
    for i in 0..channels.first().map_or(0, |c| c.len()) {
        for c in channels {
            w.write_sample((c[i].clamp(-1.0, 1.0) * 32767.0) as i16)?;
        }
    }
    w.finalize()?;
    Ok(())
}

/// Dry sources for on-the-fly mixing: `root/sources/<Label>/s{i}.wav`, `n` per class of the first
/// `classes.len().min(5)` classes (the sounds of [`write_clips`], 0.4–1.2 s each), and one quiet
/// noise background `root/backgrounds/b0.wav` of 2 s.
pub fn write_sources(root: &Path, classes: &[String], n: usize, rate: u32, seed: u64) -> Result<()> {
    for (c, label) in classes.iter().enumerate().take(5) {
        let d = root.join("sources").join(label);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        for i in 0..n {
            let mut rng = rng_for(seed, 300, c as u64, i as u64);
            let dur = rng.gen_range(0.4..1.2);
            let x: Vec<f32> = (0..(dur * rate as f64) as usize).map(|j| sound(c, j as f64 / rate as f64, dur, &mut rng)).collect();
            write_wav16(&d.join(format!("s{i}.wav")), rate, &[&x])?;
        }
    }
    let b = root.join("backgrounds");
    std::fs::create_dir_all(&b).with_context(|| format!("creating {}", b.display()))?;
    let mut rng = rng_for(seed, 301, 0, 0);
    let x: Vec<f32> = (0..2 * rate as usize).map(|_| (rng.gen::<f32>() * 2.0 - 1.0) * 0.01).collect();
    write_wav16(&b.join("b0.wav"), rate, &[&x])
}
