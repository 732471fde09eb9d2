//! The builtin procedural source bank of `trainer synth --builtin`: ten event classes and four kinds
//! of background, compiled into the binary. Every instance draws its own pitch, duration, envelope,
//! harmonics, modulation and filtering from its random stream, so a model has to learn the class
//! (a family of sounds), not one waveform. Amplitudes are arbitrary: the generator scales each event to
//! its drawn SNR.

use std::f64::consts::TAU;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// The builtin event classes, in label order.
pub const CLASSES: [&str; 10] = ["beep", "chirp", "siren", "knock", "bell", "whistle", "click_train", "noise_burst", "buzz", "babble"];

/// One line per class: what it sounds like and what varies (the README's table).
pub const DESCRIPTIONS: [&str; 10] = [
    "a steady tone 500–3000 Hz, 0.15–0.8 s, sharp edges, 0–2 odd harmonics",
    "a sweep up or down over at least an octave within 300–6000 Hz, 0.2–1.2 s, linear or exponential",
    "a harmonic tone 450–1400 Hz, wailing or yelping ±15–40 % at 0.3–3 Hz, 1.5–5 s",
    "2–6 knocks 0.08–0.35 s apart: damped resonances 80–600 Hz with a noise transient",
    "struck-bell partials (inharmonic ratios), 400–1500 Hz, exponential decay 0.25–1 s, lasting 2.5 decay times",
    "a high tone 1200–3500 Hz with 4–7 Hz vibrato, a glide and breath noise, 0.3–2 s",
    "clicks at 4–40 per second, drifting, 0.4–3 s",
    "band-pass or broadband noise with a fast attack and an exponential release ending 10–20 dB down, 0.1–1 s",
    "a pulse wave 80–250 Hz rich in harmonics, low-passed, with 15–60 Hz amplitude modulation, 1–5 s",
    "speech-like syllables: a glottal pulse train 90–260 Hz with intonation through moving formants, 0.6–4 s",
];

/// The builtin background kinds.
pub const BACKGROUNDS: [&str; 4] = ["coloured_noise", "room_tone", "mains_hum", "mixture"];

fn log_uniform(rng: &mut impl Rng, a: f64, b: f64) -> f64 {
    (rng.gen_range(a.ln()..b.ln())).exp()
}

fn gauss(rng: &mut impl Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// An RBJ-cookbook biquad (direct form I).
#[derive(Clone, Copy)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    fn new(b: [f64; 3], a0: f64, a: [f64; 2]) -> Biquad {
        Biquad { b: [b[0] / a0, b[1] / a0, b[2] / a0], a: [a[0] / a0, a[1] / a0], x: [0.0; 2], y: [0.0; 2] }
    }
    /// Band-pass with 0 dB peak gain.
    fn bandpass(f: f64, q: f64, rate: f64) -> Biquad {
        let w = TAU * (f / rate).min(0.49);
        let alpha = w.sin() / (2.0 * q);
        Biquad::new([alpha, 0.0, -alpha], 1.0 + alpha, [-2.0 * w.cos(), 1.0 - alpha])
    }
    fn lowpass(f: f64, q: f64, rate: f64) -> Biquad {
        let w = TAU * (f / rate).min(0.49);
        let (c, alpha) = (w.cos(), w.sin() / (2.0 * q));
        Biquad::new([(1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0], 1.0 + alpha, [-2.0 * c, 1.0 - alpha])
    }
    fn highpass(f: f64, q: f64, rate: f64) -> Biquad {
        let w = TAU * (f / rate).min(0.49);
        let (c, alpha) = (w.cos(), w.sin() / (2.0 * q));
        Biquad::new([(1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0], 1.0 + alpha, [-2.0 * c, 1.0 - alpha])
    }
    fn tick(&mut self, x: f64) -> f64 {
        let y = self.b[0] * x + self.b[1] * self.x[0] + self.b[2] * self.x[1] - self.a[0] * self.y[0] - self.a[1] * self.y[1];
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y
    }
    fn run(mut self, x: &mut [f64]) {
        for v in x {
            *v = self.tick(*v);
        }
    }
}

/// Linear attack and release ramps (seconds) applied in place.
fn ramps(x: &mut [f64], rate: f64, attack: f64, release: f64) {
    let n = x.len();
    let (a, r) = (((attack * rate) as usize).clamp(1, n.max(1)), ((release * rate) as usize).clamp(1, n.max(1)));
    for (i, v) in x.iter_mut().enumerate() {
        let g = ((i as f64 + 1.0) / a as f64).min(1.0) * ((n - i) as f64 / r as f64).min(1.0);
        *v *= g;
    }
}

/// A tone whose instantaneous frequency is `f(t)` (Hz), with `harm` harmonic amplitudes (index 0 = fundamental),
/// harmonics above 0.45·rate left out.
fn tone(n: usize, rate: f64, harm: &[(f64, f64)], f: impl Fn(f64) -> f64) -> Vec<f64> {
    let mut phase = 0.0f64;
    let mut out = vec![0.0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let fi = f(i as f64 / rate);
        let mut s = 0.0;
        for &(h, a) in harm {
            if fi * h < 0.45 * rate {
                s += a * (phase * h).sin();
            }
        }
        *o = s;
        phase = (phase + TAU * fi / rate) % (TAU * 64.0);
    }
    out
}

fn samples(seconds: f64, rate: f64, max_seconds: f64) -> usize {
    ((seconds.min(max_seconds) * rate).round() as usize).max(1)
}

/// One instance of builtin class `class` (an index into [`CLASSES`]) at `rate` Hz, at most
/// `max_seconds` long, drawn from `rng`.
pub fn render(class: usize, rng: &mut impl Rng, rate: u32, max_seconds: f64) -> Vec<f32> {
    let r = rate as f64;
    let ny = 0.45 * r;
    let x: Vec<f64> = match class {
        // beep
        0 => {
            let f = log_uniform(rng, 500.0, 3000.0);
            let n = samples(rng.gen_range(0.15..0.8), r, max_seconds);
            let h3 = if rng.gen_bool(0.5) { rng.gen_range(0.0..0.3) } else { 0.0 };
            let h5 = if h3 > 0.0 && rng.gen_bool(0.5) { rng.gen_range(0.0..0.2) } else { 0.0 };
            let mut x = tone(n, r, &[(1.0, 1.0), (3.0, h3), (5.0, h5)], |_| f);
            ramps(&mut x, r, rng.gen_range(0.002..0.01), rng.gen_range(0.005..0.02));
            x
        }
        // chirp
        1 => {
            let (lo, hi) = (300.0f64, 6000.0f64.min(ny));
            let octaves = rng.gen_range(1.0..(hi / lo).log2());
            let start = log_uniform(rng, lo, hi / 2f64.powf(octaves));
            let (f0, f1) = if rng.gen_bool(0.5) { (start, start * 2f64.powf(octaves)) } else { (start * 2f64.powf(octaves), start) };
            let d = rng.gen_range(0.2..1.2f64).min(max_seconds);
            let n = samples(d, r, max_seconds);
            let exp = rng.gen_bool(0.5);
            let h2 = if rng.gen_bool(0.4) { rng.gen_range(0.0..0.4) } else { 0.0 };
            let mut x = tone(n, r, &[(1.0, 1.0), (2.0, h2)], |t| {
                let u = (t / d).min(1.0);
                if exp {
                    f0 * (f1 / f0).powf(u)
                } else {
                    f0 + (f1 - f0) * u
                }
            });
            ramps(&mut x, r, rng.gen_range(0.005..0.05), rng.gen_range(0.01..0.08));
            x
        }
        // siren
        2 => {
            let fc = log_uniform(rng, 450.0, 1400.0);
            let depth = rng.gen_range(0.15..0.4);
            let rate_hz = log_uniform(rng, 0.3, 3.0);
            let yelp = rng.gen_bool(0.4);
            let ph0 = rng.gen_range(0.0..1.0);
            let nh = rng.gen_range(3..=6);
            let roll = rng.gen_range(0.6..1.4);
            let harm: Vec<(f64, f64)> = (1..=nh).map(|h| (h as f64, 1.0 / (h as f64).powf(roll))).collect();
            let n = samples(rng.gen_range(1.5..5.0), r, max_seconds);
            let mut x = tone(n, r, &harm, |t| {
                let u = (t * rate_hz + ph0).fract();
                let m = if yelp { 2.0 * (2.0 * u - 1.0).abs() - 1.0 } else { (TAU * u).sin() };
                fc * (1.0 + depth * m)
            });
            ramps(&mut x, r, rng.gen_range(0.05..0.2), rng.gen_range(0.05..0.3));
            x
        }
        // knock
        3 => {
            let hits = rng.gen_range(2..=6);
            let gap = rng.gen_range(0.08..0.35);
            let f = log_uniform(rng, 80.0, 600.0);
            let decay = rng.gen_range(0.01..0.04);
            let bright = rng.gen_range(0.2..1.0);
            let mut times = vec![0.0];
            for _ in 1..hits {
                let last = *times.last().unwrap();
                times.push(last + gap * rng.gen_range(0.8..1.25));
            }
            let n = samples(times.last().unwrap() + 6.0 * decay + 0.02, r, max_seconds);
            let mut x = vec![0.0; n];
            let mut hp = Biquad::highpass(rng.gen_range(800.0..3000.0f64).min(ny), 0.7, r);
            for &t0 in &times {
                let a0 = (t0 * r) as usize;
                let amp = rng.gen_range(0.6..1.0);
                let fr = f * rng.gen_range(0.95..1.05);
                for (j, v) in x.iter_mut().skip(a0).enumerate() {
                    let t = j as f64 / r;
                    if t > 8.0 * decay {
                        break;
                    }
                    let e = (-t / decay).exp();
                    let body = (TAU * fr * t).sin() + 0.5 * (TAU * 2.3 * fr * t).sin() * (-t / (0.5 * decay)).exp();
                    let click = if t < 0.004 { bright * hp.tick(gauss(rng)) * (1.0 - t / 0.004) } else { 0.0 };
                    *v += amp * (e * body + click);
                }
            }
            x
        }
        // bell
        4 => {
            let f0 = log_uniform(rng, 400.0, 1500.0);
            let tau = rng.gen_range(0.25..1.0);
            let ratios = [1.0, rng.gen_range(1.9..2.1), rng.gen_range(2.4..3.0), rng.gen_range(3.9..4.4), rng.gen_range(5.2..5.6)];
            let amps: Vec<f64> = ratios.iter().map(|_| rng.gen_range(0.2..1.0)).collect();
            // until the fundamental is about −22 dB down
            let n = samples((2.5 * tau as f64).clamp(0.4, 3.0), r, max_seconds);
            let mut x = vec![0.0; n];
            for (k, (&q, &a)) in ratios.iter().zip(&amps).enumerate() {
                let f = f0 * q;
                if f >= ny {
                    continue;
                }
                let tk = tau / (1.0 + 0.5 * k as f64);
                let ph = rng.gen_range(0.0..TAU);
                for (i, v) in x.iter_mut().enumerate() {
                    let t = i as f64 / r;
                    *v += a * (-t / tk).exp() * (TAU * f * t + ph).sin();
                }
            }
            ramps(&mut x, r, 0.001, 0.02);
            x
        }
        // whistle
        5 => {
            let f = log_uniform(rng, 1200.0, 3500.0);
            let (vr, vd) = (rng.gen_range(4.0..7.0), rng.gen_range(0.01..0.04));
            let glide = rng.gen_range(-0.2..0.2);
            let d = rng.gen_range(0.3..2.0f64).min(max_seconds);
            let n = samples(d, r, max_seconds);
            let mut x = tone(n, r, &[(1.0, 1.0), (2.0, rng.gen_range(0.0..0.1))], |t| f * (1.0 + glide * t / d) * (1.0 + vd * (TAU * vr * t).sin()));
            let mut bp = Biquad::bandpass(f, 4.0, r);
            let breath = rng.gen_range(0.05..0.3);
            for v in x.iter_mut() {
                *v += breath * bp.tick(gauss(rng));
            }
            ramps(&mut x, r, rng.gen_range(0.03..0.08), rng.gen_range(0.03..0.1));
            x
        }
        // click_train
        6 => {
            let rate_hz = log_uniform(rng, 4.0, 40.0);
            let drift = rng.gen_range(-0.2..0.2);
            let d = rng.gen_range(0.4..3.0f64).min(max_seconds);
            let n = samples(d, r, max_seconds);
            let len = rng.gen_range(0.001..0.003);
            let mut hp = Biquad::highpass(rng.gen_range(300.0..2000.0), 0.7, r);
            let mut x = vec![0.0; n];
            let mut t = 0.0;
            while t < d {
                let a0 = (t * r) as usize;
                let m = (len * r) as usize + 1;
                for j in 0..m {
                    if let Some(v) = x.get_mut(a0 + j) {
                        *v += gauss(rng) * (1.0 - j as f64 / m as f64);
                    }
                }
                t += 1.0 / (rate_hz * (1.0 + drift * t / d)) * rng.gen_range(0.95..1.05);
            }
            for v in x.iter_mut() {
                *v = hp.tick(*v);
            }
            x
        }
        // noise_burst
        7 => {
            let n = samples(rng.gen_range(0.1..1.0), r, max_seconds);
            let mut x: Vec<f64> = (0..n).map(|_| gauss(rng)).collect();
            if rng.gen_bool(0.7) {
                Biquad::bandpass(log_uniform(rng, 300.0, 6000.0f64.min(ny)), rng.gen_range(0.5..3.0), r).run(&mut x);
            }
            // an exponential release ending 10–20 dB below the attack
            let k = rng.gen_range(1.15..2.3) / n as f64;
            for (i, v) in x.iter_mut().enumerate() {
                *v *= (-k * i as f64).exp();
            }
            ramps(&mut x, r, rng.gen_range(0.001..0.005), 0.005);
            x
        }
        // buzz
        8 => {
            let f0 = log_uniform(rng, 80.0, 250.0);
            let duty = rng.gen_range(0.1..0.5);
            let (am_f, am_d) = (rng.gen_range(15.0..60.0), rng.gen_range(0.1..0.6));
            let n = samples(rng.gen_range(1.0..5.0), r, max_seconds);
            let mut x = vec![0.0; n];
            let mut phase = 0.0;
            for (i, v) in x.iter_mut().enumerate() {
                let t = i as f64 / r;
                let jitter = 1.0 + 0.003 * (TAU * 3.0 * t).sin();
                phase = (phase + f0 * jitter / r).fract();
                let pulse = if phase < duty { 1.0 - duty } else { -duty };
                *v = pulse * (1.0 - am_d * 0.5 * (1.0 + (TAU * am_f * t).sin()));
            }
            let cut = rng.gen_range(1500.0..5000.0f64).min(ny);
            Biquad::lowpass(cut, 0.7, r).run(&mut x);
            Biquad::lowpass(cut, 0.7, r).run(&mut x);
            Biquad::highpass(60.0, 0.7, r).run(&mut x);
            ramps(&mut x, r, rng.gen_range(0.01..0.1), rng.gen_range(0.02..0.15));
            x
        }
        // babble
        _ => {
            let d = rng.gen_range(0.6..4.0f64).min(max_seconds);
            let n = samples(d, r, max_seconds);
            let f0 = log_uniform(rng, 90.0, 260.0);
            let mut x = vec![0.0; n];
            // syllables
            let mut t = 0.0;
            let mut pitch = 1.0;
            let mut phase = 0.0;
            while t < d {
                let syl = rng.gen_range(0.12..0.3f64).min(d - t);
                let gap = rng.gen_range(0.03..0.1);
                let formants = [rng.gen_range(300.0..900.0), rng.gen_range(900.0..2400.0), rng.gen_range(2400.0..3400.0f64).min(ny)];
                let mut filt: Vec<Biquad> = formants.iter().map(|&f| Biquad::bandpass(f, rng.gen_range(5.0..12.0), r)).collect();
                let target = pitch * rng.gen_range(0.85..1.15f64);
                let (a0, m) = ((t * r) as usize, (syl * r) as usize);
                for j in 0..m {
                    let u = j as f64 / m.max(1) as f64;
                    let p = pitch + (target - pitch) * u;
                    phase += f0 * p / r;
                    let src = if phase >= 1.0 {
                        phase -= 1.0;
                        1.0
                    } else {
                        0.0
                    } + 0.03 * gauss(rng);
                    let env = (std::f64::consts::PI * u).sin().powf(0.6);
                    let y: f64 = filt.iter_mut().enumerate().map(|(k, b)| b.tick(src) / (1.0 + k as f64)).sum();
                    if let Some(v) = x.get_mut(a0 + j) {
                        *v += env * y;
                    }
                }
                pitch = target.clamp(0.7, 1.4);
                t += syl + gap;
            }
            x
        }
    };
    x.into_iter().map(|v| v as f32).collect()
}

/// A builtin background of `n` samples: one of [`BACKGROUNDS`] with random colour, level variation
/// and (for hum) 50 or 60 Hz mains.
pub fn background(rng: &mut impl Rng, rate: u32, n: usize) -> (String, Vec<f32>) {
    let r = rate as f64;
    let kind = rng.gen_range(0..BACKGROUNDS.len());
    let x = match kind {
        0 => {
            let alpha = rng.gen_range(0.0..2.0);
            coloured(rng, n, alpha)
        }
        1 => room(rng, r, n),
        2 => hum(rng, r, n),
        _ => {
            let (a, b) = (room(rng, r, n), hum(rng, r, n));
            let alpha = rng.gen_range(0.5..2.0);
            let c = coloured(rng, n, alpha);
            let w = [rng.gen_range(0.3..1.0), rng.gen_range(0.1..0.6), rng.gen_range(0.1..0.8)];
            (0..n).map(|i| w[0] * a[i] + w[1] * b[i] + w[2] * c[i]).collect()
        }
    };
    // slow level variation of ±0–3 dB
    let (lf, ld, lp) = (rng.gen_range(0.05..0.3), rng.gen_range(0.0..3.0), rng.gen_range(0.0..TAU));
    let out = x.iter().enumerate().map(|(i, &v)| (v * 10f64.powf(ld / 20.0 * (TAU * lf * i as f64 / r + lp).sin())) as f32).collect();
    (BACKGROUNDS[kind].to_string(), out)
}

/// Noise with a power spectrum ∝ f^(−alpha) (0 white, 1 pink, 2 brown), by a mix of white, Paul
/// Kellet's pink filter and a leaky integrator.
fn coloured(rng: &mut impl Rng, n: usize, alpha: f64) -> Vec<f64> {
    let (mut b, mut brown) = ([0.0f64; 7], 0.0f64);
    let (ww, wp, wb) = if alpha < 1.0 { (1.0 - alpha, alpha, 0.0) } else { (0.0, 2.0 - alpha, alpha - 1.0) };
    (0..n)
        .map(|_| {
            let w = gauss(rng);
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            let pink = (b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362) * 0.11;
            b[6] = w * 0.115926;
            brown = 0.995 * brown + 0.1 * w;
            ww * w + wp * pink + wb * brown
        })
        .collect()
}

/// Low-passed noise (a room's air-conditioning and traffic rumble) with a faint broadband floor.
fn room(rng: &mut impl Rng, r: f64, n: usize) -> Vec<f64> {
    let mut x: Vec<f64> = (0..n).map(|_| gauss(rng)).collect();
    let cut = rng.gen_range(150.0..1000.0);
    Biquad::lowpass(cut, 0.7, r).run(&mut x);
    Biquad::lowpass(cut, 0.7, r).run(&mut x);
    let floor = rng.gen_range(0.01..0.05);
    x.iter_mut().for_each(|v| *v = 3.0 * *v + floor * gauss(rng));
    x
}

/// Mains hum (50 or 60 Hz and a few harmonics) over quiet noise.
fn hum(rng: &mut impl Rng, r: f64, n: usize) -> Vec<f64> {
    let f = if rng.gen_bool(0.5) { 50.0 } else { 60.0 };
    let amps: Vec<f64> = (1..=4).map(|h| rng.gen_range(0.2..1.0) / h as f64).collect();
    let noise = rng.gen_range(0.05..0.3);
    (0..n)
        .map(|i| {
            let t = i as f64 / r;
            amps.iter().enumerate().map(|(h, a)| a * (TAU * f * (h + 1) as f64 * t).sin()).sum::<f64>() + noise * gauss(rng)
        })
        .collect()
}
