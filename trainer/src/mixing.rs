//! Mixtures made on the fly for `trainer separator` (`[data] train = { sources = "dir", … }`): dry
//! event sources per class, optional backgrounds, spatialised to the model's microphones by room
//! impulse responses — simulated shoeboxes ([`shoebox_rirs`]) or multichannel RIR files — with the
//! target of each source being what the task defines: the source convolved with the direct-path part
//! of microphone 0's response, `[peak − 6 ms, peak + 50 ms]` ([`direct_path`]).
//!
//! Layout: `sources/<Label>/*.wav` (mono, any rate: resampled to the model's), optionally
//! `backgrounds/*.wav` (mono or with the model's channel count) and `rirs/*.wav` (the model's channel
//! count, one response per microphone). Each sample (a function of the seed and its index):
//! 1–`max_sources` distinct classes, one file of each at a random onset (cropped to the clip), each
//! scaled to a random SNR in `snr_db` against the background (or, without one, against the first
//! source), each convolved with its own RIR; the query is one of the sample's classes, the target its
//! direct-path signal at microphone 0.
//!
//! The shoebox simulator is the image-source method (Allen & Berkley): rooms 3–10 × 3–8 × 2.5–4 m,
//! one reflection coefficient for every wall from a random RT60 in 0.2–0.8 s (Sabine), images up to
//! order 10 within 0.3 s, each a fractional delay (Hann-windowed sinc, 32 taps) of gain
//! β^reflections / (4π·distance); microphones on a 5 cm tetrahedron (or ring) at a random point, the
//! source ≥ 0.5 m from every wall.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use aural_models::audio::{self, Channels};
use rand::Rng;
use rayon::prelude::*;

use crate::data::{purpose, rng_for};

/// Speed of sound (m/s).
const C_SOUND: f64 = 343.0;

/// The dry material of on-the-fly mixing.
pub struct Material {
    /// Per class (index into the model's classes): its source files.
    pub sources: BTreeMap<usize, Vec<PathBuf>>,
    pub backgrounds: Vec<PathBuf>,
    pub rirs: Vec<PathBuf>,
}

impl Material {
    /// Lists `root/sources/<Label>/`, `root/backgrounds/`, `root/rirs/`; a folder under `sources/`
    /// that is not a class is an error naming it.
    pub fn list(root: &Path, classes: &[String]) -> Result<Material> {
        let sdir = root.join("sources");
        let mut sources = BTreeMap::new();
        let rd = std::fs::read_dir(&sdir).with_context(|| format!("[data] train: listing {}", sdir.display()))?;
        for e in rd {
            let p = e?.path();
            if !p.is_dir() {
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let k =
                classes.iter().position(|c| *c == name).ok_or_else(|| anyhow!("[data] train: {}: '{name}' is not one of the model's classes", p.display()))?;
            let files = wavs(&p)?;
            if !files.is_empty() {
                sources.insert(k, files);
            }
        }
        if sources.is_empty() {
            bail!("[data] train: {} holds no <Label>/*.wav sources", sdir.display());
        }
        let opt = |d: &str| -> Result<Vec<PathBuf>> {
            if root.join(d).is_dir() {
                wavs(&root.join(d))
            } else {
                Ok(Vec::new())
            }
        };
        Ok(Material { sources, backgrounds: opt("backgrounds")?, rirs: opt("rirs")? })
    }
}

fn wavs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()).is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .collect();
    v.sort();
    Ok(v)
}

/// One on-the-fly sample: the mixture (channels × len), the queried class and its target.
pub struct Sample {
    pub mixture: Vec<Vec<f32>>,
    pub class: usize,
    pub target: Vec<f32>,
    pub files: Vec<PathBuf>,
}

/// The settings of on-the-fly mixing.
#[derive(Debug, Clone)]
pub struct MixSpec {
    pub rate: u32,
    pub channels: usize,
    pub len: usize,
    pub max_sources: usize,
    pub snr_db: (f64, f64),
    pub seed: u64,
}

/// Sample `index` (module doc).
pub fn make_sample(m: &Material, s: &MixSpec, index: u64) -> Result<Sample> {
    let mut rng = rng_for(s.seed, purpose::MIX, index, 0);
    let classes: Vec<usize> = m.sources.keys().copied().collect();
    let n = rng.gen_range(1..=s.max_sources.min(classes.len()).max(1));
    let mut pick = classes.clone();
    let mut chosen = Vec::new();
    for _ in 0..n {
        chosen.push(pick.swap_remove(rng.gen_range(0..pick.len())));
    }
    let mut files = Vec::new();
    let mut mixture = vec![vec![0f32; s.len]; s.channels];
    let background = if m.backgrounds.is_empty() {
        None
    } else {
        let p = &m.backgrounds[rng.gen_range(0..m.backgrounds.len())];
        files.push(p.clone());
        let a = audio::load(p, s.rate, Channels::All).map_err(|e| anyhow!("{e}"))?;
        let n = a.num_samples();
        let chans: Vec<Vec<f32>> = if a.channels.len() == s.channels { a.channels } else { vec![a.channels[0].clone(); s.channels] };
        let off = if n > s.len { rng.gen_range(0..=n - s.len) } else { 0 };
        for (mc, bc) in mixture.iter_mut().zip(&chans) {
            for (i, x) in mc.iter_mut().enumerate() {
                *x = bc.get(off + i).copied().unwrap_or(0.0);
            }
        }
        Some(energy(&mixture[0]))
    };
    let mut reference = background;
    let query = rng.gen_range(0..n);
    let mut target = Vec::new();
    for (j, &k) in chosen.iter().enumerate() {
        let list = &m.sources[&k];
        let p = &list[rng.gen_range(0..list.len())];
        files.push(p.clone());
        let a = audio::load(p, s.rate, Channels::MixDown).map_err(|e| anyhow!("{e}"))?;
        let src = a.mono();
        // The event at a random onset, cropped to the clip.
        let mut dry = vec![0f32; s.len];
        let (lo, hi) = if src.len() >= s.len { (0, src.len() - s.len) } else { (0, s.len - src.len()) };
        let shift = rng.gen_range(lo..=hi);
        if src.len() >= s.len {
            dry.copy_from_slice(&src[shift..shift + s.len]);
        } else {
            dry[shift..shift + src.len()].copy_from_slice(src);
        }
        let rirs = if m.rirs.is_empty() {
            shoebox_rirs(&mut rng, s.channels, s.rate)
        } else {
            let p = &m.rirs[rng.gen_range(0..m.rirs.len())];
            files.push(p.clone());
            let a = audio::load(p, s.rate, Channels::All).map_err(|e| anyhow!("{e}"))?;
            if a.channels.len() != s.channels {
                bail!("{}: {} channels; the model has {} microphones", p.display(), a.channels.len(), s.channels);
            }
            a.channels
        };
        let wet: Vec<Vec<f32>> = rirs.par_iter().map(|h| convolve(&dry, h, s.len)).collect();
        let e = energy(&wet[0]);
        if e <= 0.0 {
            continue;
        }
        let snr = rng.gen_range(s.snr_db.0..=s.snr_db.1);
        // Scale to the SNR against the reference energy at microphone 0 (the first source sets it
        // when there is no background).
        let g = match reference {
            Some(r) if r > 0.0 => ((r / e) * 10f64.powf(snr / 10.0)).sqrt(),
            _ => {
                reference = Some(e);
                1.0
            }
        } as f32;
        for (mc, w) in mixture.iter_mut().zip(&wet) {
            mc.iter_mut().zip(w).for_each(|(x, &v)| *x += g * v);
        }
        if j == query {
            let d = direct_path(&rirs[0], s.rate);
            target = convolve(&dry, &d, s.len).into_iter().map(|v| g * v).collect();
        }
    }
    if target.is_empty() {
        target = vec![0f32; s.len];
    }
    Ok(Sample { mixture, class: chosen[query], target, files })
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64 * v as f64).sum()
}

/// `x ⊛ h`, the first `len` samples (direct; responses are short).
pub fn convolve(x: &[f32], h: &[f32], len: usize) -> Vec<f32> {
    let taps: Vec<(usize, f32)> = h.iter().copied().enumerate().filter(|(_, v)| *v != 0.0).collect();
    let mut y = vec![0f32; len];
    for (d, v) in taps {
        for (yi, &xi) in y[d.min(len)..].iter_mut().zip(x) {
            *yi += v * xi;
        }
    }
    y
}

/// The direct-path part of a response: `h` kept on `[peak − 6 ms, peak + 50 ms]` (the task's
/// definition of the dry target), zero elsewhere.
pub fn direct_path(h: &[f32], rate: u32) -> Vec<f32> {
    let peak = h.iter().enumerate().fold((0, 0f32), |b, (i, &v)| if v.abs() > b.1 { (i, v.abs()) } else { b }).0;
    let lo = peak.saturating_sub((0.006 * rate as f64).round() as usize);
    let hi = (peak + (0.050 * rate as f64).round() as usize).min(h.len().saturating_sub(1));
    h.iter().enumerate().map(|(i, &v)| if i >= lo && i <= hi { v } else { 0.0 }).collect()
}

/// Image-source responses of one random shoebox room to `channels` microphones (module doc).
pub fn shoebox_rirs(rng: &mut impl Rng, channels: usize, rate: u32) -> Vec<Vec<f32>> {
    let room = [rng.gen_range(3.0..10.0), rng.gen_range(3.0..8.0), rng.gen_range(2.5..4.0)];
    let rt60: f64 = rng.gen_range(0.2..0.8);
    let (v, s) = (room[0] * room[1] * room[2], 2.0 * (room[0] * room[1] + room[0] * room[2] + room[1] * room[2]));
    // Sabine: RT60 = 0.161·V / (S·α); β = √(1 − α).
    let alpha = (0.161 * v / (s * rt60)).clamp(0.01, 1.0);
    let beta = (1.0 - alpha).sqrt();
    let inside = |rng: &mut dyn rand::RngCore, m: f64| -> [f64; 3] { [0, 1, 2].map(|d| m + (room[d] - 2.0 * m) * rng.gen::<f64>()) };
    let centre = inside(rng, 0.6);
    let src = inside(rng, 0.5);
    let r = 0.05;
    let dirs: Vec<[f64; 3]> = if channels == 4 {
        let k = 1.0 / 3f64.sqrt();
        vec![[k, k, k], [k, -k, -k], [-k, k, -k], [-k, -k, k]]
    } else {
        (0..channels)
            .map(|i| {
                let a = std::f64::consts::TAU * i as f64 / channels.max(1) as f64;
                [a.cos(), a.sin(), 0.0]
            })
            .collect()
    };
    let len = (0.3 * rate as f64) as usize + 64;
    dirs.iter()
        .map(|d| {
            let mic = [0, 1, 2].map(|i| centre[i] + r * d[i]);
            image_source(&room, &src, &mic, beta, 10, rate, len)
        })
        .collect()
}

/// The image-source response from `src` to `mic` in a shoebox `room` with wall reflection `beta`,
/// reflections up to `order` per axis, `len` samples at `rate`.
pub fn image_source(room: &[f64; 3], src: &[f64; 3], mic: &[f64; 3], beta: f64, order: i32, rate: u32, len: usize) -> Vec<f32> {
    let mut h = vec![0f64; len];
    const HALF: i64 = 16;
    for nx in -order..=order {
        for ny in -order..=order {
            for nz in -order..=order {
                for (px, py, pz) in [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)] {
                    // Image position along each axis: (1 − 2p)·s + 2n·L; reflections |n − p| + |n|.
                    let img = |s: f64, l: f64, n: i32, p: i32| (1 - 2 * p) as f64 * s + 2.0 * n as f64 * l;
                    let q = [img(src[0], room[0], nx, px), img(src[1], room[1], ny, py), img(src[2], room[2], nz, pz)];
                    let refl = (nx - px).abs() + nx.abs() + (ny - py).abs() + ny.abs() + (nz - pz).abs() + nz.abs();
                    let dist = ((q[0] - mic[0]).powi(2) + (q[1] - mic[1]).powi(2) + (q[2] - mic[2]).powi(2)).sqrt().max(1e-3);
                    let t = dist / C_SOUND * rate as f64;
                    if t + HALF as f64 >= len as f64 {
                        continue;
                    }
                    let g = beta.powi(refl) / (4.0 * std::f64::consts::PI * dist);
                    // Fractional delay: a Hann-windowed sinc over 2·HALF taps.
                    let c = t.floor() as i64;
                    for i in (c - HALF + 1)..=(c + HALF) {
                        if i < 0 || i as usize >= len {
                            continue;
                        }
                        let x = i as f64 - t;
                        let sinc = if x.abs() < 1e-9 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
                        let w = 0.5 * (1.0 + (std::f64::consts::PI * x / HALF as f64).cos());
                        h[i as usize] += g * sinc * w;
                    }
                }
            }
        }
    }
    h.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An anechoic room (β = 0) leaves the direct path: one windowed-sinc pulse at d/c with gain
    /// 1/(4πd); with β > 0 the floor's image arrives at its own distance with gain β/(4πd′).
    #[test]
    fn image_source_delays_and_gains() {
        let rate = 32000;
        let room = [5.0, 4.0, 3.0];
        let (src, mic) = ([1.0, 1.5, 1.2], [3.5, 2.5, 1.4]);
        let d = ((2.5f64).powi(2) + 1.0 + 0.04).sqrt();
        let h = image_source(&room, &src, &mic, 0.0, 3, rate, 4000);
        let peak = h.iter().enumerate().fold((0, 0f32), |b, (i, &v)| if v.abs() > b.1 { (i, v.abs()) } else { b }).0;
        assert_eq!(peak, (d / C_SOUND * rate as f64).round() as usize);
        let sum: f64 = h.iter().map(|&v| v as f64).sum();
        let want = 1.0 / (4.0 * std::f64::consts::PI * d);
        assert!((sum - want).abs() < 0.01 * want, "direct-path gain {sum} vs 1/(4πd) = {want}");
        // The floor image (z → −z): distance d′, gain β/(4πd′); compare the pulse's sum near its delay.
        let beta = 0.7;
        let h2 = image_source(&room, &src, &mic, beta, 3, rate, 4000);
        let d2 = ((2.5f64).powi(2) + 1.0 + (1.2f64 + 1.4).powi(2)).sqrt();
        let t2 = (d2 / C_SOUND * rate as f64).round() as usize;
        let diff: Vec<f64> = h2.iter().zip(&h).map(|(a, b)| (*a - *b) as f64).collect();
        let near: f64 = diff[t2 - 20..t2 + 20].iter().sum();
        let want2 = beta / (4.0 * std::f64::consts::PI * d2);
        assert!((near - want2).abs() < 0.05 * want2, "floor reflection {near} vs β/(4πd′) = {want2}");
    }

    #[test]
    fn direct_path_keeps_minus_6_to_plus_50_ms_around_the_peak() {
        let rate = 1000;
        let mut h = vec![0.1f32; 200];
        h[100] = 1.0;
        let d = direct_path(&h, rate);
        for (i, &v) in d.iter().enumerate() {
            assert_eq!(v != 0.0, (94..=150).contains(&i), "sample {i}");
        }
    }

    /// One source, no background: microphone 0 hears source ⊛ h0, the target is source ⊛ direct(h0):
    /// the target is most of the mixture (SNR > 0 dB) and a sample is a function of its index.
    #[test]
    fn a_sample_is_the_spatialised_source_and_its_direct_path() {
        let tmp = tempfile::Builder::new().prefix("aural-mixing-").tempdir().unwrap();
        let dir = tmp.path();
        let classes: Vec<String> = ["Speech", "Dishes"].iter().map(|s| s.to_string()).collect();
        crate::toy::write_sources(&dir, &classes, 2, 16000, 9).unwrap();
        let m = Material::list(&dir, &classes).unwrap();
        let spec = MixSpec { rate: 16000, channels: 4, len: 16000, max_sources: 1, snr_db: (0.0, 10.0), seed: 1 };
        let a = make_sample(&m, &spec, 3).unwrap();
        let b = make_sample(&m, &spec, 3).unwrap();
        assert_eq!(a.mixture, b.mixture);
        assert_eq!(a.mixture.len(), 4);
        let (t, x) = (&a.target, &a.mixture[0]);
        let e: f64 = t.iter().map(|&v| v as f64 * v as f64).sum();
        let n: f64 = t.iter().zip(x).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
        assert!(e > 0.0 && 10.0 * (e / n).log10() > 0.0, "SNR of the target in the mixture: {}", 10.0 * (e / n).log10());
        assert!(a.mixture[1] != a.mixture[0], "microphones hear different signals");
    }
}
