"""Biosignal features against known answers on synthetic signals whose truth is set by construction."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import ModalityError
from pipeline.modalities.biosignals import ecg_features, eeg_features, gsr_features
from pipeline.modalities.spectrum import signal_spectrum, welch
from schemas.labels import DSP_BINS, ECG_FEATURES, EEG_BANDS, GSR_FEATURES


def _rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- EEG -----------------------------------------------------------------------------------------


def _sine(freq: float, rate: float = 256.0, seconds: float = 4.0, noise: float = 0.05) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * freq * t) + noise * _rng().standard_normal(t.size)


@pytest.mark.parametrize(
    ("freq", "band"), [(2.0, "delta"), (6.0, "theta"), (10.0, "alpha"), (20.0, "beta"), (40.0, "gamma")]
)
def test_eeg_sine_lands_in_its_band(freq: float, band: str) -> None:
    shares = eeg_features(_sine(freq), 256.0)
    assert tuple(shares) == EEG_BANDS
    assert max(shares, key=shares.get) == band
    assert shares[band] > 0.8
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(v >= 0 for v in shares.values())


def test_eeg_mixture_keeps_power_ratio() -> None:
    # Amplitudes 2:1 -> power 4:1 between alpha and beta.
    t = np.arange(256 * 8) / 256.0
    x = 2 * np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 20 * t)
    shares = eeg_features(x, 256)
    assert shares["alpha"] / shares["beta"] == pytest.approx(4.0, rel=0.05)


def test_eeg_sample_rate_too_low() -> None:
    with pytest.raises(
        ModalityError, match=r"eeg: sample_rate 50 Hz is too low: gamma \(30-45 Hz\) needs at least 100 Hz"
    ):
        eeg_features(_sine(10, rate=50), 50)


def test_eeg_too_short() -> None:
    with pytest.raises(ModalityError, match=r"eeg: 1\.0 s is too short: need at least 2 s"):
        eeg_features(_sine(10, seconds=1.0), 256)


def test_eeg_flat_line_and_bad_values() -> None:
    with pytest.raises(ModalityError, match="no power"):
        eeg_features(np.zeros(1024), 256)
    values = _sine(10).tolist()
    values[17] = float("nan")
    with pytest.raises(ModalityError, match="first at index 17"):
        eeg_features(values, 256)
    with pytest.raises(ModalityError, match="one channel"):
        eeg_features(np.zeros((2, 1024)), 256)


# --- ECG -----------------------------------------------------------------------------------------

# (offset from the R peak in s, amplitude in mV, width in s): P, Q, R, S, T as Gaussians.
_WAVES = ((-0.20, 0.15, 0.025), (-0.03, -0.12, 0.010), (0.0, 1.0, 0.010), (0.03, -0.25, 0.010), (0.30, 0.30, 0.050))


def _ecg(beat_times: np.ndarray, rate: float = 250.0, seconds: float = 10.0, invert: bool = False) -> np.ndarray:
    """A textbook P-QRS-T template at each beat, plus baseline wander, mains hum and noise."""
    t = np.arange(int(rate * seconds)) / rate
    x = np.zeros_like(t)
    for beat in beat_times:
        for offset, amp, width in _WAVES:
            x += amp * np.exp(-0.5 * ((t - beat - offset) / width) ** 2)
    if invert:
        x = -x
    x += 0.4 * np.sin(2 * np.pi * 0.2 * t) + 0.05 * np.sin(2 * np.pi * 50 * t)
    return x + 0.02 * _rng().standard_normal(t.size)


def _regular(rr_s: float, seconds: float = 10.0, start: float = 0.5) -> np.ndarray:
    return np.arange(start, seconds - 0.4, rr_s)


def test_ecg_60_bpm() -> None:
    beats = _regular(1.0)
    features = ecg_features(_ecg(beats), 250)
    assert tuple(features) == ECG_FEATURES
    assert features["rr_mean_ms"] == pytest.approx(1000, abs=10)
    assert features["heart_rate_bpm"] == pytest.approx(60, abs=1)
    assert features["beats"] == len(beats) == 10
    assert features["sdnn_ms"] < 5 and features["rmssd_ms"] < 5


def test_ecg_90_bpm_inverted_lead() -> None:
    beats = _regular(60 / 90)
    features = ecg_features(_ecg(beats, invert=True), 250)
    assert features["rr_mean_ms"] == pytest.approx(666.7, abs=5)
    assert features["heart_rate_bpm"] == pytest.approx(90, abs=1)
    assert features["beats"] == len(beats)


def test_ecg_hrv_alternating_intervals() -> None:
    # R-R alternating 0.9 / 1.1 s: every successive difference is 200 ms (RMSSD) and every
    # interval is 100 ms from the 1000 ms mean (SDNN).
    intervals = np.tile([0.9, 1.1], 10)
    beats = 0.5 + np.concatenate([[0.0], np.cumsum(intervals)])
    beats = beats[beats < 19.6]
    features = ecg_features(_ecg(beats, seconds=20.0), 250)
    assert features["beats"] == len(beats)
    assert features["rmssd_ms"] == pytest.approx(200, abs=5)
    assert features["sdnn_ms"] == pytest.approx(100, abs=5)
    assert features["rr_mean_ms"] == pytest.approx(1000, abs=15)


def test_ecg_flat_line_has_no_r_peaks() -> None:
    with pytest.raises(ModalityError, match="ecg: no R peaks found"):
        ecg_features(np.full(2500, 0.3), 250)


def test_ecg_limits() -> None:
    with pytest.raises(ModalityError, match=r"ecg: 3\.0 s is too short: need at least 5 s \(2 R-R intervals\)"):
        ecg_features(_ecg(_regular(1.0, 3.0), seconds=3.0), 250)
    with pytest.raises(ModalityError, match="ecg: sample_rate 50 Hz is too low"):
        ecg_features(np.zeros(500), 50)


# --- GSR -----------------------------------------------------------------------------------------


def _scr(t: np.ndarray, onset: float, amplitude: float, rise: float = 0.75, decay: float = 2.0) -> np.ndarray:
    """Bateman-shaped skin conductance response: fast rise, exponential decay, peak = amplitude."""
    s = np.clip(t - onset, 0.0, None)
    shape = np.exp(-s / decay) - np.exp(-s / rise)
    return amplitude * shape / shape.max()


def _gsr(rate: float, drift_per_min: float = 0.0, seconds: float = 60.0) -> np.ndarray:
    """Tonic 5.0 (plus an optional linear drift) with three SCRs of amplitude 0.3."""
    t = np.arange(int(rate * seconds)) / rate
    x = 5.0 + drift_per_min * (t - seconds / 2) / 60 + 0.002 * _rng().standard_normal(t.size)
    for onset in (8.0, 25.0, 44.0):
        x += _scr(t, onset, 0.3)
    return x


def test_gsr_three_responses() -> None:
    features = gsr_features(_gsr(10.0), 10.0)
    assert tuple(features) == GSR_FEATURES
    assert features["tonic_level"] == pytest.approx(5.0, abs=0.2)
    assert features["phasic_peaks"] == 3
    assert features["phasic_rate_per_min"] == pytest.approx(3.0)
    assert features["phasic_amplitude"] == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize(("rate", "drift"), [(10.0, 1.0), (10.0, -1.0), (1.0, 0.0), (4.0, 0.5)])
def test_gsr_counts_survive_drift_and_low_rates(rate: float, drift: float) -> None:
    # A drifting level must not turn into responses, nor hide them (the tonic level is its mean, 5.0).
    features = gsr_features(_gsr(rate, drift), rate)
    assert features["phasic_peaks"] == 3
    assert features["tonic_level"] == pytest.approx(5.0, abs=0.2)


def test_gsr_burst_of_responses() -> None:
    rate = 10.0
    t = np.arange(600) / rate
    x = 5.0 + 0.002 * _rng().standard_normal(t.size)
    for onset in np.arange(5.0, 55.0, 4.0):  # 13 overlapping responses, one every 4 s
        x += _scr(t, onset, 0.2)
    features = gsr_features(x, rate)
    assert features["phasic_peaks"] == 13
    assert features["tonic_level"] == pytest.approx(5.0, abs=0.2)


def test_gsr_quiet_signal_and_limits() -> None:
    t = np.arange(300) / 10.0
    features = gsr_features(2.0 + 0.001 * np.sin(2 * np.pi * 0.1 * t), 10)
    assert features["phasic_peaks"] == 0 and features["phasic_amplitude"] == 0.0
    assert features["tonic_level"] == pytest.approx(2.0, abs=0.01)
    with pytest.raises(ModalityError, match=r"gsr: 5\.0 s is too short: need at least 10 s"):
        gsr_features(np.ones(50), 10)
    with pytest.raises(ModalityError, match=r"gsr: sample_rate 0\.5 Hz is too low"):
        gsr_features(np.ones(100), 0.5)


# --- spectrum ------------------------------------------------------------------------------------


def test_spectrum_peak_bin_holds_the_sine() -> None:
    bins, max_hz = signal_spectrum(_sine(10.0), 256)
    assert max_hz == 128.0 and len(bins) == DSP_BINS
    width = max_hz / DSP_BINS
    assert int(np.argmax(bins)) == int(10.0 // width)
    assert max(bins) == 1.0 and min(bins) >= 0.0


def test_spectrum_max_hz_and_silence() -> None:
    rate = 16000
    t = np.arange(rate) / rate
    bins, max_hz = signal_spectrum(np.sin(2 * np.pi * 1000 * t), rate, max_hz=8000)
    assert max_hz == 8000 and int(np.argmax(bins)) == int(1000 // (8000 / DSP_BINS))
    bins, _ = signal_spectrum(np.zeros(4000), rate)
    assert bins == [0.0] * DSP_BINS
    bins, max_hz = signal_spectrum(np.random.default_rng(1).standard_normal(100), 256)  # shorter than a segment
    assert max_hz == 128.0 and len(bins) == DSP_BINS and np.isfinite(bins).all()


@pytest.mark.parametrize(("n", "nperseg"), [(1000, 256), (1001, 255), (300, 512)])
def test_welch_equals_scipy(n: int, nperseg: int) -> None:
    from scipy import signal

    x = np.random.default_rng(n).standard_normal(n) + 0.3
    freqs, psd = welch(x, 250.0, nperseg)
    ref_freqs, ref_psd = signal.welch(x, fs=250.0, window="hann", nperseg=min(n, nperseg))
    assert np.allclose(freqs, ref_freqs) and np.allclose(psd, ref_psd, rtol=1e-9, atol=0)
