//! Audio input of the many-file commands (`detect`, `features`): WAV files, or stdin (`-`) as a
//! WAV stream or headerless PCM (`--raw-format`), read block by block (models::audio::Blocks:
//! bounded memory whatever the length) and, for `detect`, on a reader thread that stays a bounded
//! number of blocks ahead of the model (decoding and resampling the next files while the model runs).

use std::collections::HashMap;
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
/// (Asked for a job not started yet, the workers go on past the window until they reach it rather
/// than wait: no deadlock.) The workers stop when `consume` returns, after the jobs they are running.
pub fn in_order<T: Send, R>(order: &[usize], job: impl Fn(usize) -> Result<T> + Sync, consume: impl FnOnce(&mut dyn FnMut(usize) -> Result<T>) -> R) -> R {
    use std::sync::{Condvar, Mutex};
    struct State {
        next: usize,
        taken: usize,
        /// the position in `order` of the job the consumer waits for
        wanted: Option<usize>,
        stop: bool,
    }
    let workers = rayon::current_num_threads().max(1);
    let ahead = 2 * workers + 2;
    let state = Mutex::new(State { next: 0, taken: 0, wanted: None, stop: false });
    let cv = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel::<(usize, Result<T>)>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (tx, job, cv, lock) = (tx.clone(), &job, &cv, &lock);
            s.spawn(move || loop {
                let k = {
                    let mut st = lock();
                    // past the window only up to a job the consumer waits for that is not started
                    while !st.stop && st.next < order.len() && st.next >= st.taken + ahead && st.wanted.is_none_or(|w| st.next > w) {
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
        let position: HashMap<usize, usize> = order.iter().enumerate().map(|(k, &i)| (i, k)).collect();
        let mut pending: HashMap<usize, Result<T>> = HashMap::new();
        let mut get = |i: usize| -> Result<T> {
            let Some(&k) = position.get(&i) else { bail!("internal: input {i} is not among the jobs") };
            loop {
                if let Some(r) = pending.remove(&i) {
                    lock().taken += 1;
                    cv.notify_all();
                    return r;
                }
                lock().wanted = Some(k);
                cv.notify_all();
                let got = rx.recv();
                lock().wanted = None;
                match got {
                    Ok((j, r)) => {
                        pending.insert(j, r);
                    }
                    Err(_) => bail!("internal: the result of input {i} never came (all workers ended)"),
                }
            }
        };
        // the workers stop when `consume` returns or panics (else the scope would wait for them)
        struct Stop<F: Fn()>(F);
        impl<F: Fn()> Drop for Stop<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }
        let _stop = Stop(|| {
            lock().stop = true;
            cv.notify_all();
        });
        consume(&mut get)
    })
}

/// The order in which [`safetensors_io::save_streamed`] asks for tensors of one dtype named `keys`
/// (by name, as the safetensors crate stores them), and each key's index: compute them in this order.
pub fn stored_order(keys: &[String]) -> (Vec<usize>, HashMap<&str, usize>) {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&x, &y| keys[x].cmp(&keys[y]));
    (order, keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect())
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// While the consumer waits for a slow running job, the workers stay within the window; asked
    /// for a job not started yet, they go past it; every result is the job's own.
    #[test]
    fn in_order_keeps_its_window_and_never_deadlocks() {
        let ahead = 2 * rayon::current_num_threads().max(1) + 2;
        let order: Vec<usize> = (0..40).rev().collect();
        let highest = AtomicUsize::new(0);
        let job = |i: usize| {
            // jobs start in `order`: the k-th started is 39 − k
            highest.fetch_max(39 - i, Ordering::SeqCst);
            if i == 39 {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Ok(i * 10)
        };
        super::in_order(&order, job, |get| {
            assert_eq!(get(39).unwrap(), 390);
            let seen = highest.load(Ordering::SeqCst);
            // the first result taken moved the window by one
            assert!(seen <= ahead, "job {seen} of the order started while the first was running (window {ahead})");
            // out of order: the last job, far past the window
            assert_eq!(get(0).unwrap(), 0);
            for i in (1..39).rev() {
                assert_eq!(get(i).unwrap(), 10 * i);
            }
        });
    }
}
