"""The demo's and tests' sample signals read back as what they claim to be."""

from __future__ import annotations

import pytest

from pipeline.modalities.biosignals import ecg_features
from worker import samples


@pytest.mark.parametrize("bpm", [60.0, 72.0, 90.0])
def test_sample_ecg_has_a_resting_heart_rate_variability(bpm: float) -> None:
    ecg = samples.ecg(bpm)
    features = ecg_features(ecg["values"], ecg["sample_rate"])
    assert features["heart_rate_bpm"] == pytest.approx(bpm, abs=1.0)
    # respiratory sinus arrhythmia of ±5 %: a resting adult's RMSSD range, not a metronome's 0
    assert 15.0 < features["rmssd_ms"] < 60.0
    assert 15.0 < features["sdnn_ms"] < 60.0


def test_sample_ecg_without_arrhythmia_is_metronomic() -> None:
    ecg = samples.ecg(72.0, rsa=0.0)
    features = ecg_features(ecg["values"], ecg["sample_rate"])
    assert features["heart_rate_bpm"] == pytest.approx(72.0, abs=0.5)
    assert features["rmssd_ms"] < 2.0  # only the 4 ms sampling grid separates the beats
