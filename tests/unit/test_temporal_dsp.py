"""Trajectory spectra: a known sinusoid peaks in its bin; outputs are 128 finite non-negative bins."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.temporal.dsp import N_FFT, bin_frequency, trajectory_spectra
from schemas import labels as L


def sinusoid_window(n: int, k: int, amplitude: float = 0.2, trend: float = 0.0) -> np.ndarray:
    t = np.arange(n)
    rows = np.full((n, len(L.STATE_VECTOR)), 0.3)
    wave = amplitude * np.sin(2 * np.pi * bin_frequency(k) * t)
    rows[:, : len(L.EMOTIONS)] = 0.4 + wave[:, None] + trend * t[:, None]
    return rows


@pytest.mark.parametrize("n", [256, 512])
@pytest.mark.parametrize("k", [5, 32, 77, 120])
def test_sinusoid_peaks_in_its_bin(n: int, k: int) -> None:
    s = trajectory_spectra(sinusoid_window(n, k, trend=1e-3))
    assert s is not None
    assert int(np.argmax(s.frequency)) == k
    assert int(np.argmax(s.resonance)) == k
    assert s.frequency[k] == pytest.approx(0.2, rel=0.05)  # amplitude-scaled


def test_short_window_off_bin_sinusoid_peaks_near_its_frequency() -> None:
    f = 0.13  # cycles per event, between bins
    rows = np.full((100, len(L.STATE_VECTOR)), 0.5)
    rows[:, : len(L.EMOTIONS)] += 0.1 * np.sin(2 * np.pi * f * np.arange(100))[:, None]
    s = trajectory_spectra(rows)
    assert s is not None
    assert abs(int(np.argmax(s.frequency)) - f * N_FFT) <= 1
    assert abs(int(np.argmax(s.resonance)) - f * N_FFT) <= 2


def test_shape_range_and_minimum_length() -> None:
    rng = np.random.default_rng(0)
    assert trajectory_spectra(rng.uniform(size=(7, len(L.STATE_VECTOR)))) is None
    assert trajectory_spectra([]) is None
    for n in (8, 9, 63, 300):
        s = trajectory_spectra(rng.uniform(size=(n, len(L.STATE_VECTOR))))
        assert s is not None
        for spectrum in (s.frequency, s.resonance):
            assert spectrum.shape == (L.DSP_BINS,)
            assert np.isfinite(spectrum).all() and (spectrum >= 0).all()


def test_constant_and_linear_trajectories_have_no_spectrum_left() -> None:
    rows = sinusoid_window(64, 10, amplitude=0.0, trend=0.005)
    s = trajectory_spectra(rows)
    assert s is not None
    assert s.frequency.max() < 1e-12 and s.resonance.max() < 1e-12


def test_rejects_bad_windows() -> None:
    with pytest.raises(ValueError):
        trajectory_spectra(np.zeros((20, 3)))
    bad = np.zeros((20, len(L.STATE_VECTOR)))
    bad[3, 0] = np.nan
    with pytest.raises(ValueError):
        trajectory_spectra(bad)


def test_batched_welch_equals_scipy() -> None:
    """The worker's own Welch (one batched FFT) must be scipy's, for every window length."""
    from scipy import signal

    from pipeline.temporal.dsp import N_FFT, welch_psd

    rng = np.random.default_rng(7)
    for n in (8, 9, 31, 64, 65, 100, 128, 256):
        x = rng.normal(size=(7, n)) + np.linspace(0, 1, n)
        seg = min(n, 64)
        _, want = signal.welch(x, fs=1.0, window="hann", nperseg=seg, noverlap=seg // 2, nfft=N_FFT,
                               detrend="linear", axis=1)
        np.testing.assert_allclose(welch_psd(x, seg), want, rtol=1e-10, atol=1e-14)


def test_closed_form_detrend_equals_scipy() -> None:
    from scipy import signal

    from pipeline.temporal.dsp import detrend_linear

    rng = np.random.default_rng(3)
    for shape in ((7, 2), (7, 9), (3, 5, 64), (128,)):
        x = rng.normal(size=shape) + 3.0 * np.arange(shape[-1])
        np.testing.assert_allclose(detrend_linear(x), signal.detrend(x, axis=-1, type="linear"), atol=1e-10)


def test_many_windows_at_once_equal_each_alone() -> None:
    """The worker recomputes several streams' spectra in one batched call: window lengths
    mixed (grouped by length inside), too-short windows give None, each answer equals the
    window's own computation."""
    from pipeline.temporal.dsp import trajectory_spectra_many

    rng = np.random.default_rng(7)
    windows = [rng.uniform(0, 1, (n, len(L.STATE_VECTOR))) for n in (8, 64, 16, 64, 5, 300, 8)]
    many = trajectory_spectra_many(windows)
    for window, got in zip(windows, many):
        alone = trajectory_spectra(window)
        if alone is None:
            assert got is None
            continue
        assert got is not None
        np.testing.assert_allclose(got.frequency, alone.frequency, rtol=0, atol=1e-15)
        np.testing.assert_allclose(got.resonance, alone.resonance, rtol=0, atol=1e-15)
    assert many[4] is None


def test_a_window_reads_the_same_whatever_shares_its_batch() -> None:
    """The worker computes the due windows of a micro-batch together (short ones zero-padded
    into one batch): each window's spectra must be exactly what it gives alone, or an event's
    result would depend on which other streams shared its batch."""
    from pipeline.temporal.dsp import trajectory_spectra_many

    rng = np.random.default_rng(7)
    windows = [rng.uniform(size=(n, len(L.STATE_VECTOR))) for n in (8, 13, 40, 64, 64, 65, 128, 300)]
    together = trajectory_spectra_many(windows)
    for w, got in zip(windows, together):
        alone = trajectory_spectra(w)
        assert got is not None and alone is not None
        assert np.array_equal(got.frequency, alone.frequency) and np.array_equal(got.resonance, alone.resonance)
    for k in (1, 3, 5):  # and in other company
        again = trajectory_spectra_many(windows[k:] + windows[:k])
        for got, other in zip(together[k:] + together[:k], again):
            assert np.array_equal(got.frequency, other.frequency) and np.array_equal(got.resonance, other.resonance)
