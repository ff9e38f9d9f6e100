"""Fixed-size magnitude spectra of audio and biosignals for `auxiliary.spectra` (docs/PIPELINE.md, "Step 5").

The network and the result schema want every spectrum as DSP_BINS (128) numbers whatever the
part's sample rate or length, so the power spectral density is estimated with Welch's method
(P. Welch, IEEE Trans. Audio Electroacoust. 15(2), 1967: averaged Hann-windowed periodograms,
which trade a little resolution for much less variance than one FFT of a noisy signal) and then
averaged into 128 equal-width bins from 0 Hz to `max_hz`. Bin k covers [k, k+1) * max_hz / 128.

- Magnitude = sqrt(mean PSD in the bin): amplitude-like, so a weak harmonic is still visible
  next to a strong fundamental, as in the original DSP module's magnitude spectra.
- Normalised so the largest bin is 1: absolute level depends on electrodes, gain and microphone,
  which say nothing about the person; the level is reported separately (e.g. `energy_db`).
  A signal with no power (silence, a flat line) gives all zeros, never NaN.
- `max_hz` defaults to the Nyquist frequency. Callers pass `max_hz=8000` for voice audio:
  the speech band that matters for tone lies below 8 kHz, and a fixed range keeps a 16 kHz and a
  48 kHz recording of the same voice comparable bin for bin.

`as_signal` is the shared input check of every extractor in this package: it turns whatever the
JSON held into a finite 1-D float array or says precisely why not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from pipeline.errors import ModalityError
from schemas.labels import DSP_BINS

MIN_SAMPLES = 16


def as_signal(values: np.ndarray | Sequence[float], sample_rate: float, name: str) -> tuple[np.ndarray, float]:
    """Validate a signal once, here, so every extractor fails with the same precise reason.

    Returns a float64 copy (extractors filter in place and must not alter the caller's data)
    and the sample rate as a float.
    """
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError):
        raise ModalityError(f"{name}: sample_rate must be a number, got {sample_rate!r}") from None
    if not math.isfinite(rate) or rate <= 0:
        raise ModalityError(f"{name}: sample_rate must be a positive number, got {sample_rate!r}")
    try:
        x = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ModalityError(f"{name}: values must be a list of numbers") from None
    if x.ndim != 1:
        raise ModalityError(f"{name}: values must be one channel (a flat list), got shape {x.shape}")
    if x.size == 0:
        raise ModalityError(f"{name}: values are empty")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ModalityError(f"{name}: values hold {bad.size} non-finite number(s), the first at index {bad[0]}")
    return x, rate


def format_hz(rate: float) -> str:
    """'250' rather than '250.0' in messages people read."""
    return f"{rate:g}"


def welch(x: np.ndarray, rate: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Welch PSD, equal to `scipy.signal.welch(x, rate, "hann", nperseg)` (half-overlapping
    periodic-Hann segments, each mean-removed, density scaling) - a test holds it to that.

    Why not scipy's: since SciPy 1.12 welch runs one FFT call per segment (ShortTimeFFT), ~100 ms
    for a minute of 48 kHz audio; one batched rfft over all segments takes a few ms.
    """
    nperseg = min(int(nperseg), x.size)
    step = nperseg - nperseg // 2
    segments = sliding_window_view(x, nperseg)[::step]
    window = signal.get_window("hann", nperseg)
    spectra = np.fft.rfft((segments - segments.mean(axis=1, keepdims=True)) * window, axis=1)
    psd = np.mean(spectra.real**2 + spectra.imag**2, axis=0) / (rate * np.sum(window**2))
    psd[1 : None if nperseg % 2 else -1] *= 2.0  # fold negative frequencies; DC and Nyquist are single
    return np.fft.rfftfreq(nperseg, 1.0 / rate), psd


def signal_spectrum(
    values: np.ndarray | Sequence[float], sample_rate: float, *, max_hz: float | None = None
) -> tuple[list[float], float]:
    """Return (DSP_BINS magnitudes normalised to a maximum of 1, max_hz).

    `max_hz` above the Nyquist frequency is lowered to it: there is nothing to show there.
    """
    x, rate = as_signal(values, sample_rate, "spectrum")
    if x.size < MIN_SAMPLES:
        raise ModalityError(f"spectrum: {x.size} samples are too few: need at least {MIN_SAMPLES}")
    nyquist = rate / 2.0
    top = nyquist if max_hz is None else min(float(max_hz), nyquist)
    if not top > 0:
        raise ModalityError(f"spectrum: max_hz must be positive, got {max_hz!r}")

    # Aim for >= 2 Welch frequencies per output bin (resolution rate/nperseg <= half a bin), so
    # most bins are true averages; power-of-two segments keep the FFT fast.
    bin_width = top / DSP_BINS
    wanted = int(2 ** math.ceil(math.log2(max(256.0, 2.0 * rate / bin_width))))
    nperseg = min(x.size, wanted)
    freqs, psd = welch(x, rate, nperseg)

    edges = np.linspace(0.0, top, DSP_BINS + 1)
    index = np.searchsorted(edges, freqs, side="right") - 1
    inside = (index >= 0) & (index < DSP_BINS)
    sums = np.bincount(index[inside], weights=psd[inside], minlength=DSP_BINS)
    counts = np.bincount(index[inside], minlength=DSP_BINS)
    binned = np.empty(DSP_BINS)
    filled = counts > 0
    binned[filled] = sums[filled] / counts[filled]
    if not filled.all():  # short signals: coarser than a bin, so read the PSD at the bin centre
        centres = (edges[:-1] + edges[1:]) / 2.0
        binned[~filled] = np.interp(centres[~filled], freqs, psd)

    magnitude = np.sqrt(np.clip(binned, 0.0, None))
    peak = magnitude.max()
    if not peak > 0 or not np.isfinite(peak):
        return [0.0] * DSP_BINS, top
    return (magnitude / peak).tolist(), top
