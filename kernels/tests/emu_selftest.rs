//! Self-tests of the CUDA-on-CPU emulator, with the kernels of `emu/selftest/*.cu`: correct kernels
//! must give exact results, deliberately broken ones (missing `__syncthreads`, off-by-one tile bound,
//! divergent barrier, failing assert) must be reported, and byte counts must be exact.
use aural_kernels::emu::{self, Args, Dim3, EmuBuffer, EmuError, LaunchOptions, Order};

fn lcg(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            ((s >> 8) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Small integers as floats: every partial sum is exact, so any summation order gives the same bits.
fn small_ints(n: usize, seed: u32) -> Vec<f32> {
    lcg(n, seed).iter().map(|v| (v * 8.0).round()).collect()
}

#[test]
fn lists_selftest_kernels() {
    let k = emu::kernels();
    for name in ["emu_test_reduce_smem", "emu_test_gemm_tiled", "emu_test_wmma"] {
        assert!(k.contains(&name), "{name} missing from {k:?}");
    }
    let info = emu::kernel_info("emu_test_wmma").unwrap();
    assert_eq!(info.param_sizes, vec![8, 8, 8, 16]);
}

#[test]
fn unknown_kernel_lists_known_ones() {
    let err = unsafe { emu::launch("nope", Dim3::x(1), Dim3::x(1), 0, &[], &LaunchOptions::default()) }.unwrap_err();
    match &err {
        EmuError::UnknownKernel { known, .. } => assert!(known.iter().any(|k| k == "emu_test_copy")),
        e => panic!("{e}"),
    }
    assert!(err.to_string().contains("emu_test_copy"));
}

#[test]
fn launch_limits() {
    let x = EmuBuffer::zeros::<f32>(4);
    let y = EmuBuffer::zeros::<f32>(4);
    let mut a = Args::new().buf(&x).buf(&y).arg(4i32);
    let o = LaunchOptions::single(Order::Forward);
    for (grid, block, smem) in
        [(Dim3::x(1), Dim3::x(1025), 0), (Dim3::x(1), Dim3::new(32, 32, 2), 0), (Dim3::new(1, 65536, 1), Dim3::x(32), 0), (Dim3::x(1), Dim3::x(32), 228 * 1024)]
    {
        let e = unsafe { emu::launch_args("emu_test_copy", grid, block, smem, &mut a, &o) }.unwrap_err();
        assert!(matches!(e, EmuError::BadLaunch { .. }), "{e}");
    }
    // wrong parameter count
    let mut short = Args::new().buf(&x);
    let e = unsafe { emu::launch_args("emu_test_copy", Dim3::x(1), Dim3::x(32), 0, &mut short, &o) }.unwrap_err();
    assert!(e.to_string().contains("takes 3"), "{e}");
}

#[test]
fn smem_reduction_is_exact() {
    let blocks = 8;
    let xs = lcg(256 * blocks, 1);
    let x = EmuBuffer::from_f32(&xs);
    let out = EmuBuffer::zeros::<f32>(blocks);
    let mut a = Args::new().buf(&x).buf(&out);
    let st = unsafe { emu::launch_args("emu_test_reduce_smem", Dim3::x(blocks as u32), Dim3::x(256), 0, &mut a, &LaunchOptions::default()) }.unwrap();
    let got = out.to_vec_f32();
    for b in 0..blocks {
        // the same tree, in f32
        let mut s: Vec<f32> = xs[b * 256..(b + 1) * 256].to_vec();
        let mut stride = 128;
        while stride > 0 {
            for t in 0..stride {
                s[t] += s[t + stride];
            }
            stride /= 2;
        }
        assert_eq!(got[b].to_bits(), s[0].to_bits(), "block {b}");
    }
    assert_eq!(st.bytes_read, 4 * 256 * blocks as u64);
    assert_eq!(st.bytes_written, 4 * blocks as u64);
    assert_eq!(st.blocks, blocks as u64);
    assert_eq!(st.threads_per_block, 256);
}

#[test]
fn missing_syncthreads_is_caught() {
    let blocks = 4;
    let xs = lcg(256 * blocks, 2);
    let x = EmuBuffer::from_f32(&xs);
    let out = EmuBuffer::zeros::<f32>(blocks);
    let mut a = Args::new().buf(&x).buf(&out);
    let r = unsafe { emu::launch_args("emu_test_reduce_smem_racy", Dim3::x(blocks as u32), Dim3::x(256), 0, &mut a, &LaunchOptions::default()) };
    if let Err(e) = &r {
        eprintln!("{e}");
    }
    match r {
        Err(EmuError::OrderDependent { buffer_index, .. }) => assert_eq!(buffer_index, 1),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("racy reduction not reported"),
    }
}

#[test]
fn shuffle_reduction() {
    let (blocks, n) = (5usize, 1000usize);
    let xs = small_ints(blocks * n, 3);
    let x = EmuBuffer::from_f32(&xs);
    let out = EmuBuffer::zeros::<f32>(blocks);
    for threads in [32u32, 128, 1024] {
        let mut a = Args::new().buf(&x).buf(&out).arg(n as i32);
        let st = unsafe { emu::launch_args("emu_test_reduce_shfl", Dim3::x(blocks as u32), Dim3::x(threads), 0, &mut a, &LaunchOptions::default()) }.unwrap();
        let got = out.to_vec_f32();
        for b in 0..blocks {
            let want: f32 = xs[b * n..(b + 1) * n].iter().sum();
            assert_eq!(got[b], want, "threads {threads} block {b}");
        }
        assert_eq!(st.bytes_read, 4 * (blocks * n) as u64);
    }
}

#[test]
fn warp_ops_semantics() {
    let threads = 64usize;
    let out = EmuBuffer::zeros::<i32>(threads * 8);
    let mut a = Args::new().buf(&out);
    unsafe { emu::launch_args("emu_test_warp_ops", Dim3::x(1), Dim3::x(threads as u32), 0, &mut a, &LaunchOptions::default()) }.unwrap();
    let o = out.to_vec::<i32>();
    for t in 0..threads {
        let lane = t % 32;
        let warp0 = t - lane;
        let r = &o[t * 8..t * 8 + 8];
        assert_eq!(r[0], ((warp0 + 3) * 10) as i32, "shfl t{t}");
        assert_eq!(r[1], if lane >= 1 { t - 1 } else { t } as i32, "shfl_up t{t}");
        assert_eq!(r[2], if lane % 16 + 2 < 16 { t + 2 } else { t } as i32, "shfl_down width 16 t{t}");
        assert_eq!(r[3], (warp0 + (lane ^ 5)) as i32, "shfl_xor t{t}");
        let ballot: u32 = (0..32).filter(|l| l % 3 == 0).map(|l| 1u32 << l).sum();
        assert_eq!(r[4] as u32, ballot, "ballot t{t}");
        assert_eq!(r[5], 1);
        assert_eq!(r[6], 1);
        assert_eq!(r[7], (threads / 2) as i32, "syncthreads_count");
    }
}

fn naive_gemm(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0f32;
            for p in 0..k {
                acc += a[i * k + p] * b[p * n + j];
            }
            c[i * n + j] = acc;
        }
    }
    c
}

fn run_gemm(kernel: &str, m: usize, n: usize, k: usize, opts: &LaunchOptions) -> Result<(Vec<f32>, Vec<f32>, emu::LaunchStats), EmuError> {
    let av = lcg(m * k, 4);
    let bv = lcg(k * n, 5);
    let a = EmuBuffer::from_f32(&av);
    let b = EmuBuffer::from_f32(&bv);
    let c = EmuBuffer::zeros::<f32>(m * n);
    let mut args = Args::new().buf(&a).buf(&b).buf(&c).arg(m as i32).arg(n as i32).arg(k as i32);
    let grid = Dim3::xy(n.div_ceil(16) as u32, m.div_ceil(16) as u32);
    let st = unsafe { emu::launch_args(kernel, grid, Dim3::xy(16, 16), 0, &mut args, opts) }?;
    Ok((c.to_vec_f32(), naive_gemm(&av, &bv, m, n, k), st))
}

#[test]
fn tiled_gemm_matches_naive_and_counts_tile_rereads() {
    for (m, n, k) in [(64, 48, 80), (33, 17, 45), (1, 1, 1)] {
        let (got, want, st) = run_gemm("emu_test_gemm_tiled", m, n, k, &LaunchOptions::default()).unwrap();
        for i in 0..m * n {
            // same k order as the naive loop, plus zero padding: bitwise equal
            assert_eq!(got[i].to_bits(), want[i].to_bits(), "{m}x{n}x{k} at {i}");
        }
        // Analytic traffic: each block row re-reads A once per block column and vice versa; only
        // in-bounds elements are loaded.
        let (bm, bn) = (m.div_ceil(16), n.div_ceil(16));
        let want_read = 4 * (m * k * bn + k * n * bm) as u64;
        assert_eq!(st.bytes_read, want_read, "{m}x{n}x{k}");
        assert_eq!(st.bytes_written, 4 * (m * n) as u64);
    }
}

#[test]
fn gemm_off_by_one_is_caught() {
    // K not a multiple of 16: the `<= K` bound reads A[row*K + K] — the next row's first element
    // (silently), and one element past the end of A for the last row (caught).
    let (m, n, k) = (32, 32, 40);
    let r = run_gemm("emu_test_gemm_tiled_oob", m, n, k, &LaunchOptions::default());
    if let Err(e) = &r {
        eprintln!("{e}");
    }
    match r {
        Err(EmuError::OutOfBounds { buffer_index, byte_offset, is_store, .. }) => {
            assert_eq!(buffer_index, Some(0));
            assert_eq!(byte_offset, 4 * (m * k) as i64);
            assert!(!is_store);
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok((got, want, _)) => {
            assert_ne!(got, want, "off-by-one GEMM neither caught nor wrong");
        }
    }
}

#[test]
fn gemm_256_is_fast() {
    let t = std::time::Instant::now();
    let (got, want, st) = run_gemm("emu_test_gemm_tiled", 256, 256, 256, &LaunchOptions::single(Order::Forward)).unwrap();
    let dt = t.elapsed();
    eprintln!("256^3 tiled GEMM (one order): {:?}; fiber round trip {:.1} ns", dt, emu::bench_fiber_switch(100_000));
    assert_eq!(got, want);
    assert_eq!(st.bytes_read, 4 * 2 * 256 * 256 * 16);
    assert!(dt.as_secs_f64() < 2.0, "256^3 GEMM took {dt:?}");
}

#[test]
fn copy_counts_exact_bytes() {
    for n in [1usize, 1000, 4096, 100_003] {
        let xs = lcg(n, 6);
        let x = EmuBuffer::from_f32(&xs);
        let y = EmuBuffer::zeros::<f32>(n);
        let mut a = Args::new().buf(&x).buf(&y).arg(n as i32);
        let st = unsafe { emu::launch_args("emu_test_copy", Dim3::x(7), Dim3::x(128), 0, &mut a, &LaunchOptions::default()) }.unwrap();
        assert_eq!(st.bytes_read, 4 * n as u64);
        assert_eq!(st.bytes_written, 4 * n as u64);
        assert_eq!(y.to_vec_f32(), xs);
    }
}

#[test]
fn copy_out_of_bounds_store_is_caught() {
    let x = EmuBuffer::zeros::<f32>(1001);
    let y = EmuBuffer::zeros::<f32>(1000);
    let mut a = Args::new().buf(&x).buf(&y).arg(1001i32);
    let e = unsafe { emu::launch_args("emu_test_copy", Dim3::x(1), Dim3::x(64), 0, &mut a, &LaunchOptions::default()) }.unwrap_err();
    match e {
        EmuError::OutOfBounds { buffer_index: Some(1), byte_offset: 4000, is_store: true, .. } => {}
        e => panic!("{e}"),
    }
}

#[test]
fn histogram_with_atomics() {
    let (n, bins) = (10_000usize, 37usize);
    let v: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(2654435761) >> 7).collect();
    let vb = EmuBuffer::from_slice(&v);
    let h = EmuBuffer::zeros::<u32>(bins);
    let mut a = Args::new().buf(&vb).buf(&h).arg(n as i32).arg(bins as i32);
    unsafe { emu::launch_args("emu_test_histogram", Dim3::x(6), Dim3::x(128), (4 * bins) as u32, &mut a, &LaunchOptions::default()) }.unwrap();
    let mut want = vec![0u32; bins];
    for x in &v {
        want[(*x % bins as u32) as usize] += 1;
    }
    assert_eq!(h.to_vec::<u32>(), want);
}

#[test]
fn extern_shared_memory() {
    let (blocks, t) = (3usize, 96usize);
    let xs = lcg(blocks * t, 7);
    let x = EmuBuffer::from_f32(&xs);
    let y = EmuBuffer::zeros::<f32>(blocks * t);
    let mut a = Args::new().buf(&x).buf(&y);
    unsafe { emu::launch_args("emu_test_extern_smem", Dim3::x(blocks as u32), Dim3::x(t as u32), (4 * t) as u32, &mut a, &LaunchOptions::default()) }.unwrap();
    let got = y.to_vec_f32();
    for b in 0..blocks {
        for i in 0..t {
            assert_eq!(got[b * t + i], xs[b * t + t - 1 - i]);
        }
    }
}

#[test]
fn half_round_to_nearest_even() {
    let e = |k: i32| 2f32.powi(k);
    let cases: Vec<(f32, u16)> = vec![
        (1.0, 0x3c00),
        (1.0 + e(-11), 0x3c00),          // tie -> even (down)
        (1.0 + 3.0 * e(-11), 0x3c02),    // tie -> even (up)
        (1.0 + e(-11) + e(-20), 0x3c01), // above the tie
        (-2.5, 0xc100),
        (65504.0, 0x7bff),
        (65519.0, 0x7bff),
        (65520.0, 0x7c00),      // rounds to inf
        (e(-24), 0x0001),       // smallest subnormal
        (e(-25), 0x0000),       // tie -> even (zero)
        (3.0 * e(-25), 0x0002), // tie -> even (up)
        (e(-14), 0x0400),
        (f32::INFINITY, 0x7c00),
        (0.1, 0x2e66),
    ];
    let n = cases.len();
    let xs: Vec<f32> = cases.iter().map(|c| c.0).collect();
    let x = EmuBuffer::from_f32(&xs);
    let h = EmuBuffer::zeros::<u16>(n);
    let back = EmuBuffer::zeros::<f32>(n);
    let pair = EmuBuffer::zeros::<u32>(n);
    let mut a = Args::new().buf(&x).buf(&h).buf(&back).buf(&pair).arg(n as i32);
    unsafe { emu::launch_args("emu_test_half", Dim3::x(1), Dim3::x(32), 0, &mut a, &LaunchOptions::default()) }.unwrap();
    let hb = h.to_vec::<u16>();
    let bk = back.to_vec_f32();
    let pr = pair.to_vec::<u16>();
    for (i, (v, want)) in cases.iter().enumerate() {
        assert_eq!(hb[i], *want, "__float2half({v:e}) = {:#06x}, want {want:#06x}", hb[i]);
        if v.is_finite() && *want != 0x7c00 {
            assert!((bk[i] - v).abs() <= v.abs() * e(-11) + e(-25), "{v} -> {}", bk[i]);
        }
        if *want != 0x7c00 {
            assert_eq!(pr[2 * i], *want, "__half2 low of {v}");
        }
    }
}

#[test]
fn wmma_matches_naive() {
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct P {
        m: i32,
        n: i32,
        k: i32,
        alpha: f32,
    }
    let (m, n, k) = (32usize, 48usize, 64usize);
    // values exactly representable in f16 and products exact in f32
    let av: Vec<f32> = small_ints(m * k, 8).iter().map(|v| v / 4.0).collect();
    let bv: Vec<f32> = small_ints(k * n, 9).iter().map(|v| v / 2.0).collect();
    let to_h = |v: f32| -> u16 {
        // exact for these small values
        let b = v.to_bits();
        if v == 0.0 {
            return ((b >> 16) & 0x8000) as u16;
        }
        let sign = ((b >> 16) & 0x8000) as u16;
        let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
        let mant = ((b >> 13) & 0x3ff) as u16;
        sign | ((exp as u16) << 10) | mant
    };
    let ah: Vec<u16> = av.iter().map(|&v| to_h(v)).collect();
    // B col-major: element (p, j) at j*k + p
    let mut bh = vec![0u16; k * n];
    for p in 0..k {
        for j in 0..n {
            bh[j * k + p] = to_h(bv[p * n + j]);
        }
    }
    let a = EmuBuffer::from_slice(&ah);
    let b = EmuBuffer::from_slice(&bh);
    let c = EmuBuffer::zeros::<f32>(m * n);
    let mut args = Args::new().buf(&a).buf(&b).buf(&c).arg(P { m: m as i32, n: n as i32, k: k as i32, alpha: 0.5 });
    let st =
        unsafe { emu::launch_args("emu_test_wmma", Dim3::xy((n / 16) as u32, (m / 16) as u32), Dim3::x(32), 0, &mut args, &LaunchOptions::default()) }.unwrap();
    let want: Vec<f32> = naive_gemm(&av, &bv, m, n, k).iter().map(|v| v * 0.5).collect();
    assert_eq!(c.to_vec_f32(), want);
    // once per warp: each of the (m/16)(n/16) warps reads k/16 tiles of A and of B (512 B each)
    let tiles = (m / 16) * (n / 16);
    assert_eq!(st.bytes_read, (tiles * (k / 16) * 2 * 512) as u64);
    assert_eq!(st.bytes_written, (m * n * 4) as u64);
}

#[test]
fn assert_failure_is_a_trap() {
    let x = EmuBuffer::from_slice(&[1i32, 2, -3, 4]);
    let mut a = Args::new().buf(&x);
    let e = unsafe { emu::launch_args("emu_test_assert", Dim3::x(1), Dim3::x(4), 0, &mut a, &LaunchOptions::default()) }.unwrap_err();
    match &e {
        EmuError::Trap { thread, msg, .. } => {
            assert_eq!(thread[0], 2);
            assert!(msg.contains("assertion failed") && msg.contains("reduce.cu"), "{msg}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn divergent_barrier_is_a_deadlock() {
    let x = EmuBuffer::zeros::<f32>(64);
    let mut a = Args::new().buf(&x);
    let e = unsafe { emu::launch_args("emu_test_divergent_barrier", Dim3::x(1), Dim3::x(64), 0, &mut a, &LaunchOptions::default()) }.unwrap_err();
    assert!(matches!(e, EmuError::Deadlock { .. }), "{e}");
}

#[test]
fn concurrent_launches_from_threads() {
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for _ in 0..3 {
                    let n = 5000 + t * 100;
                    let xs = lcg(n, t as u32);
                    let x = EmuBuffer::from_f32(&xs);
                    let y = EmuBuffer::zeros::<f32>(n);
                    let mut a = Args::new().buf(&x).buf(&y).arg(n as i32);
                    let st = unsafe { emu::launch_args("emu_test_copy", Dim3::x(4), Dim3::x(256), 0, &mut a, &LaunchOptions::default()) }.unwrap();
                    assert_eq!(st.bytes_read, 4 * n as u64);
                    assert_eq!(y.to_vec_f32(), xs);
                }
            });
        }
    });
}

#[test]
fn macro_generated_kernels_and_fp16_templates() {
    let (rows, n) = (3usize, 300usize);
    let xs: Vec<f32> = lcg(rows * n, 10).iter().map(|v| v + 2.0).collect();
    let x = EmuBuffer::from_f32(&xs);
    let y = EmuBuffer::zeros::<f32>(rows * n);
    let mut a = Args::new().buf(&x).buf(&y).arg(n as i32).arg(1e-5f32);
    let st = unsafe { emu::launch_args("emu_cov_ln_f32", Dim3::x(rows as u32), Dim3::x(256), 0, &mut a, &LaunchOptions::default()) }.unwrap();
    // x is read twice, y written once
    assert_eq!(st.bytes_read, 2 * 4 * (rows * n) as u64);
    assert_eq!(st.bytes_written, 4 * (rows * n) as u64);
    assert!(y.to_vec_f32().iter().all(|v| v.is_finite()));
    let xh = EmuBuffer::from_slice(&vec![0x3c00u16; rows * n]); // 1.0 in f16
    let yh = EmuBuffer::zeros::<u16>(rows * n);
    let mut a = Args::new().buf(&xh).buf(&yh).arg(n as i32).arg(0.0f32);
    let st = unsafe { emu::launch_args("emu_cov_ln_f16", Dim3::x(rows as u32), Dim3::x(256), 0, &mut a, &LaunchOptions::default()) }.unwrap();
    assert_eq!(st.bytes_read, 2 * 2 * (rows * n) as u64);
    assert!(yh.to_vec::<u16>().iter().all(|&v| v == 0), "(1 - mean) * rsqrt(mean) = 0");
}
