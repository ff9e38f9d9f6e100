"""Named features of the biosignal parts of an event: EEG band power, ECG heart rate and HRV, GSR.

Each extractor takes one channel (`values`) and its `sample_rate` in Hz, checks that the signal
can carry what is measured, and raises `ModalityError` with the reason otherwise: the worker
dead-letters such an event rather than feeding the network numbers that mean nothing.

EEG (`EEG_BANDS`) - relative band power: each band's share of the 0.5-45 Hz power in a Welch PSD
  with 2 s Hann segments (0.5 Hz resolution, so the 0.5-4 Hz delta band has 7 frequencies).
  Band limits follow the IFCN glossary (Kane et al., Clin. Neurophysiol. Pract. 2, 2017): delta
  0.5-4, theta 4-8, alpha 8-13, beta 13-30, gamma 30-45 Hz; gamma stops at 45 Hz to stay clear of
  50/60 Hz mains. Relative (not absolute) power, because absolute microvolts depend on electrode
  impedance and amplifier, not on the person. Sample rate >= 100 Hz: the top of gamma (45 Hz) needs
  a Nyquist frequency above it with room for the anti-alias filter's roll-off. >= 2 s: one Welch
  segment, the least that resolves delta.

ECG (`ECG_FEATURES`) - R peaks after Pan & Tompkins (IEEE Trans. Biomed. Eng. 32(3), 1985): a
  5-15 Hz band-pass keeps the QRS complex and removes baseline wander, P/T waves and mains hum;
  zero-phase filtering (sosfiltfilt) keeps peak times unshifted; peaks closer than 0.25 s are one
  beat (refractory period; 240 bpm at most). Heart-rate variability as defined by the Task Force of
  the ESC and NASPE (Circulation 93(5), 1996): SDNN and RMSSD of the R-R intervals. The same
  Task Force asks for 250-500 Hz, and accepts lower rates down to about 100 Hz only when the R
  fiducial point is refined by interpolation, which is done here (parabolic, sub-sample); below
  100 Hz a 10+ ms timing error swamps RMSSD, whose normal values are 20-50 ms. >= 5 s: at least
  2 R-R intervals even at 30 bpm.

GSR (`GSR_FEATURES`) - electrodermal activity (Boucsein, "Electrodermal Activity", 2nd ed., 2012):
  the signal is low-passed at 1 Hz (SCRs rise over 1-3 s; what is faster is sensor noise), and
  the tonic skin conductance level is its lower envelope: a grey-scale opening (running minimum,
  then running maximum) over 20 s (20 s = 1 / 0.05 Hz: tonic is what changes slower than 0.05 Hz).
  Why an opening rather than the running median or low-pass often used (e.g. NeuroKit2): SCRs
  only ever add to the level, so the tonic level is the floor between them; the opening follows
  a drifting floor exactly and removes any response shorter than the window, whereas a median or
  low-pass is pulled up by responses (more so when they come in bursts) and, on a drifting level,
  starts rising ahead of a response - which on test signals showed up as spurious SCRs. The
  phasic part is the signal minus the tonic. Skin conductance responses (SCRs) are its peaks with
  an amplitude (trough-to-peak prominence) of at least 0.01 in the signal's units: 0.01 uS is the
  customary minimum SCR amplitude (Society for Psychophysiological Research committee,
  Psychophysiology 49(8), 2012). SCRs rise in 1-3 s, so >= 1 Hz resolves them; >= 10 s holds one
  whole response.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage, signal

from pipeline.errors import ModalityError
from pipeline.modalities.spectrum import as_signal, format_hz
from schemas.labels import ECG_FEATURES, EEG_BANDS, GSR_FEATURES

Signal = np.ndarray | Sequence[float]

# --- EEG ---------------------------------------------------------------------------------------
EEG_BAND_LIMITS: dict[str, tuple[float, float]] = {
    "delta": (0.5, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}
EEG_MIN_RATE = 100.0
EEG_MIN_SECONDS = 2.0
EEG_SEGMENT_SECONDS = 2.0

# --- ECG ---------------------------------------------------------------------------------------
ECG_MIN_RATE = 100.0
ECG_MIN_SECONDS = 5.0
ECG_BAND_HZ = (5.0, 15.0)
ECG_REFRACTORY_S = 0.25
# A candidate is an R peak when it reaches this share of the typical tall peak (the 90th
# percentile of all candidates): low enough for beat-to-beat amplitude changes (breathing moves
# the heart's axis), high enough to leave the T waves and noise the band-pass lets through.
ECG_HEIGHT_SHARE = 0.35

# --- GSR ---------------------------------------------------------------------------------------
GSR_MIN_RATE = 1.0
GSR_MIN_SECONDS = 10.0
GSR_TONIC_WINDOW_S = 20.0
GSR_MIN_AMPLITUDE = 0.01
GSR_SMOOTH_HZ = 1.0  # SCRs rise over 1-3 s: 1 Hz keeps their shape and drops sensor noise
GSR_MIN_SPACING_S = 1.0


def eeg_features(values: Signal, sample_rate: float) -> dict[str, float]:
    """Share of 0.5-45 Hz power in each band; the five shares sum to 1."""
    x, rate = as_signal(values, sample_rate, "eeg")
    if rate < EEG_MIN_RATE:
        raise ModalityError(
            f"eeg: sample_rate {format_hz(rate)} Hz is too low: gamma (30-45 Hz) needs at least {EEG_MIN_RATE:g} Hz"
        )
    _require_duration("eeg", x, rate, EEG_MIN_SECONDS, "one 2 s Welch segment to resolve delta (0.5-4 Hz)")

    nperseg = round(EEG_SEGMENT_SECONDS * rate)
    freqs, psd = signal.welch(x, fs=rate, window="hann", nperseg=nperseg, detrend="linear")
    powers = {}
    for band, (low, high) in EEG_BAND_LIMITS.items():
        # Half-open bands so a frequency on a shared edge counts once; the top edge is closed.
        upper = freqs <= high if band == EEG_BANDS[-1] else freqs < high
        powers[band] = float(psd[(freqs >= low) & upper].sum())
    total = sum(powers.values())
    if not total > 0:
        raise ModalityError("eeg: no power between 0.5 and 45 Hz (a flat line?)")
    return _named(EEG_BANDS, {band: power / total for band, power in powers.items()})


def ecg_features(values: Signal, sample_rate: float) -> dict[str, float]:
    """Heart rate and HRV from R peaks; needs at least two peaks (one R-R interval)."""
    x, rate = as_signal(values, sample_rate, "ecg")
    if rate < ECG_MIN_RATE:
        raise ModalityError(
            f"ecg: sample_rate {format_hz(rate)} Hz is too low: R-peak timing needs at least {ECG_MIN_RATE:g} Hz "
            "(HRV differences between beats are tens of milliseconds)"
        )
    _require_duration("ecg", x, rate, ECG_MIN_SECONDS, "2 R-R intervals")

    peaks = _r_peaks(x, rate)
    if peaks.size == 0:
        raise ModalityError("ecg: no R peaks found")
    if peaks.size < 2:
        raise ModalityError("ecg: only 1 R peak found: need at least 2 for an R-R interval")
    rr_ms = np.diff(peaks) / rate * 1000.0
    rr_mean = float(rr_ms.mean())
    features = {
        "heart_rate_bpm": 60_000.0 / rr_mean,
        "rr_mean_ms": rr_mean,
        # ddof=0: the spread of exactly these intervals. Tools differ (NeuroKit2 uses ddof=1); with
        # the ~10 intervals of a short window the choice moves SDNN by ~5 %, so it is fixed here.
        "sdnn_ms": float(rr_ms.std()),
        "rmssd_ms": float(np.sqrt(np.mean(np.diff(rr_ms) ** 2))) if rr_ms.size > 1 else 0.0,
        "beats": float(peaks.size),
    }
    return _named(ECG_FEATURES, features)


def _r_peaks(x: np.ndarray, rate: float) -> np.ndarray:
    """R peak times in (fractional) samples."""
    sos = signal.butter(3, ECG_BAND_HZ, btype="bandpass", fs=rate, output="sos")
    filtered = signal.sosfiltfilt(sos, x - np.median(x))
    # Lead placement can invert the QRS: follow whichever polarity has the larger extremes.
    if np.percentile(filtered, 0.5) < -np.percentile(filtered, 99.5):
        filtered = -filtered
    distance = max(1, round(ECG_REFRACTORY_S * rate))
    candidates, props = signal.find_peaks(filtered, height=0.0, distance=distance)
    if candidates.size == 0:
        return np.empty(0)
    reference = float(np.percentile(props["peak_heights"], 90))
    if not reference > 1e-12 * max(1.0, float(np.abs(x).max())):
        return np.empty(0)
    peaks, _ = signal.find_peaks(filtered, height=ECG_HEIGHT_SHARE * reference, distance=distance)
    return _parabolic_peaks(filtered, peaks)


def _parabolic_peaks(y: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Refine integer peak positions to the vertex of the parabola through each peak's neighbours.

    This is the interpolation the HRV Task Force asks for at low sample rates: it turns the
    +-half-sample grid error (+-2 ms at 250 Hz) into a small fraction of a sample.
    """
    refined = peaks.astype(np.float64)
    inner = (peaks > 0) & (peaks < y.size - 1)
    p = peaks[inner]
    left, mid, right = y[p - 1], y[p], y[p + 1]
    curvature = left - 2.0 * mid + right
    safe = curvature < 0
    offset = np.zeros_like(mid)
    offset[safe] = 0.5 * (left[safe] - right[safe]) / curvature[safe]
    refined[inner] += np.clip(offset, -0.5, 0.5)
    return refined


def gsr_features(values: Signal, sample_rate: float) -> dict[str, float]:
    """Tonic skin conductance level and the count, rate and mean amplitude of SCRs."""
    x, rate = as_signal(values, sample_rate, "gsr")
    if rate < GSR_MIN_RATE:
        raise ModalityError(
            f"gsr: sample_rate {format_hz(rate)} Hz is too low: skin conductance responses (1-3 s rise) "
            f"need at least {GSR_MIN_RATE:g} Hz"
        )
    duration = _require_duration("gsr", x, rate, GSR_MIN_SECONDS, "one whole skin conductance response")

    # Below 4 Hz the cut-off drops to rate / 4, still above the ~0.3 Hz of an SCR's rise.
    sos = signal.butter(2, min(GSR_SMOOTH_HZ, rate / 4.0), btype="lowpass", fs=rate, output="sos")
    smooth = signal.sosfiltfilt(sos, x, padlen=min(x.size - 1, 3 * (2 * len(sos) + 1)))
    window = max(1, round(GSR_TONIC_WINDOW_S * rate)) | 1  # odd: centred
    tonic = ndimage.grey_opening(smooth, size=window, mode="nearest")
    phasic = smooth - tonic

    peaks, props = signal.find_peaks(
        phasic,
        prominence=GSR_MIN_AMPLITUDE,
        distance=max(1, round(GSR_MIN_SPACING_S * rate)),
        wlen=window,  # trough-to-peak within one tonic window, not against a distant low point
    )
    amplitudes = props["prominences"]
    count = int(peaks.size)
    features = {
        "tonic_level": float(tonic.mean()),
        "phasic_peaks": float(count),
        "phasic_rate_per_min": count / (duration / 60.0),
        "phasic_amplitude": float(amplitudes.mean()) if count else 0.0,
    }
    return _named(GSR_FEATURES, features)


def _require_duration(name: str, x: np.ndarray, rate: float, minimum_s: float, why: str) -> float:
    duration = x.size / rate
    if duration < minimum_s:
        raise ModalityError(f"{name}: {duration:.1f} s is too short: need at least {minimum_s:g} s ({why})")
    return duration


def _named(names: tuple[str, ...], values: dict[str, float]) -> dict[str, float]:
    """In the schema's order, and loudly wrong (KeyError) if the label list and this code drift apart."""
    if set(values) != set(names):
        raise KeyError(f"features {sorted(values)} do not match the schema's {list(names)}")
    return {name: float(values[name]) for name in names}
