//! fbank: CPU vs torchaudio's kaldi fbank and HF's ASTFeatureExtractor (golden), CPU vs a naive
//! O(N²)-DFT reference, and the fused kernel under the emulator (and a real GPU when present) vs
//! the CPU, including its counted global-memory bytes.
//!
//! Golden fixture: `tests/golden/fbank.py`, in short:
//! ```python
//! fb = kaldi.fbank(torch.from_numpy(wav).unsqueeze(0), htk_compat=True, sample_frequency=16000,
//!                  use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
//! iv = ASTFeatureExtractor()(wav, sampling_rate=16000, return_tensors="np")["input_values"][0]
//! ```
//! for white noise, a sine sweep (also run in float64: `fb(wav.astype(np.float64))`) and the sweep plus
//! 1e-2 noise, each 16000 + 37 samples; 4000 samples of silence; and 559 samples of noise.

use aural_runtime::ops::fbank::{ast_input, fbank, fused_kernel_bytes, AstNorm, FbankOpts, FbankPlan, Window};
use aural_runtime::testing::{assert_close, fixture, gpu_devices, rand_vec};
use aural_runtime::{Device, Tensor};

fn max_err(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn golden_torchaudio_kaldi_fbank() {
    let fx = fixture("fbank.safetensors");
    // The sweeps are checked against torchaudio run in float64: its f32 run is itself up to ~1e-2 away
    // from that in the quietest bins (a pure tone, or the lowest mel bins after pre-emphasis, sit
    // ~1e10 below the peak: f32 FFT round-off); the others against the f32 run.
    for (clip, key) in [("noise", "fbank"), ("sweep", "fbank_f64"), ("sweep_noisy", "fbank_f64"), ("silence", "fbank"), ("short", "fbank")] {
        let wave = &fx[&format!("{clip}/wave")];
        let want = &fx[&format!("{clip}/{key}")];
        let got = fbank(wave, &FbankOpts::default()).unwrap();
        assert_eq!(got.shape(), want.shape(), "{clip}");
        let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
        eprintln!("{clip}: {:?} max abs error vs torchaudio {:.2e}", got.shape(), max_err(&g, &w));
        assert_close(&format!("fbank {clip} vs torchaudio"), &g, &w, 1e-3, 0.0);
    }
}

/// The options of a `fbank_opts.safetensors` case (see tests/golden/fbank.py).
fn case_opts(o: &[f32]) -> FbankOpts {
    FbankOpts {
        sample_rate: o[0],
        num_mel_bins: o[1] as usize,
        frame_length_ms: o[2],
        frame_shift_ms: o[3],
        preemph: o[4],
        low_freq: o[5],
        high_freq: o[6],
        window: [Window::Hanning, Window::Hamming, Window::Povey, Window::Rectangular, Window::Blackman][o[7] as usize],
        remove_dc_offset: o[8] != 0.0,
        round_to_power_of_two: o[9] != 0.0,
        ast_norm: None,
    }
}

/// Other sample rates, every window, frame sizes (power of two or not), frequency edges, no pre-emphasis or
/// DC removal vs torchaudio (float64 waveform). `edge_8k` has an FFT bin exactly on filter 0's left
/// edge, the only bin of that filter: torchaudio's f32 mel bank gives it a tiny weight (a finite
/// log energy, not log ε), which the plan reproduces by computing the bank as torchaudio does.
/// On GPU devices (emulator: the first 0.06 s) the power-of-two cases run the fused kernel too.
#[test]
fn golden_torchaudio_kaldi_fbank_options() {
    let fx = fixture("fbank_opts.safetensors");
    let cases: Vec<&str> = fx.keys().filter_map(|k| k.strip_suffix("/opts")).collect();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let o = case_opts(&fx[&format!("{case}/opts")].to_vec().unwrap());
        let wave = &fx[&format!("{case}/wave")];
        let want = &fx[&format!("{case}/fbank")];
        let got = fbank(wave, &o).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(got.shape(), want.shape(), "{case}");
        let (g, w) = (got.to_vec().unwrap(), want.to_vec().unwrap());
        eprintln!("{case}: {:?} max abs error vs torchaudio {:.2e}", got.shape(), max_err(&g, &w));
        assert_close(&format!("fbank {case} vs torchaudio"), &g, &w, 1e-3, 0.0);
        let plan = FbankPlan::new(&o).unwrap();
        if !plan.n_fft.is_power_of_two() {
            continue;
        }
        for dev in gpu_devices() {
            let n = if dev == Device::Emu { (0.06 * o.sample_rate) as usize } else { wave.numel() };
            let part = Tensor::from_vec(wave.to_vec().unwrap()[..n].to_vec(), &[n]).unwrap();
            let want = fbank(&part, &o).unwrap();
            let got = fbank(&part.to_device(dev).unwrap(), &o).unwrap_or_else(|e| panic!("{dev} {case}: {e}"));
            assert_close(&format!("{dev} fbank_fwd_f32_v1 {case}"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-3, 0.0);
        }
    }
}

#[test]
fn golden_hf_ast_feature_extractor() {
    let fx = fixture("fbank.safetensors");
    let want = &fx["noise/input_values"];
    let opts = FbankOpts { ast_norm: Some(AstNorm::AUDIOSET), ..Default::default() };
    let fused = fbank(&fx["noise/wave"], &opts).unwrap();
    assert_eq!(fused.shape(), &[1024, 128]);
    let (g, w) = (fused.to_vec().unwrap(), want.to_vec().unwrap());
    eprintln!("input_values max abs error vs HF {:.2e}", max_err(&g, &w));
    assert_close("fused AST input vs HF", &g, &w, 1e-3, 0.0);
    let raw = fbank(&fx["noise/wave"], &FbankOpts::default()).unwrap();
    let a = AstNorm::AUDIOSET;
    let two = ast_input(&raw, a.max_length, a.mean, a.std).unwrap();
    assert_close("ast_input vs fused", &two.to_vec().unwrap(), &g, 0.0, 0.0);
    assert!((g[1023 * 128] - 0.46703).abs() < 1e-4, "padding rows hold −mean/(2·std): {}", g[1023 * 128]);
}

/// Naive reference straight from the kaldi recipe, in f64 with an O(N²) DFT.
fn naive(wave: &[f32], o: &FbankOpts) -> Vec<f32> {
    let plan = FbankPlan::new(o).unwrap();
    let (win, n) = (plan.win, plan.n_fft);
    let frames = plan.frames(wave.len());
    let mut out = Vec::new();
    for f in 0..frames {
        let x: Vec<f64> = wave[f * plan.shift..f * plan.shift + win].iter().map(|&v| v as f64).collect();
        let mean = x.iter().sum::<f64>() / win as f64;
        let x: Vec<f64> = x.iter().map(|v| v - mean).collect();
        let mut y = vec![0f64; n];
        for i in 0..win {
            let prev = if i == 0 { x[0] } else { x[i - 1] };
            y[i] = (x[i] - o.preemph as f64 * prev) * (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (win - 1) as f64).cos());
        }
        let power: Vec<f64> = (0..=n / 2)
            .map(|k| {
                let (mut re, mut im) = (0f64, 0f64);
                for (i, v) in y.iter().enumerate() {
                    let a = -2.0 * std::f64::consts::PI * (k * i % n) as f64 / n as f64;
                    re += v * a.cos();
                    im += v * a.sin();
                }
                re * re + im * im
            })
            .collect();
        let mel = |f: f64| 1127.0 * (1.0 + f / 700.0).ln();
        let (ml, mh) = (mel(o.low_freq as f64), mel(o.sample_rate as f64 / 2.0));
        let d = (mh - ml) / (o.num_mel_bins + 1) as f64;
        for m in 0..o.num_mel_bins {
            let (l, c, r) = (ml + m as f64 * d, ml + (m + 1) as f64 * d, ml + (m + 2) as f64 * d);
            let e: f64 = (0..n / 2)
                .map(|k| {
                    let z = mel(o.sample_rate as f64 / n as f64 * k as f64);
                    ((z - l) / (c - l)).min((r - z) / (r - c)).max(0.0) * power[k]
                })
                .sum();
            out.push(e.max(f32::EPSILON as f64).ln() as f32);
        }
    }
    out
}

#[test]
fn cpu_matches_naive_dft() {
    for (n, mel) in [(400usize, 23usize), (1000, 40), (2000, 128)] {
        let o = FbankOpts { num_mel_bins: mel, ..Default::default() };
        let w = rand_vec(n, n as u64);
        let got = fbank(&Tensor::from_vec(w.clone(), &[n]).unwrap(), &o).unwrap();
        assert_close(&format!("fbank n={n} mel={mel} vs naive"), &got.to_vec().unwrap(), &naive(&w, &o), 2e-4, 0.0);
    }
    // an FFT size that is not a power of two (600 = 25 ms at 24 kHz, not rounded up)
    let o = FbankOpts { sample_rate: 24000.0, round_to_power_of_two: false, num_mel_bins: 30, ..Default::default() };
    let w = rand_vec(3000, 7);
    let got = fbank(&Tensor::from_vec(w.clone(), &[3000]).unwrap(), &o).unwrap();
    assert_close("fbank n_fft=600 vs naive", &got.to_vec().unwrap(), &naive(&w, &o), 2e-4, 0.0);
}

#[test]
fn shapes_and_errors() {
    let o = FbankOpts::default();
    // shorter than one frame: (0, 128), like torchaudio's empty result
    assert_eq!(fbank(&Tensor::from_vec(vec![0.0; 399], &[399]).unwrap(), &o).unwrap().shape(), &[0, 128]);
    assert_eq!(fbank(&Tensor::from_vec(vec![0.0; 400 + 160 * 3 + 159], &[1039]).unwrap(), &o).unwrap().shape(), &[4, 128]);
    let e = fbank(&Tensor::from_vec(vec![0.0; 8], &[2, 4]).unwrap(), &o).unwrap_err().to_string();
    assert!(e.contains("(samples,)"), "{e}");
    let e = fbank(&Tensor::from_vec(vec![0.0; 800], &[800]).unwrap(), &FbankOpts { low_freq: 9000.0, ..o }).unwrap_err().to_string();
    assert!(e.contains("Nyquist"), "{e}");
    // truncation with AST normalisation
    let a = AstNorm { max_length: 3, ..AstNorm::AUDIOSET };
    let w = Tensor::from_vec(rand_vec(4000, 5), &[4000]).unwrap();
    let t = fbank(&w, &FbankOpts { ast_norm: Some(a), ..o }).unwrap();
    let raw = fbank(&w, &o).unwrap().to_vec().unwrap();
    let want: Vec<f32> = raw[..3 * 128].iter().map(|&x| a.apply(x)).collect();
    assert_close("truncated AST input", &t.to_vec().unwrap(), &want, 0.0, 0.0);
}

/// Fused kernel vs CPU on ~0.1 s of audio (the emulator is slow), raw and AST-normalised (with a
/// few padding rows), and the emulator's byte count vs the documented formula.
#[test]
fn fused_kernel_matches_cpu() {
    let n = 1600 + 37;
    let wave = Tensor::from_vec(rand_vec(n, 11).iter().map(|v| 0.3 * v).collect(), &[n]).unwrap();
    for dev in gpu_devices() {
        let gw = wave.to_device(dev).unwrap();
        for ast in [None, Some(AstNorm { max_length: 12, ..AstNorm::AUDIOSET })] {
            let o = FbankOpts { ast_norm: ast, ..Default::default() };
            let want = fbank(&wave, &o).unwrap();
            let got = fbank(&gw, &o).unwrap_or_else(|e| panic!("{dev}: {e}"));
            assert_eq!(got.shape(), want.shape());
            assert_close(&format!("{dev} fbank_fwd_f32_v1 ast={}", ast.is_some()), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-3, 0.0);
            if dev == Device::Emu {
                let be = aural_runtime::gpu::backend(dev).unwrap();
                let counted = be.emu_bytes("fbank_fwd_f32_v1").expect("the emulator records bytes");
                assert_eq!(counted, fused_kernel_bytes(n, &o).unwrap(), "counted (read, written) vs the .cu doc comment");
            }
        }
        let raw = fbank(&wave, &FbankOpts::default()).unwrap();
        let a = AstNorm { max_length: 12, ..AstNorm::AUDIOSET };
        let want = ast_input(&raw, a.max_length, a.mean, a.std).unwrap();
        let got = ast_input(&raw.to_device(dev).unwrap(), a.max_length, a.mean, a.std).unwrap();
        assert_close(&format!("{dev} ast_input_fwd_f32_v1"), &got.to_vec().unwrap(), &want.to_vec().unwrap(), 1e-6, 0.0);
    }
}

/// FbankStream: a signal pushed in blocks of odd sizes gives the frames of `fbank` on the whole
/// signal, bit for bit (frames computed in even-aligned blocks), for lengths around the block and
/// frame boundaries.
#[test]
fn stream_equals_whole_signal() {
    use aural_runtime::ops::fbank::FbankStream;
    for (n, opts) in [
        (160_000usize, FbankOpts::default()),
        (41_357, FbankOpts { num_mel_bins: 40, ..Default::default() }),
        (399, FbankOpts::default()),
        (400 + 160 * 512, FbankOpts::default()),
        // a shift longer than the frame: samples between frames are skipped across pushes
        (30_011, FbankOpts { frame_shift_ms: 50.0, ..Default::default() }),
        (9_999, FbankOpts { frame_length_ms: 20.0, frame_shift_ms: 20.0, num_mel_bins: 23, ..Default::default() }),
    ] {
        let w = rand_vec(n, n as u64);
        let whole = fbank(&Tensor::from_vec(w.clone(), &[n]).unwrap(), &opts).unwrap().to_vec().unwrap();
        for block in [1usize, 7, 241, 400, 777, 16000, 1 << 20] {
            if block == 1 && n > 50_000 {
                continue;
            }
            let mut s = FbankStream::new(&opts, Device::Cpu).unwrap();
            let mut got = Vec::new();
            for (i, c) in w.chunks(block).enumerate() {
                // both entry points, appending to the caller's buffer or returning a new one
                if i % 2 == 0 {
                    s.push_into(c, &mut got).unwrap();
                } else {
                    got.extend(s.push(c).unwrap());
                }
            }
            s.finish_into(&mut got).unwrap();
            assert_eq!(s.frames() * opts.num_mel_bins, got.len());
            assert!(got == whole, "n {n}, blocks of {block}: stream differs from the whole signal");
        }
    }
}
