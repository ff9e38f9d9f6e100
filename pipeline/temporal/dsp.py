"""Frequency and resonance spectra of a stream's recent emotion trajectory (docs/PIPELINE.md, "Temporal state").

Input: the stream's window of STATE_VECTOR rows (oldest first, one row per event); the
seven emotion channels are used. Time is counted in events, so frequencies are in cycles
per event: bin k (k = 0 … 127) is k / 256 cycles per event, as `schemas.result.Spectrum`
documents (an FFT of length 256 without its Nyquist bin). Windows longer than 256 rows
use their latest 256 rows.

- `frequency`: amplitude spectrum. Each channel is linearly detrended, Hann-windowed and
  zero-padded to 256 points; |rfft| is scaled by 2 / sum(window) so a sinusoid of
  amplitude A peaks at about A in its bin. The seven channels' spectra are averaged.
- `resonance`: power spectral density (Welch: linearly detrended Hann segments of
  min(n, 64) events, half overlap, each zero-padded to 256 points; one-sided, units of
  channel-value^2 per cycle-per-event), averaged over the seven channels. Averaging
  segments makes it show oscillations the stream *sustains* across the window, while
  `frequency` also shows one-off swings.
Both are non-negative and finite. With fewer than `min_events` rows there is no spectrum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from schemas import labels as L

N_FFT = 2 * L.DSP_BINS
EMOTION_COLUMNS = tuple(L.STATE_VECTOR.index(e) for e in L.EMOTIONS)
_EMOTIONS = np.array(EMOTION_COLUMNS)
MIN_EVENTS = 8
WELCH_SEGMENT = 64


@dataclass(frozen=True)
class Spectra:
    frequency: np.ndarray  # [DSP_BINS]
    resonance: np.ndarray  # [DSP_BINS]


def bin_frequency(k: int | np.ndarray) -> float | np.ndarray:
    """Cycles per event at bin k."""
    return k / N_FFT


def trajectory_spectra(window: np.ndarray | Sequence[Sequence[float]], min_events: int = MIN_EVENTS) -> Spectra | None:
    return trajectory_spectra_many([window], min_events)[0]


def trajectory_spectra_many(
    windows: Sequence[np.ndarray | Sequence[Sequence[float]]], min_events: int = MIN_EVENTS
) -> list[Spectra | None]:
    """`trajectory_spectra` of several windows, batched (the worker recomputes a few streams'
    spectra in every micro-batch; each alone was ~0.1 ms of numpy call overhead): windows of up
    to `WELCH_SEGMENT` rows all together, zero-padded to that length (`_short_spectra`), longer
    ones one batched FFT per length. Equal, window by window, to computing each alone: every
    window is computed by itself along its own rows, whatever shares its batch."""
    out: list[Spectra | None] = [None] * len(windows)
    short: list[tuple[int, np.ndarray]] = []
    by_length: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, window in enumerate(windows):
        rows = np.asarray(window, dtype=np.float64)
        if rows.size == 0 or len(rows) < min_events:
            continue
        if rows.ndim != 2 or rows.shape[1] != len(L.STATE_VECTOR):
            raise ValueError(f"window rows must have {len(L.STATE_VECTOR)} columns, got shape {rows.shape}")
        if not np.isfinite(rows).all():
            raise ValueError("window holds non-finite values")
        rows = rows[-N_FFT:]
        (short if len(rows) <= WELCH_SEGMENT else by_length.setdefault(len(rows), [])).append((i, rows))
    if short:
        frequency, resonance = _short_spectra([rows for _, rows in short])
        for j, (i, _) in enumerate(short):
            out[i] = Spectra(frequency[j], resonance[j])
    for n, group in by_length.items():
        x = np.array([g[1] for g in group])[:, :, _EMOTIONS].transpose(0, 2, 1)  # [windows, channels, n]
        taper = _taper(n)
        amplitude = np.abs(np.fft.rfft(detrend_linear(x) * taper, n=N_FFT, axis=-1)) * (2.0 / taper.sum())
        frequency = np.maximum(amplitude.mean(axis=-2)[..., : L.DSP_BINS], 0.0)
        resonance = np.maximum(welch_psd(x, WELCH_SEGMENT).mean(axis=-2)[..., : L.DSP_BINS], 0.0)
        for j, (i, _) in enumerate(group):
            out[i] = Spectra(frequency[j], resonance[j])
    return out


def _short_spectra(windows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(frequency, resonance) `[windows, DSP_BINS]` of windows of at most `WELCH_SEGMENT` rows
    (any lengths), as one batch: each window's emotion channels zero-padded to `WELCH_SEGMENT`
    with its detrend, Hann tapers and scales taken over its own n rows, so the padding adds
    nothing (the FFT zero-pads to `N_FFT` anyway). Welch's one segment is then the whole
    window, detrended the same way, so both spectra come from one FFT call."""
    m = WELCH_SEGMENT
    lengths = np.array([len(w) for w in windows], dtype=np.float64)
    x = np.zeros((len(windows), len(EMOTION_COLUMNS), m))
    taper = np.zeros((len(windows), m))
    segment = np.zeros((len(windows), m))
    for j, w in enumerate(windows):
        n = len(w)
        x[j, :, :n] = w[:, _EMOTIONS].T
        taper[j, :n], segment[j, :n] = _taper(n), _segment_window(n)
    valid = np.arange(m) < lengths[:, None]  # [windows, m]
    t = np.where(valid, np.arange(m) - (lengths[:, None] - 1.0) / 2.0, 0.0)
    centred = np.where(valid[:, None, :], x - (x.sum(axis=-1) / lengths[:, None])[..., None], 0.0)
    tt = (t * t).sum(axis=-1)
    slope = np.divide(np.einsum("wcm,wm->wc", centred, t), tt[:, None], out=np.zeros(centred.shape[:2]),
                      where=tt[:, None] > 0)
    detrended = centred - slope[..., None] * t[:, None, :]  # 0 past each window's own rows
    both = np.fft.rfft(np.stack((detrended * taper[:, None, :], detrended * segment[:, None, :])), n=N_FFT, axis=-1)
    amplitude = np.abs(both[0]) * (2.0 / taper.sum(axis=-1))[:, None, None]
    psd = _one_sided_psd(both[1], (segment**2).sum(axis=-1)[:, None, None])
    return (np.maximum(amplitude.mean(axis=-2)[..., : L.DSP_BINS], 0.0),
            np.maximum(psd.mean(axis=-2)[..., : L.DSP_BINS], 0.0))


def detrend_linear(x: np.ndarray) -> np.ndarray:
    """Least-squares line removed along the last axis, in closed form: equal to
    `scipy.signal.detrend(x, type="linear")` (a test holds it to that), which solves one
    `lstsq` per call and was a visible share of the per-event bookkeeping."""
    n = x.shape[-1]
    if n < 2:
        return x - x.mean(axis=-1, keepdims=True)
    t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    centred = x - x.mean(axis=-1, keepdims=True)
    slope = (centred @ t) / (t @ t)
    return centred - slope[..., None] * t


@lru_cache(maxsize=64)
def _taper(n: int) -> np.ndarray:
    return signal.get_window("hann", n, fftbins=False) if n > 2 else np.ones(n)


@lru_cache(maxsize=64)
def _segment_window(n: int) -> np.ndarray:
    return signal.get_window("hann", n)  # periodic, as scipy.signal.welch uses


def welch_psd(x: np.ndarray, segment: int) -> np.ndarray:
    """`scipy.signal.welch(x, fs=1, window="hann", nperseg=segment, noverlap=segment // 2,
    nfft=N_FFT, detrend="linear", axis=1)[1]`, computed as ONE batched FFT over all
    channels and segments (a test holds it equal to scipy's). Why: scipy's welch runs one
    FFT call per segment and was the largest single cost of the worker's per-event
    bookkeeping (it runs for every stream every 8 events)."""
    step = segment - segment // 2
    segments = sliding_window_view(x, segment, axis=-1)[..., ::step, :]  # [..., channels, k, segment]
    detrended = detrend_linear(segments)
    window = _segment_window(segment)
    return _one_sided_psd(np.fft.rfft(detrended * window, n=N_FFT, axis=-1), np.sum(window**2)).mean(axis=-2)


def _one_sided_psd(spectra: np.ndarray, power: float | np.ndarray) -> np.ndarray:
    """Density of rfft `spectra` of tapered segments, as scipy's welch scales it; `power`: the
    taper's sum of squares (broadcast against `spectra`)."""
    psd = (spectra.real**2 + spectra.imag**2) / power
    psd[..., 1:-1] *= 2.0  # one-sided: DC and Nyquist (N_FFT is even) appear once
    return psd
