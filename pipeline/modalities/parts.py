"""An event's non-text parts: decoded, measured, and turned into model inputs.

`extract` runs on the worker's CPU side, per event, before batching: a part that
cannot be decoded or measured raises `ModalityError` there, so the event goes to the
dead-letter queue alone instead of failing the batch it would have joined. What it
returns is kept twice: the named measurements go into the result as they are, and
`vectors` scales them into the fixed-width inputs of the modality tokens.
"""

from __future__ import annotations

import base64
import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import ModalityError
from schemas import labels as L
from schemas.input import InputEvent
from schemas.result import Analysis, BiosignalAnalysis, SignalSpectrum


@dataclass
class Parts:
    """What one event's non-text parts measured; None where the event had no such part."""

    image: dict[str, float] | None = None
    image_pixels: Any = None  # a PIL image, kept (reduced: `fit_for_vision`) only when a vision encoder will read it
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
        from pipeline.modalities.image import measure_image

        data = base64.b64decode(event.image.data)
        parts.image, parts.image_pixels = measure_image(event.image.format, data, keep_for_vision=keep_image)
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
    _check_publishable(parts)
    return parts


# ---- what the result schema will accept ---------------------------------------------
# The result is validated when it is built, after the batch ran: a measurement outside
# the schema's range would fail there and take the worker down with it (e.g. GSR values
# of 2e9 make tonic_level 2e9, beyond the schema's +-1e9). So every number extraction
# returns is held here to the very ranges the result schema states -- read from its JSON
# Schema, the published contract, not copied -- while the event can still be
# dead-lettered alone with the feature named.


@dataclass(frozen=True)
class Bound:
    """A number's allowed interval, as a JSON Schema fragment states it."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False  # exclusiveMinimum
    hi_open: bool = False  # exclusiveMaximum

    @classmethod
    def of(cls, schema: dict[str, Any]) -> "Bound":
        lo, hi = schema.get("minimum"), schema.get("maximum")
        lo_x, hi_x = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        return cls(
            lo=float(lo_x if lo_x is not None else lo if lo is not None else -math.inf),
            hi=float(hi_x if hi_x is not None else hi if hi is not None else math.inf),
            lo_open=lo_x is not None,
            hi_open=hi_x is not None,
        )

    def admits(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return math.isfinite(x) and above and below

    def __str__(self) -> str:
        left = "(" if self.lo_open or math.isinf(self.lo) else "["
        right = ")" if self.hi_open or math.isinf(self.hi) else "]"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


@dataclass(frozen=True)
class PublishedBounds:
    """Per group (image, audio, eeg, ecg, gsr) and feature, and for a spectrum, what
    `schemas.result` accepts."""

    features: dict[str, dict[str, Bound]]
    spectrum_bin: Bound
    spectrum_bins: tuple[int, int]  # min, max number of bins
    spectrum_max_hz: Bound


@functools.cache
def published_bounds() -> PublishedBounds:
    """Read once from the result models' JSON Schemas (`Named(...)` fields, `SignalSpectrum`)."""
    groups = {"image": Analysis, "audio": Analysis, **{name: BiosignalAnalysis for name in L.BIOSIGNALS}}
    features = {group: _named_bounds(model.model_json_schema()["properties"][group]) for group, model in groups.items()}
    spectrum = SignalSpectrum.model_json_schema()["properties"]
    magnitude = spectrum["magnitude"]
    return PublishedBounds(
        features=features,
        spectrum_bin=Bound.of(magnitude["items"]),
        spectrum_bins=(magnitude.get("minItems", 0), magnitude.get("maxItems", 2**31)),
        spectrum_max_hz=Bound.of(spectrum["max_hz"]),
    )


def _named_bounds(field: dict[str, Any]) -> dict[str, Bound]:
    """{feature: Bound} of an optional `Named(...)` field's schema (the object branch of its anyOf)."""
    mapping = next(s for s in field.get("anyOf", [field]) if s.get("type") == "object")
    return {name: Bound.of(prop) for name, prop in mapping["properties"].items()}


def _check_publishable(parts: Parts) -> None:
    """Refuse a measurement the result could not carry: not finite (a NaN would also
    poison the token and then the whole result) or outside the schema's range."""
    bounds = published_bounds()
    groups: dict[str, dict[str, float] | None] = {"image": parts.image, "audio": parts.audio}
    groups.update(parts.biosignals or {})
    for group, values in groups.items():
        for key, value in (values or {}).items():
            if not math.isfinite(value):
                raise ModalityError(f"{group}: measured {key} is not finite ({value})")
            bound = bounds.features[group][key]
            if not bound.admits(value):
                raise ModalityError(f"{group}: measured {key} = {value:g} is outside the result's range {bound}")
    for name, (magnitude, max_hz) in parts.spectra.items():
        _check_spectrum(name, magnitude, max_hz, bounds)


def _check_spectrum(name: str, magnitude: list[float], max_hz: float, bounds: PublishedBounds) -> None:
    low, high = bounds.spectrum_bins
    if not low <= len(magnitude) <= high:
        raise ModalityError(f"{name} spectrum: {len(magnitude)} bins, the result takes {low}-{high}")
    for k, value in enumerate(magnitude):
        if not bounds.spectrum_bin.admits(value):
            raise ModalityError(
                f"{name} spectrum: bin {k} = {value:g} is outside the result's range {bounds.spectrum_bin}"
            )
    if not bounds.spectrum_max_hz.admits(max_hz):
        raise ModalityError(
            f"{name} spectrum: max_hz = {max_hz:g} is outside the result's range {bounds.spectrum_max_hz}"
        )


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
