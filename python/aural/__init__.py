"""aural: a fast inference core for audio deep learning, from Python (numpy in, numpy out).

- ``fbank(waveform, sample_rate, **kaldi_options)``: torchaudio.compliance.kaldi.fbank's options and numbers.
- ``ast_features(waveform, sample_rate)``: HF ASTFeatureExtractor's ``input_values``.
- ``AST(model_dir, device="auto").embed(...)``: AST hidden states from an HF checkpoint directory.
- ``SoundEventDetector(model_dir=None, device="auto")``: AST-SED sound event detection
  (``model_dir=None``: the builtin demo model); ``.scores(...)`` and ``.detect(...)``.
- ``Separator(model_dir, device="auto").separate(mixture, sample_rate, labels)``: label-queried
  source separation (the DCASE 2025 task 4 baseline's ResUNet; ``query=`` for AudioSep's).
- ``devices()``, ``doctor()``.

Compute runs with the GIL released. Model objects are immutable and may be shared by threads:
their calls run concurrently (nothing serialises them). Engine errors raise ``AuralError``.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from ._aural import AST, AuralError, Separator, __version__, ast_features, devices, doctor, fbank
from ._aural import SoundEventDetector as _NativeDetector

__all__ = ["AST", "AuralError", "Separator", "SoundEventDetector", "ast_features", "devices", "doctor", "fbank", "__version__"]


class SoundEventDetector(_NativeDetector):
    """AST-SED / AST-GRU sound event detection (see ``aural detect``)."""

    def detect(self, waveform: Any, sample_rate: float = 16000.0, *, as_dataframe: bool | None = None) -> Any:
        """Events after the model's post-processing (median filters, thresholds).

        A pandas DataFrame with columns ``onset``, ``offset``, ``event_label`` when pandas is installed
        (or ``as_dataframe=True``), else a list of ``(onset, offset, label)`` tuples.
        """
        events: List[Tuple[float, float, str]] = self.events(waveform, sample_rate)
        if as_dataframe is False:
            return events
        try:
            import pandas as pd
        except ImportError:
            if as_dataframe:
                raise
            return events
        return pd.DataFrame(events, columns=["onset", "offset", "event_label"])
