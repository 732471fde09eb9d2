//! melspec (M2D's log-mel front end): the Slaney filter bank vs librosa, the CPU log-mel vs torch.stft +
//! librosa filters (golden) and vs a naive O(N²)-DFT reference, every kernel version under the emulator
//! (and a real GPU when present) vs the CPU, with the emulator's counted global-memory bytes, and the
//! errors.
//!
//! Golden fixture: `tests/golden/melspec.py`, in short:
//! ```python
//! fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney")
//! w = torch.hann_window(win, periodic=True, dtype=torch.float64)
//! X = torch.stft(x.double(), n_fft, hop, win_length=win, window=w, center=True, pad_mode="reflect",
//!                return_complex=True)
//! logmel = torch.log(torch.from_numpy(fb).double() @ X.abs() ** 2 + offset)
//! ```
//! for M2D's settings (32 kHz, n_fft = win = 800, hop 320, 80 mels, 50–16000 Hz, offset f32::EPSILON) on
//! a batch of two clips, a tone, a 401-sample clip and silence, and one 16 kHz n_fft 1024 / win 800 case.

use aural_runtime::ops::melspec::{kernel_bytes, log_mel, log_mel_version, slaney_mel_filters, MelOpts, MelPlan};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_vec};
use aural_runtime::{Device, Tensor};

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn filters_match_librosa() {
    let fx = fixture("melspec.safetensors");
    let cases: Vec<&str> = fx.keys().filter_map(|k| k.strip_prefix("filters/")?.strip_suffix("/opts")).collect();
    assert_eq!(cases.len(), 5, "{cases:?}");
    for case in cases {
        let o = fx[&format!("filters/{case}/opts")].to_vec().unwrap();
        let want = &fx[&format!("filters/{case}")];
        let (sr, n_fft, n_mels) = (o[0] as u32, o[1] as usize, o[2] as usize);
        assert_eq!(want.shape(), &[n_mels, n_fft / 2 + 1], "{case}");
        let got = slaney_mel_filters(sr, n_fft, n_mels, o[3], o[4]);
        let w = want.to_vec().unwrap();
        let peak = w.iter().fold(0f32, |a, &b| a.max(b));
        let err = max_err(&got, &w);
        let ulp_exact = got.iter().zip(&w).filter(|(g, w)| g == w).count();
        eprintln!("{case}: max |Δ| {err:.2e} = {:.2e} of the max weight {peak:.4}; {ulp_exact}/{} weights bit-identical", err / peak, w.len());
        assert_close(&format!("slaney filters {case} vs librosa"), &got, &w, 1e-6 * peak, 0.0);
        // the same zero pattern: the sparse ranges the kernels use are librosa's non-zeros
        let nz = |v: &[f32]| v.iter().map(|&x| x != 0.0).collect::<Vec<_>>();
        assert_eq!(nz(&got), nz(&w), "{case}: non-zero pattern");
    }
}

fn case_opts(o: &[f32]) -> MelOpts {
    MelOpts {
        sample_rate: o[0] as u32,
        n_fft: o[1] as usize,
        win_length: o[2] as usize,
        hop: o[3] as usize,
        n_mels: o[4] as usize,
        f_min: o[5],
        f_max: o[6],
        log_offset: o[7],
    }
}

/// The issue's requirement: the CPU log-mel within 1e-4 (on log values) of torch.stft + librosa filters
/// (float64 reference).
#[test]
fn golden_torch_stft_librosa_logmel() {
    let fx = fixture("melspec.safetensors");
    for case in ["batch", "tone", "short", "silence", "win800_nfft1024"] {
        let o = case_opts(&fx[&format!("{case}/opts")].to_vec().unwrap());
        if case != "win800_nfft1024" {
            assert_eq!(o, MelOpts::M2D, "{case}");
        }
        let wave = &fx[&format!("{case}/wave")];
        let want = &fx[&format!("{case}/logmel")];
        let got = log_mel(wave, &o).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(got.shape(), want.shape(), "{case}");
        let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
        eprintln!("{case}: {:?} max |Δ log| vs torch/librosa {:.2e}", got.shape(), max_err(&g, &w));
        assert_close(&format!("log-mel {case} vs torch.stft + librosa"), &g, &w, 1e-4, 0.0);
    }
    let silence = log_mel(&fx["silence/wave"], &MelOpts::M2D).unwrap().to_vec().unwrap();
    assert!(silence.iter().all(|&v| v == f32::EPSILON.ln()), "silence → ln(offset)");
}

/// Naive reference straight from the definition: reflect pad, window, O(N²) DFT, dense filters, f64.
fn naive(x: &[f32], o: &MelOpts) -> Vec<f32> {
    let (n, len) = (o.n_fft, x.len());
    let fb = slaney_mel_filters(o.sample_rate, n, o.n_mels, o.f_min, o.f_max);
    let nf = o.n_freq();
    let left = (n - o.win_length) / 2;
    let nt = o.n_frames(len);
    let mut out = vec![0f32; o.n_mels * nt];
    for t in 0..nt {
        let frame: Vec<f64> = (0..n)
            .map(|i| {
                if i < left || i >= left + o.win_length {
                    return 0.0;
                }
                let mut j = (t * o.hop + i) as isize - (n / 2) as isize;
                if j < 0 {
                    j = -j;
                }
                if j >= len as isize {
                    j = 2 * (len as isize - 1) - j;
                }
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * (i - left) as f64 / o.win_length as f64).cos();
                x[j as usize] as f64 * w
            })
            .collect();
        let power: Vec<f64> = (0..nf)
            .map(|k| {
                let (mut re, mut im) = (0f64, 0f64);
                for (i, v) in frame.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * ((k * i) % n) as f64 / n as f64;
                    re += v * a.cos();
                    im += v * a.sin();
                }
                re * re + im * im
            })
            .collect();
        for m in 0..o.n_mels {
            let e: f64 = (0..nf).map(|k| fb[m * nf + k] as f64 * power[k]).sum();
            out[m * nt + t] = (e + o.log_offset as f64).ln() as f32;
        }
    }
    out
}

#[test]
fn cpu_matches_naive_dft() {
    let cases = [
        (MelOpts::M2D, 401usize),
        (MelOpts::M2D, 2000),
        (MelOpts { n_fft: 64, win_length: 50, hop: 17, n_mels: 12, sample_rate: 8000, f_min: 0.0, f_max: 4000.0, log_offset: 1e-3 }, 203),
        (MelOpts { n_fft: 90, win_length: 90, hop: 30, n_mels: 20, sample_rate: 16000, f_min: 100.0, f_max: 7000.0, log_offset: 1e-6 }, 46),
    ];
    for (o, len) in cases {
        // three signals in one batch: the frame pairs of the CPU path cross signal boundaries
        let x = rand_vec(3 * len, len as u64);
        let got = log_mel(&Tensor::from_vec(x.clone(), &[3, len]).unwrap(), &o).unwrap();
        let nt = o.n_frames(len);
        assert_eq!(got.shape(), &[3, o.n_mels, nt]);
        let want: Vec<f32> = x.chunks(len).flat_map(|s| naive(s, &o)).collect();
        let g = got.to_vec().unwrap();
        eprintln!("n_fft {} win {} len {len}: max |Δ log| vs naive {:.2e}", o.n_fft, o.win_length, max_err(&g, &want));
        assert_close(&format!("log-mel n_fft {} len {len} vs naive", o.n_fft), &g, &want, 1e-5, 0.0);
    }
}

#[test]
fn shapes_and_leading_axes() {
    let o = MelOpts::M2D;
    // 10 s at 32 kHz: 1001 frames (DESIGN.md §6.4)
    assert_eq!(o.n_frames(320_000), 1001);
    let x = rand_vec(2 * 3 * 1000, 3);
    let flat = log_mel(&Tensor::from_vec(x.clone(), &[6, 1000]).unwrap(), &o).unwrap();
    let nested = log_mel(&Tensor::from_vec(x.clone(), &[2, 3, 1000]).unwrap(), &o).unwrap();
    let mono = log_mel(&Tensor::from_vec(x[..1000].to_vec(), &[1000]).unwrap(), &o).unwrap();
    assert_eq!(flat.shape(), &[6, 80, 4]);
    assert_eq!(nested.shape(), &[2, 3, 80, 4]);
    assert_eq!(mono.shape(), &[80, 4]);
    assert_eq!(flat.to_vec().unwrap(), nested.to_vec().unwrap());
    assert_eq!(mono.to_vec().unwrap(), flat.to_vec().unwrap()[..320].to_vec());
}

#[test]
fn errors_name_the_problem() {
    let o = MelOpts::M2D;
    let err = |x: &Tensor, o: &MelOpts| log_mel(x, o).unwrap_err().to_string();
    let w = |n: usize| Tensor::from_vec(vec![0.1; n], &[1, n]).unwrap();
    let e = err(&w(400), &o);
    assert!(e.starts_with("melspec:") && e.contains("too short") && e.contains("n_fft/2 = 400") && e.contains("got 400"), "{e}");
    assert!(log_mel(&w(401), &o).is_ok());
    let e = err(&Tensor::from_vec(vec![0.0], &[]).unwrap(), &o);
    assert!(e.contains("scalar"), "{e}");
    let bad: [(MelOpts, &str); 8] = [
        (MelOpts { n_fft: 801, ..o }, "n_fft must be even"),
        (MelOpts { win_length: 1024, ..o }, "win_length"),
        (MelOpts { win_length: 0, ..o }, "win_length"),
        (MelOpts { hop: 0, ..o }, "hop"),
        (MelOpts { n_mels: 0, ..o }, "n_mels"),
        (MelOpts { f_max: 17000.0, ..o }, "f_max"),
        (MelOpts { f_min: 16000.0, ..o }, "f_min"),
        (MelOpts { log_offset: 0.0, ..o }, "log_offset"),
    ];
    for (b, what) in bad {
        let e = err(&w(2000), &b);
        assert!(e.starts_with("melspec:") && e.contains(what), "{what}: {e}");
    }
    let e = err(&w(2000), &MelOpts { sample_rate: 0, ..o });
    assert!(e.contains("sample_rate"), "{e}");
    let f16 = aural_runtime::ops::unary::to_f16(&w(2000)).unwrap();
    assert!(log_mel(&f16, &o).unwrap_err().to_string().contains("melspec"));
}

/// Every kernel version vs the f64 CPU path. Tolerance: the kernels run in f32 — v1 sums 800 products
/// per bin (rounding ~√800·ε relative to the frame's energy), v2 runs a 400-point FFT (~log2(400)·ε) —
/// and the log turns a relative error of the mel energy into the same absolute error. On noise +
/// tone, whose mel energies lie within ~60 dB of the frame's peak, the emulator measured at most
/// 1.3e-5 (v1) and 2.9e-6 (v2) in the log (printed below); 2e-4 leaves 15× for FMA contraction and
/// another summation order on a real GPU, and for the 10 s clip's longer tail.
/// The emulator runs 0.1 s clips (its fibers are slow); a real GPU also runs 10 s.
#[test]
fn kernels_match_cpu() {
    let cases = [
        ("m2d", MelOpts::M2D, 3200 + 37, 2usize),
        ("m2d_short", MelOpts::M2D, 401, 1),
        (
            "nfft1024_win800",
            MelOpts { sample_rate: 16000, n_fft: 1024, win_length: 800, hop: 256, n_mels: 64, f_min: 0.0, f_max: 8000.0, log_offset: 1e-6 },
            2100,
            1,
        ),
        ("nfft96_radix3", MelOpts { sample_rate: 8000, n_fft: 96, win_length: 90, hop: 40, n_mels: 16, f_min: 30.0, f_max: 4000.0, log_offset: 1e-5 }, 500, 3),
        ("nfft14_v1_only", MelOpts { sample_rate: 8000, n_fft: 14, win_length: 14, hop: 5, n_mels: 3, f_min: 0.0, f_max: 4000.0, log_offset: 1e-5 }, 60, 1),
    ];
    for dev in gpu_devices() {
        for &(name, o, len, batch) in &cases {
            let lens = if dev == Device::Emu || name != "m2d" { vec![len] } else { vec![len, 320_000] };
            for len in lens {
                let x: Vec<f32> = (0..batch * len)
                    .map(|i| {
                        let t = (i % len) as f32 / o.sample_rate as f32;
                        0.3 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                    })
                    .zip(rand_vec(batch * len, 7))
                    .map(|(a, b)| a + 0.1 * b)
                    .collect();
                let cpu = Tensor::from_vec(x, &[batch, len]).unwrap();
                let want = log_mel(&cpu, &o).unwrap().to_vec().unwrap();
                let gx = cpu.to_device(dev).unwrap();
                let versions: &[u32] = if name == "nfft14_v1_only" { &[1] } else { &[1, 2] };
                for &v in versions {
                    let kernel = format!("melspec_fwd_f32_v{v}");
                    let got = log_mel_version(&gx, &o, Some(v)).unwrap_or_else(|e| panic!("{dev} {kernel} {name}: {e}"));
                    assert_eq!(got.shape(), &[batch, o.n_mels, o.n_frames(len)]);
                    let g = got.to_vec().unwrap();
                    eprintln!("{dev} {kernel} {name} ({batch}×{len}): max |Δ log| vs CPU {:.2e}", max_err(&g, &want));
                    assert_close(&format!("{dev} {kernel} {name} len {len}"), &g, &want, 2e-4, 0.0);
                    if dev == Device::Emu {
                        let be = aural_runtime::gpu::backend(dev).unwrap();
                        let counted = be.emu_bytes(&kernel).expect("the emulator records bytes");
                        assert_eq!(counted, kernel_bytes(batch, len, &o, v).unwrap(), "{kernel} {name}: counted (read, written) vs the .cu doc comment");
                    }
                }
                if name == "nfft14_v1_only" {
                    // 7 = n_fft/2 is prime: no v2; the dispatcher runs v1, and asking for v2 says why.
                    assert_eq!(log_mel(&gx, &o).unwrap().to_vec().unwrap(), log_mel_version(&gx, &o, Some(1)).unwrap().to_vec().unwrap());
                    let e = log_mel_version(&gx, &o, Some(2)).unwrap_err().to_string();
                    assert!(e.contains("melspec_fwd_f32_v2") && e.contains("factor"), "{e}");
                }
            }
        }
        // silence: ln(offset) exactly (every power is exactly 0 in f32 too)
        let z = Tensor::from_vec(vec![0.0; 1000], &[1, 1000]).unwrap().to_device(dev).unwrap();
        for v in [1, 2] {
            let got = log_mel_version(&z, &MelOpts::M2D, Some(v)).unwrap().to_vec().unwrap();
            assert!(got.iter().all(|&y| y == f32::EPSILON.ln()), "{dev} v{v}: silence");
        }
        let e = log_mel_version(&z, &MelOpts::M2D, Some(3)).unwrap_err().to_string();
        assert!(e.contains("melspec_fwd_f32_v3"), "{e}");
    }
    // the plan's sparse ranges cover every non-zero weight of M2D's bank
    let plan = MelPlan::new(&MelOpts::M2D).unwrap();
    assert_eq!(plan.sparse.weights.len(), plan.filters.iter().filter(|&&w| w != 0.0).count());
}
