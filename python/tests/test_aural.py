"""The aural Python package against the CLI (AURAL_CLI, the `aural` binary), the golden fixtures
(torchaudio / HF numbers committed in tests/golden/fixtures) and, when installed, torchaudio and HF
transformers themselves; bad input; threads.

Run: AURAL_CLI=target/debug/aural python -m pytest python/tests (scripts/test.sh does it).
"""

import json
import os
import struct
import subprocess
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import aural

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "golden" / "fixtures"
DEMO = ROOT / "assets" / "demo"


def cli():
    exe = os.environ.get("AURAL_CLI")
    if not exe:
        for p in ["target/debug/aural", "target/release/aural"]:
            if (ROOT / p).exists():
                exe = str(ROOT / p)
                break
    assert exe, "set AURAL_CLI to the aural binary"
    return exe


def run_cli(*args):
    r = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def read_safetensors(path):
    """A small reader (the safetensors package is not a dependency)."""
    b = Path(path).read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8 : 8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s : 8 + n + e], dtype="<f4").reshape(v["shape"])
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        v = np.ascontiguousarray(v, dtype="<f4")
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        blobs.append(v.tobytes())
        off += v.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_wav(path):
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
        return x.reshape(-1, w.getnchannels()).T.copy(), w.getframerate()


def write_wav(path, x, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).round().astype("<i2").tobytes())


def write_wav_f32(path, chans, rate):
    x = np.ascontiguousarray(np.asarray(chans, dtype="<f4").T)
    data = x.tobytes()
    c = x.shape[1]
    fmt = struct.pack("<HHIIHH", 3, c, rate, rate * 4 * c, 4 * c, 32)
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)


def read_wav_f32(path):
    """(channels × samples) of a 32-bit float WAV (the `wave` module reads PCM only)."""
    b = Path(path).read_bytes()
    assert b[:4] == b"RIFF" and b[8:12] == b"WAVE"
    i, fmt, data = 12, None, None
    while i + 8 <= len(b):
        cid, size = b[i : i + 4], struct.unpack("<I", b[i + 4 : i + 8])[0]
        body = b[i + 8 : i + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            data = body
        i += 8 + size + (size & 1)
    tag, c, rate, _, _, bits = fmt
    assert bits == 32 and tag in (3, 0xFFFE), fmt
    return np.frombuffer(data, dtype="<f4").reshape(-1, c).T.copy(), rate


# ---------------------------------------------------------------- fbank / ast_features


def test_fbank_equals_the_torchaudio_goldens():
    g = read_safetensors(FIX / "fbank.safetensors")
    for case in ["noise", "silence", "short"]:
        w = g[f"{case}/wave"]
        got = aural.fbank(w, 16000, num_mel_bins=128, window_type="hanning", htk_compat=True)
        assert got.dtype == np.float32 and got.shape == g[f"{case}/fbank"].shape
        np.testing.assert_allclose(got, g[f"{case}/fbank"], atol=2e-4, rtol=1e-4)
    # float64 input: the same numbers; 2-D input: channel 0 unless `channel`
    w = g["noise/wave"]
    a = aural.fbank(w, 16000)
    np.testing.assert_array_equal(aural.fbank(w.astype(np.float64), sample_frequency=16000), a)
    two = np.stack([w * 0.5, w])
    np.testing.assert_array_equal(aural.fbank(two, 16000, channel=1), a)
    np.testing.assert_array_equal(aural.fbank(two, 16000), aural.fbank(w * 0.5, 16000))
    # subtract_mean: every bin's mean over frames is 0
    np.testing.assert_allclose(aural.fbank(w, 16000, subtract_mean=True).mean(axis=0), 0, atol=1e-4)


def test_fbank_equals_torchaudio_live():
    torch = pytest.importorskip("torch")
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(22050) * 0.1).astype(np.float32)
    for opts in [
        {},
        {"num_mel_bins": 80, "window_type": "hamming", "frame_shift": 12.5, "low_freq": 60, "high_freq": -400},
        {"num_mel_bins": 40, "window_type": "blackman", "remove_dc_offset": False, "round_to_power_of_two": False, "preemphasis_coefficient": 0.0, "frame_length": 40.0},
    ]:
        want = kaldi.fbank(torch.from_numpy(x)[None], sample_frequency=22050, **opts).numpy()
        got = aural.fbank(x, 22050, **opts)
        np.testing.assert_allclose(got, want, atol=5e-4, rtol=1e-4)


def test_fbank_equals_the_cli(tmp_path):
    x = (np.random.default_rng(1).standard_normal(16000) * 0.1).astype(np.float32)
    write_wav(tmp_path / "a.wav", x)
    x16, _ = read_wav(tmp_path / "a.wav")
    run_cli("features", tmp_path / "a.wav", "--out", tmp_path / "f.safetensors", "--device", "cpu")
    run_cli("features", tmp_path / "a.wav", "--out", tmp_path / "i.safetensors", "--ast", "--device", "cpu")
    np.testing.assert_array_equal(aural.fbank(x16[0], 16000, num_mel_bins=128, window_type="hanning"), read_safetensors(tmp_path / "f.safetensors")["fbank"])
    np.testing.assert_array_equal(aural.ast_features(x16[0])[0], read_safetensors(tmp_path / "i.safetensors")["input_values"])


def test_ast_features_equal_the_hf_goldens_and_hf():
    g = read_safetensors(FIX / "fbank.safetensors")
    got = aural.ast_features(g["noise/wave"])
    assert got.shape == (1, 1024, 128)
    np.testing.assert_allclose(got[0], g["noise/input_values"], atol=1e-4, rtol=1e-4)
    batch = aural.ast_features(np.stack([g["noise/wave"][:16000], g["noise/wave"][37:16037]]), max_length=200)
    assert batch.shape == (2, 200, 128)
    np.testing.assert_array_equal(batch[0], aural.ast_features(g["noise/wave"][:16000], max_length=200)[0])
    tr = pytest.importorskip("transformers")
    fe = tr.ASTFeatureExtractor()
    want = fe(g["noise/wave"], sampling_rate=16000, return_tensors="np")["input_values"]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- AST


@pytest.fixture(scope="module")
def ast_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ast")
    g = read_safetensors(FIX / "ast_small.safetensors")
    cfg = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128, "max_length": 128, "num_mel_bins": 32,
           "hidden_act": "gelu", "layer_norm_eps": 1e-12, "patch_size": 16, "qkv_bias": True, "frequency_stride": 10, "time_stride": 10,
           "model_type": "audio-spectrogram-transformer", "architectures": ["ASTModel"]}
    (d / "config.json").write_text(json.dumps(cfg))
    write_safetensors(d / "model.safetensors", {k[len("weights/"):]: v for k, v in g.items() if k.startswith("weights/")})
    return d


def test_ast_embed_equals_the_cli_and_hf(ast_dir, tmp_path):
    x = (np.random.default_rng(2).standard_normal(16000) * 0.1).astype(np.float32)
    write_wav(tmp_path / "a.wav", x)
    x16, _ = read_wav(tmp_path / "a.wav")
    m = aural.AST(str(ast_dir), device="cpu")
    assert m.config["tokens"] == 26
    h = m.embed(x16[0])
    assert h.shape == (26, 64) and h.dtype == np.float32
    run_cli("embed", "--model", ast_dir, tmp_path / "a.wav", "--out", tmp_path / "e.safetensors", "--device", "cpu")
    np.testing.assert_array_equal(h, read_safetensors(tmp_path / "e.safetensors")["last_hidden_state"])
    run_cli("embed", "--model", ast_dir, tmp_path / "a.wav", "--out", tmp_path / "p.safetensors", "--pooled", "--layer", "1", "--device", "cpu")
    np.testing.assert_allclose(m.embed(x16[0], layer=1, pooled=True), read_safetensors(tmp_path / "p.safetensors")["pooler_output"], atol=1e-6)
    both = m.embed(np.stack([x16[0], x16[0][::-1].copy()]))
    assert both.shape == (2, 26, 64)
    np.testing.assert_allclose(both[0], h, atol=1e-5)
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers")
    hf = tr.ASTModel.from_pretrained(str(ast_dir)).eval()
    fe = tr.ASTFeatureExtractor(max_length=128, num_mel_bins=32)
    iv = fe(x16[0], sampling_rate=16000, return_tensors="pt")["input_values"]
    with torch.no_grad():
        want = hf(iv).last_hidden_state[0].numpy()
    np.testing.assert_allclose(h, want, atol=2e-4, rtol=1e-3)


# ---------------------------------------------------------------- detection


def clip():
    x, rate = read_wav(DEMO / "clips" / "syn_00000.wav")
    return x[0], rate


def test_detector_scores_and_events_equal_the_cli(tmp_path):
    det = aural.SoundEventDetector(device="cpu")
    assert "demo" in det.source and det.classes[0] == "beep"
    x, rate = clip()
    strong, weak = det.scores(x, rate)
    assert strong.shape == (248, len(det.classes)) and weak.shape == (len(det.classes),)
    run_cli("detect", DEMO / "clips" / "syn_00000.wav", "--scores", tmp_path / "s.safetensors", "--tsv", tmp_path / "e.tsv", "--device", "cpu")
    s = read_safetensors(tmp_path / "s.safetensors")
    np.testing.assert_array_equal(strong, s["strong"])
    np.testing.assert_array_equal(weak, s["weak"])
    rows = [l.split("\t") for l in (tmp_path / "e.tsv").read_text().splitlines()[1:]]
    want = [(float(a), float(b), c) for _, a, b, c in rows]
    got = det.detect(x, rate, as_dataframe=False)
    assert len(got) == len(want) > 0
    for (a, b, c), (p, q, r) in zip(got, want):
        assert c == r and abs(a - p) < 5e-4 and abs(b - q) < 5e-4
    try:
        import pandas  # noqa: F401
    except ImportError:
        assert det.detect(x, rate) == got
    else:
        df = det.detect(x, rate)
        assert list(df.columns) == ["onset", "offset", "event_label"] and len(df) == len(got)
    # another rate: resampled to the model's
    x32 = np.interp(np.arange(2 * len(x)) / 2, np.arange(len(x)), x).astype(np.float32)
    s2, _ = det.scores(x32, 32000)
    assert s2.shape == strong.shape and np.abs(s2 - strong).max() < 0.2


def test_a_checkpoint_directory(tmp_path):
    det = aural.SoundEventDetector(str(FIX / "ast_sed_small"), device="cpu")
    x = (np.sin(np.arange(24000) * 0.05) * 0.3).astype(np.float32)
    write_wav(tmp_path / "c.wav", x)
    x16, _ = read_wav(tmp_path / "c.wav")
    strong, weak = det.scores(x16[0])
    run_cli("detect", "--model", FIX / "ast_sed_small", tmp_path / "c.wav", "--scores", tmp_path / "s.safetensors", "--device", "cpu")
    np.testing.assert_array_equal(strong, read_safetensors(tmp_path / "s.safetensors")["strong"])


def test_separator_equals_the_cli_and_pytorch(tmp_path):
    io = read_safetensors(FIX / "separator" / "resunet_n1024_io.safetensors")
    mix = np.ascontiguousarray(io["mixture"][0])
    sep = aural.Separator(str(FIX / "separator" / "resunet_n1024"), device="cpu")
    assert sep.channels == 4 and sep.sample_rate == 32000 and "Cough" in sep.classes
    out = sep.separate(mix, 32000, ["Cough", "Speech", "Cough"])
    assert sorted(out) == ["Cough", "Speech"] and out["Cough"].shape == (1, mix.shape[1])
    # the PyTorch reference of the fixture (item 0 is queried with Cough)
    want = io["waveform"][0, 0]
    snr = 10 * np.log10(np.sum(want.astype(np.float64) ** 2) / np.sum((out["Cough"][0] - want).astype(np.float64) ** 2))
    assert snr > 80, snr
    write_wav_f32(tmp_path / "mix.wav", mix, 32000)
    run_cli("separate", "--model", FIX / "separator" / "resunet_n1024", tmp_path / "mix.wav", "--label", "Cough", "--out", tmp_path / "out", "--device", "cpu")
    cli_out, rate = read_wav_f32(tmp_path / "out" / "mix_Cough.wav")
    assert rate == 32000
    np.testing.assert_array_equal(out["Cough"], cli_out)
    with pytest.raises(ValueError, match="4"):
        sep.separate(mix[:1], 32000, ["Cough"])
    with pytest.raises(ValueError, match="labels"):
        sep.separate(mix, 32000)
    with pytest.raises(aural.AuralError, match="Caugh"):
        sep.separate(mix, 32000, ["Caugh"])


def test_bad_input_is_a_clear_exception():
    det = aural.SoundEventDetector(device="cpu")
    x, _ = clip()
    with pytest.raises(TypeError, match="float32 or float64"):
        det.scores((x * 32767).astype(np.int16))
    with pytest.raises(TypeError, match="numpy array"):
        det.scores(list(x))
    with pytest.raises(ValueError, match="1-D"):
        det.scores(x.reshape(1, 1, -1))
    with pytest.raises(ValueError, match="C-contiguous"):
        det.scores(x[::2])
    bad = x.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match="non-finite sample .* index 7"):
        det.scores(bad)
    with pytest.raises(ValueError, match="empty"):
        aural.fbank(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="one clip"):
        det.scores(np.stack([x, x]))
    with pytest.raises(ValueError, match="dither"):
        aural.fbank(x, dither=1.0)
    with pytest.raises(ValueError, match="window_type"):
        aural.fbank(x, window_type="kaiser")
    with pytest.raises(ValueError, match="sample_rate"):
        det.scores(x, 0)
    with pytest.raises(aural.AuralError, match="nowhere"):
        aural.SoundEventDetector("/nowhere/model", device="cpu")
    with pytest.raises(ValueError, match="unknown device"):
        aural.SoundEventDetector(device="tpu")


def test_threads_share_a_model():
    det = aural.SoundEventDetector(device="cpu")
    x, rate = clip()
    want, _ = det.scores(x, rate)
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda _: det.scores(x, rate)[0], range(8)))
    for o in outs:
        np.testing.assert_array_equal(o, want)


def test_devices_and_doctor():
    assert "cpu" in aural.devices()
    d = aural.doctor()
    assert d["version"] == aural.__version__ and d["auto"] in aural.devices() and d["why"]
