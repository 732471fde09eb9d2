//! Power spectra of two real frames with one complex FFT — the CPU front ends' shared inner step
//! (`ops::fbank` for kaldi fbank, `ops::melspec` for the M2D log-mel).
//!
//! With z = FFT(a + j·b) (a, b real, length n), A[k] = (z[k] + conj z[n−k]) / 2 and
//! B[k] = (z[k] − conj z[n−k]) / 2j, so |A[k]|² = |z[k] + conj z[n−k]|²/4 and likewise for B, for
//! k = 0..=n/2 (k = 0 pairs with itself). f64 throughout.

use rustfft::num_complex::Complex64;

/// Work space of one thread: fill `ra` and `rb` with the two frames, call [`PowerPair::run`], read
/// `pa` and `pb` (n/2 + 1 bins each).
pub(crate) struct PowerPair {
    pub ra: Vec<f64>,
    pub rb: Vec<f64>,
    pub pa: Vec<f64>,
    pub pb: Vec<f64>,
    buf: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

impl PowerPair {
    /// Buffers for `fft` (a forward FFT of length n).
    pub fn new(fft: &dyn rustfft::Fft<f64>) -> PowerPair {
        let n = fft.len();
        PowerPair {
            ra: vec![0.0; n],
            rb: vec![0.0; n],
            pa: vec![0.0; n / 2 + 1],
            pb: vec![0.0; n / 2 + 1],
            buf: vec![Complex64::new(0.0, 0.0); n],
            scratch: vec![Complex64::new(0.0, 0.0); fft.get_inplace_scratch_len()],
        }
    }

    /// Whether this work space serves an FFT of `n` points needing `scratch` values of scratch.
    pub fn fits(&self, n: usize, scratch: usize) -> bool {
        self.ra.len() == n && self.scratch.len() == scratch
    }

    /// `pa` = |FFT(ra)|², `pb` = |FFT(rb)|² over bins 0..=n/2.
    #[inline(always)]
    pub fn run(&mut self, fft: &dyn rustfft::Fft<f64>) {
        let n = self.ra.len();
        for ((z, &a), &b) in self.buf.iter_mut().zip(&self.ra).zip(&self.rb) {
            *z = Complex64::new(a, b);
        }
        fft.process_with_scratch(&mut self.buf, &mut self.scratch);
        let z0 = self.buf[0];
        self.pa[0] = z0.re * z0.re;
        self.pb[0] = z0.im * z0.im;
        // 0 < k ≤ n/2 pairs with n − k: buf[1..=n/2] against the last n/2 values reversed, zipped
        // (no index arithmetic or bounds checks in the loop, so it vectorises); n is even (the callers
        // check), so the last k = n/2 pairs with itself.
        let h = n / 2;
        let pairs = self.pa[1..=h].iter_mut().zip(&mut self.pb[1..=h]).zip(&self.buf[1..=h]).zip(self.buf[n - h..].iter().rev());
        for (((pa, pb), &z), &w) in pairs {
            let zc = w.conj();
            *pa = (z + zc).norm_sqr() * 0.25;
            *pb = (z - zc).norm_sqr() * 0.25;
        }
    }
}
