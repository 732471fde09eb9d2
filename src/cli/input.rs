//! Audio input of the many-file commands (`detect`, `features`): WAV files, or stdin (`-`) as a
//! WAV stream or headerless PCM (`--raw-format`), read block by block (models::audio::Blocks:
//! bounded memory whatever the length) and, for `detect`, on a reader thread that stays a bounded
//! number of blocks ahead of the model (decoding and resampling the next files while the model runs).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{bail, Context, Result};
use aural::models::audio::{Blocks, Channels, SampleFormat, WavReader};
use aural::runtime::{safetensors_io, DType, Tensor};

/// Input frames per block (about 1 s at 44.1 kHz).
pub const BLOCK_FRAMES: usize = 1 << 15;

/// How input is read: channel policy, non-finite samples, headerless stdin.
#[derive(Clone, Copy, Debug)]
pub struct InputOpts {
    pub channels: Channels,
    pub allow_nonfinite: bool,
    /// stdin as headerless PCM: (format, rate, channels).
    pub raw: Option<(SampleFormat, u32, usize)>,
}

/// Parses `--raw-format FORMAT:RATE[:CHANNELS]` (FORMAT: u8, s16, s24, s32, f32, f64; little-endian).
pub fn parse_raw_format(s: &str) -> Result<(SampleFormat, u32, usize)> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        bail!("--raw-format {s:?}: expected FORMAT:RATE[:CHANNELS], e.g. s16:16000:1");
    }
    let format = match parts[0] {
        "u8" => SampleFormat::Int(8),
        "s16" => SampleFormat::Int(16),
        "s24" => SampleFormat::Int(24),
        "s32" => SampleFormat::Int(32),
        "f32" => SampleFormat::F32,
        "f64" => SampleFormat::F64,
        f => bail!("--raw-format {s:?}: unknown sample format {f:?} (u8, s16, s24, s32, f32, f64)"),
    };
    let rate: u32 = parts[1].parse().with_context(|| format!("--raw-format {s:?}: the rate {:?} is not a whole number of Hz", parts[1]))?;
    let channels: usize = match parts.get(2) {
        Some(c) => c.parse().with_context(|| format!("--raw-format {s:?}: the channel count {c:?} is not a whole number"))?,
        None => 1,
    };
    Ok((format, rate, channels))
}

/// Opens one input (`-` is stdin) as mono-or-selected blocks at `rate`.
pub fn open(path: &Path, rate: u32, o: &InputOpts) -> Result<Blocks<Box<dyn Read + Send>>> {
    let mut r = if path == Path::new("-") {
        let stdin: Box<dyn Read + Send> = Box::new(std::io::BufReader::with_capacity(1 << 16, std::io::stdin()));
        match o.raw {
            Some((f, sr, ch)) => WavReader::raw(stdin, Path::new("<stdin>"), sr, ch, f)?,
            None => WavReader::new(stdin, Path::new("<stdin>"))?,
        }
    } else {
        if o.raw.is_some() {
            bail!("--raw-format applies to stdin (-) only, not to {}", path.display());
        }
        WavReader::open(path)?.boxed()
    };
    r.zero_nonfinite(o.allow_nonfinite);
    Ok(Blocks::new(r, rate, o.channels)?)
}

/// Warns when non-finite samples were zeroed (`--allow-nonfinite`).
pub fn warn_zeroed(path: &Path, b: &mut Blocks<Box<dyn Read + Send>>) {
    let z = b.reader().zeroed();
    if z > 0 {
        eprintln!("warning: {}: {z} NaN or infinite sample(s) were set to 0 (--allow-nonfinite)", path.display());
    }
}

/// What the reader thread sends, in input order.
pub enum Msg {
    /// Input `index` starts.
    Begin(usize),
    /// Mono samples at the requested rate.
    Block(Vec<f32>),
    /// Input `index` ended after `samples` samples.
    End(usize, usize),
}

/// Reads `inputs` in order on a thread of its own, at most `ahead` blocks ahead of the receiver;
/// the first error ends the stream (after it is sent).
pub fn spawn_reader(inputs: Vec<PathBuf>, rate: u32, o: InputOpts, ahead: usize) -> mpsc::Receiver<Result<Msg>> {
    let (tx, rx) = mpsc::sync_channel(ahead.max(1));
    std::thread::spawn(move || {
        for (i, p) in inputs.iter().enumerate() {
            let run = || -> Result<bool> {
                let mut b = open(p, rate, &o)?;
                if tx.send(Ok(Msg::Begin(i))).is_err() {
                    return Ok(false);
                }
                let mut n = 0;
                while let Some(x) = b.next_block(BLOCK_FRAMES)? {
                    let mono = x.into_iter().next().unwrap_or_default();
                    n += mono.len();
                    if tx.send(Ok(Msg::Block(mono))).is_err() {
                        return Ok(false);
                    }
                }
                warn_zeroed(p, &mut b);
                Ok(tx.send(Ok(Msg::End(i, n))).is_ok())
            };
            match run() {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Runs `job(i)` for every index of `order` on worker threads (as many as rayon's), started in
/// that order and at most a few ahead of the results taken. `consume` gets a function that returns
/// job `i`'s result, waiting for it; asked in `order`'s order, memory holds a few results at a time.
/// (Asked in another order, the workers go on past the window rather than wait: no deadlock.) The
/// workers stop when `consume` returns, after the jobs they are running.
pub fn in_order<T: Send, R>(order: &[usize], job: impl Fn(usize) -> Result<T> + Sync, consume: impl FnOnce(&mut dyn FnMut(usize) -> Result<T>) -> R) -> R {
    use std::collections::HashMap;
    use std::sync::{Condvar, Mutex};
    struct State {
        next: usize,
        taken: usize,
        waiting: bool,
        stop: bool,
    }
    let workers = rayon::current_num_threads().max(1);
    let ahead = 2 * workers + 2;
    let state = Mutex::new(State { next: 0, taken: 0, waiting: false, stop: false });
    let cv = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel::<(usize, Result<T>)>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, job, cv, lock) = (tx.clone(), &job, &cv, &lock);
            s.spawn(move || loop {
                let k = {
                    let mut st = lock();
                    while !st.stop && st.next < order.len() && st.next >= st.taken + ahead && !st.waiting {
                        st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    if st.stop || st.next >= order.len() {
                        return;
                    }
                    st.next += 1;
                    st.next - 1
                };
                if tx.send((order[k], job(order[k]))).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let mut pending: HashMap<usize, Result<T>> = HashMap::new();
        let mut get = |i: usize| -> Result<T> {
            loop {
                if let Some(r) = pending.remove(&i) {
                    lock().taken += 1;
                    cv.notify_all();
                    return r;
                }
                lock().waiting = true;
                cv.notify_all();
                let got = rx.recv();
                lock().waiting = false;
                match got {
                    Ok((j, r)) => {
                        pending.insert(j, r);
                    }
                    Err(_) => bail!("internal: the result of input {i} never came (all workers ended)"),
                }
            }
        };
        let r = consume(&mut get);
        lock().stop = true;
        cv.notify_all();
        drop(rx);
        r
    })
}

/// [`safetensors_io::save_streamed`] with `fetch`'s errors (an input's or the model's) returned as
/// they are, not as an error in writing the output; the output is then not written.
pub fn save_streamed(out: &Path, specs: Vec<(String, DType, Vec<usize>)>, mut fetch: impl FnMut(&str) -> Result<Tensor>) -> Result<()> {
    let mut failed = None;
    let written = safetensors_io::save_streamed(out, specs, |name| {
        fetch(name).map_err(|e| {
            failed = Some(e);
            aural::runtime::Error::Msg("an input failed".into())
        })
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(written?),
    }
}
