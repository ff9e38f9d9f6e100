"""Calibration (training.calibration): known answers for ECE, the temperature and Platt fits."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibration import ece, fit_platt, fit_temperature, nll, reliability_bins


def test_ece_of_a_hand_made_example() -> None:
    # two rows at 0.9 (one right: accuracy 0.5, gap 0.4) and two at 0.6 (both right: gap 0.4)
    conf = np.array([0.9, 0.9, 0.6, 0.6])
    right = np.array([1.0, 0.0, 1.0, 1.0])
    assert ece(conf, right) == pytest.approx(0.4)
    assert ece(np.array([0.75] * 4), np.array([1.0, 1.0, 1.0, 0.0])) == pytest.approx(0.0)
    bins = reliability_bins(conf, right)
    assert [(b["n"], b["accuracy"]) for b in bins] == [(2, 1.0), (2, 0.5)]


def test_the_temperature_that_generated_the_labels_is_recovered() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(20_000, 7))
    true_t = 2.0
    p = np.exp(logits / true_t)
    p /= p.sum(axis=1, keepdims=True)
    gold = np.array([rng.choice(7, p=row) for row in p])
    t = fit_temperature(logits, gold)
    assert t == pytest.approx(true_t, rel=0.05)
    assert nll(logits, gold, t) < nll(logits, gold, 1.0)
    # an overconfident model (T > 1) gets a lower ECE once divided by the fitted temperature
    top_raw = np.exp(logits).max(1) / np.exp(logits).sum(1)
    top_cal = p.max(1)  # the true probabilities: what calibration aims at
    right = (logits.argmax(1) == gold).astype(float)
    assert ece(top_cal, right) < 0.02 < ece(top_raw, right)


def test_platt_scaling_recovers_a_known_logistic_link() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=30_000)
    right = (rng.random(30_000) < 1 / (1 + np.exp(-(2.0 * z - 0.5)))).astype(np.int64)
    scale, bias = fit_platt(z, right)
    assert scale == pytest.approx(2.0, rel=0.08)
    assert bias == pytest.approx(-0.5, abs=0.08)
    assert fit_platt(z, np.ones_like(right)) is None
