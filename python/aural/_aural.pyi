"""Type stubs of aural's native module."""

from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

class AuralError(Exception):
    """An error of the aural engine (the message the CLI prints)."""

Wave = Union[npt.NDArray[np.float32], npt.NDArray[np.float64]]

def fbank(
    waveform: Wave,
    sample_rate: Optional[float] = None,
    *,
    sample_frequency: Optional[float] = None,
    num_mel_bins: int = 23,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    window_type: str = "povey",
    preemphasis_coefficient: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    dither: float = 0.0,
    remove_dc_offset: bool = True,
    round_to_power_of_two: bool = True,
    use_energy: bool = False,
    use_log_fbank: bool = True,
    use_power: bool = True,
    snip_edges: bool = True,
    htk_compat: bool = False,
    subtract_mean: bool = False,
    energy_floor: float = 1.0,
    raw_energy: bool = True,
    vtln_warp: float = 1.0,
    min_duration: float = 0.0,
    channel: int = -1,
    device: str = "cpu",
) -> npt.NDArray[np.float32]:
    """torchaudio.compliance.kaldi.fbank: (frames, num_mel_bins) log mel energies.

    ``waveform`` is 1-D (samples) or 2-D (channels × samples; ``channel`` picks one, -1 = 0), float32
    or float64. Options take torchaudio's names and defaults; ``sample_rate`` (or
    ``sample_frequency``) defaults to 16000. Unsupported settings (dither ≠ 0, use_energy,
    snip_edges=False, use_log_fbank=False, use_power=False, vtln_warp ≠ 1) raise ValueError.
    """

def ast_features(
    waveform: Wave,
    sample_rate: float = 16000.0,
    *,
    max_length: int = 1024,
    num_mel_bins: int = 128,
    mean: float = -4.2677393,
    std: float = 4.5689974,
    do_normalize: bool = True,
    device: str = "cpu",
) -> npt.NDArray[np.float32]:
    """HF ASTFeatureExtractor's ``input_values``: (batch, max_length, num_mel_bins).

    A 1-D waveform is a batch of one; 2-D is (batch × samples). Audio at another rate is resampled
    to 16 kHz first (HF refuses it).
    """

def devices() -> List[str]:
    """The usable devices, best first (``cuda:N``…, then ``cpu``)."""

def doctor() -> Dict[str, object]:
    """Version, what ``device="auto"`` picks and why, the usable devices, the threads."""

class AST:
    """An AST backbone from an HF checkpoint directory (ASTModel or ASTForAudioClassification)."""

    def __init__(self, model_dir: str, device: str = "auto") -> None: ...
    @property
    def config(self) -> Dict[str, int]: ...
    def embed(self, waveform: Wave, sample_rate: float = 16000.0, layer: Optional[int] = None, pooled: bool = False) -> npt.NDArray[np.float32]:
        """``last_hidden_state`` (tokens × D), or HF's ``hidden_states[layer]``, or with ``pooled``
        the ``pooler_output`` (D); a 2-D input (batch × samples) adds a leading batch axis."""

class SoundEventDetector:
    """AST-SED / AST-GRU sound event detection; ``model_dir=None`` runs the builtin demo model."""

    def __init__(self, model_dir: Optional[str] = None, device: str = "auto") -> None: ...
    @property
    def classes(self) -> List[str]: ...
    @property
    def frame_hop(self) -> float: ...
    @property
    def source(self) -> str: ...
    def scores(self, waveform: Wave, sample_rate: float = 16000.0) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """(strong, weak): frame probabilities (frames × classes) and clip probabilities (classes),
        the numbers ``aural detect --scores`` writes."""
    def events(self, waveform: Wave, sample_rate: float = 16000.0) -> List[Tuple[float, float, str]]:
        """Events after the model's post-processing: (onset, offset, label)."""
    def detect(self, waveform: Wave, sample_rate: float = 16000.0, *, as_dataframe: Optional[bool] = None) -> object:
        """A pandas DataFrame (onset, offset, event_label) when pandas is installed, else ``events``."""

class Separator:
    """A label-conditioned ResUNet separator (the DCASE 2025 task 4 baseline's ResUNet30 / ResUNetK,
    ``aural separate``'s checkpoints), or AudioSep's query-conditioned one. CP-JKU separators need
    their SED model: use ``aural separate --sed`` / ``aural s5``."""

    def __init__(self, model_dir: str, device: str = "auto") -> None: ...
    @property
    def classes(self) -> List[str]: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    def separate(
        self,
        mixture: Wave,
        sample_rate: float,
        labels: Optional[List[str]] = None,
        *,
        query: Optional[Wave] = None,
        chunk: float = 10.0,
        overlap: float = 1.0,
    ) -> Dict[str, npt.NDArray[np.float32]]:
        """{label: (output_channels, samples)} for a (channels, samples) mixture (resampled to the
        model's rate); recordings longer than ``chunk`` seconds run in chunks crossfaded over
        ``overlap`` seconds, as ``aural separate``."""
