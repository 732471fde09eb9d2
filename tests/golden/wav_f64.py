"""Golden fixtures for 64-bit float WAV input (models/src/audio.rs, read_wav_f64).

Writes, 2 channels × 50 frames, x[i, c] = 0.5·sin(0.1·i + c) in float64:
  tests/golden/fixtures/f64_scipy.wav     scipy.io.wavfile.write(…, 48000, x)  (WAVE_FORMAT_IEEE_FLOAT)
  tests/golden/fixtures/f64_extensible.wav soundfile, format WAVEX, subtype DOUBLE (WAVE_FORMAT_EXTENSIBLE)
The Rust test recomputes x and reads both files.
Run: .venv/bin/python tests/golden/wav_f64.py   (scipy 1.17, soundfile 0.13)
"""
import os

import numpy as np
import scipy.io.wavfile
import soundfile as sf

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
i = np.arange(50)[:, None]
c = np.arange(2)[None, :]
x = 0.5 * np.sin(0.1 * i + c)
scipy.io.wavfile.write(os.path.join(here, "f64_scipy.wav"), 48000, x.astype(np.float64))
sf.write(os.path.join(here, "f64_extensible.wav"), x, 22050, format="WAVEX", subtype="DOUBLE")
for f in ["f64_scipy.wav", "f64_extensible.wav"]:
    y, sr = sf.read(os.path.join(here, f), dtype="float64", always_2d=True)
    assert np.array_equal(y, x), f
    print(f, sr, y.shape, os.path.getsize(os.path.join(here, f)), "bytes")
