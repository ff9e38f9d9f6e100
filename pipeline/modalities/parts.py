"""An event's non-text parts: decoded, measured, and turned into model inputs.

`extract` runs on the worker's CPU side, per event, before batching: a part that
cannot be decoded or measured raises `ModalityError` there, so the event goes to the
dead-letter queue alone instead of failing the batch it would have joined. What it
returns is kept twice: the named measurements go into the result as they are, and
`vectors` scales them into the fixed-width inputs of the modality tokens.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import ModalityError
from schemas import labels as L
from schemas.input import InputEvent


@dataclass
class Parts:
    """What one event's non-text parts measured; None where the event had no such part."""

    image: dict[str, float] | None = None
    image_pixels: Any = None  # a PIL image, kept only when a vision encoder will read it
    audio: dict[str, float] | None = None
    biosignals: dict[str, dict[str, float]] | None = None
    spectra: dict[str, tuple[list[float], float]] = field(default_factory=dict)

    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in L.MODALITIES if getattr(self, m) is not None)


def extract(event: InputEvent, keep_image: bool = False) -> Parts | None:
    """Decode and measure `event`'s non-text parts (None when it has none).

    `keep_image`: also keep the decoded pixels for a vision encoder (production)."""
    if event.image is None and event.audio is None and event.biosignals is None:
        return None
    parts = Parts()
    if event.image is not None:
        from pipeline.modalities.image import decode_image, image_descriptor

        img = decode_image(event.image.format, base64.b64decode(event.image.data))
        parts.image = image_descriptor(img)
        parts.image_pixels = img if keep_image else None
    if event.audio is not None:
        from pipeline.modalities.audio import audio_features, decode_audio
        from pipeline.modalities.spectrum import signal_spectrum

        samples, rate = decode_audio(event.audio.format, base64.b64decode(event.audio.data), event.audio.sample_rate)
        parts.audio = audio_features(samples, rate)
        parts.spectra["audio"] = signal_spectrum(samples, rate)
    if event.biosignals is not None:
        from pipeline.modalities import biosignals as bio
        from pipeline.modalities.spectrum import signal_spectrum

        measure = {"eeg": bio.eeg_features, "ecg": bio.ecg_features, "gsr": bio.gsr_features}
        parts.biosignals = {}
        for name in L.BIOSIGNALS:
            signal = getattr(event.biosignals, name)
            if signal is None:
                continue
            values = np.asarray(signal.values, dtype=np.float64)
            parts.biosignals[name] = measure[name](values, signal.sample_rate)
            parts.spectra[name] = signal_spectrum(values, signal.sample_rate)
    _check_finite(parts)
    return parts


def _check_finite(parts: Parts) -> None:
    """A NaN measurement would poison the token and then the whole result: refuse it here,
    where the event can still be dead-lettered with the feature named."""
    groups: dict[str, dict[str, float] | None] = {"image": parts.image, "audio": parts.audio}
    for name, values in (parts.biosignals or {}).items():
        groups[name] = values
    for group, values in groups.items():
        for key, value in (values or {}).items():
            if not math.isfinite(value):
                raise ModalityError(f"{group}: measured {key} is not finite ({value})")


# ---- scaling into model inputs ------------------------------------------------------
# Every feature is brought to roughly unit scale with a fixed, documented transform, so
# the projection's LayerNorm sees comparable magnitudes whatever the units (Hz, ms, dB).


def _log1p(x: float, scale: float = 1.0) -> float:
    return math.copysign(math.log1p(abs(x) / scale), x)


_AUDIO_SCALE: dict[str, Any] = {
    "pitch_hz": lambda v: v / 300.0,
    "pitch_std_hz": lambda v: v / 100.0,
    "voiced_fraction": lambda v: v,
    "energy_rms": lambda v: v * 10.0,
    "energy_db": lambda v: (v + 100.0) / 100.0,
    "speaking_rate_hz": lambda v: v / 5.0,
    "spectral_centroid_hz": lambda v: v / 4000.0,
    "spectral_rolloff_hz": lambda v: v / 8000.0,
    "spectral_flatness": lambda v: v,
    "zero_crossing_rate": lambda v: v * 10.0,
    "duration_s": lambda v: _log1p(v),
}
_ECG_SCALE: dict[str, Any] = {
    "heart_rate_bpm": lambda v: v / 100.0,
    "rr_mean_ms": lambda v: v / 1000.0,
    "sdnn_ms": lambda v: _log1p(v, 10.0),
    "rmssd_ms": lambda v: _log1p(v, 10.0),
    "beats": lambda v: _log1p(v, 10.0),
}
_GSR_SCALE: dict[str, Any] = {
    "tonic_level": lambda v: _log1p(v),
    "phasic_peaks": lambda v: _log1p(v),
    "phasic_rate_per_min": lambda v: v / 10.0,
    "phasic_amplitude": lambda v: _log1p(v),
}


def audio_vector(features: dict[str, float]) -> list[float]:
    return [_AUDIO_SCALE[k](features[k]) for k in L.AUDIO_FEATURES]


def biosignals_vector(signals: dict[str, dict[str, float]]) -> list[float]:
    """EEG shares, ECG, GSR, then one presence flag per signal (`L.BIOSIGNALS` order)."""
    out: list[float] = []
    for name, names, scale in (
        ("eeg", L.EEG_BANDS, None),
        ("ecg", L.ECG_FEATURES, _ECG_SCALE),
        ("gsr", L.GSR_FEATURES, _GSR_SCALE),
    ):
        values = signals.get(name)
        if values is None:
            out.extend([0.0] * len(names))
        elif scale is None:
            out.extend(values[k] for k in names)
        else:
            out.extend(scale[k](values[k]) for k in names)
    out.extend(1.0 if name in signals else 0.0 for name in L.BIOSIGNALS)
    return out


def image_vector(descriptor: dict[str, float]) -> list[float]:
    return [descriptor[k] for k in L.IMAGE_DESCRIPTOR]


def vectors(parts: list[Parts | None], with_image: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per modality some event of the batch has: (`[B, width]` float32, present `[B]` bool).

    Rows of events without that modality are zeros and masked. `with_image=False` leaves
    images out (a vision encoder produces their tokens instead)."""
    builders = {"audio": audio_vector, "biosignals": biosignals_vector}
    if with_image:
        builders["image"] = image_vector
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in L.MODALITIES:
        if name not in builders:
            continue
        rows = [getattr(p, name) if p is not None else None for p in parts]
        present = np.array([r is not None for r in rows], dtype=bool)
        if not present.any():
            continue
        first = builders[name](next(r for r in rows if r is not None))
        matrix = np.zeros((len(rows), len(first)), dtype=np.float32)
        for i, r in enumerate(rows):
            if r is not None:
                matrix[i] = builders[name](r)
        out[name] = (matrix, present)
    return out
