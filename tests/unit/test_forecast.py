"""The Kalman k-step forecast against the filter's own predict step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.temporal.forecast import Forecast, default_gap, forecast, update_typical_gap
from pipeline.temporal.kalman import N_STATE, KalmanConfig, StreamPrior, kalman_batch
from schemas import labels as L

CFG = KalmanConfig()


def filtered(rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Realistic filtered states: run the filter over a few events per stream."""
    keys = [j for _ in range(5) for j in range(batch)]
    n = len(keys)
    obs = rng.uniform(0, 1, size=(n, N_STATE))
    obs[:, L.STATE_VECTOR.index("overall_sentiment")] = rng.uniform(-1, 1, size=n)
    ts = 1_700_000_000 + np.repeat(np.arange(5) * 90.0, batch)
    out = kalman_batch(keys, obs, ts, {}, rng.uniform(1e-3, 0.1, (n, N_STATE)), rng.uniform(1e-3, 0.1, (n, N_STATE)))
    mean = np.stack([out.posterior[j].mean for j in range(batch)])
    var = np.stack([out.posterior[j].variance for j in range(batch)])
    q = rng.uniform(1e-3, 0.2, size=(batch, N_STATE))
    return mean, var, q


def textbook_predict(var: np.ndarray, q: np.ndarray, dt: np.ndarray, cfg: KalmanConfig = CFG) -> np.ndarray:
    """P + Q(dt), Q(dt) = diag(q) clamp(dt) / dt_unit, the filter's documented predict step."""
    dt = np.clip(dt, cfg.dt_min_s, cfg.dt_max_s)
    return var + q * (dt / cfg.dt_unit_s)[:, None]


@pytest.mark.parametrize("steps", [1, 2, 3, 10])
def test_k_steps_equal_k_successive_predict_steps(steps: int) -> None:
    rng = np.random.default_rng(steps)
    mean, var, q = filtered(rng, 6)
    dt = rng.uniform(1, 3600, size=6)
    got = forecast(mean, var, steps, dt, q)
    expected = var.copy()
    for _ in range(steps):
        expected = textbook_predict(expected, q, dt)
    np.testing.assert_array_equal(got.variance, expected)  # exact, bit for bit
    np.testing.assert_array_equal(got.state, mean)  # a random walk has no drift
    assert got.steps == steps


def test_one_step_is_the_filters_predict_step() -> None:
    """The variance after one step is the filter's P_pred for an event dt later, read from a
    real update with ordinary observation noise: S - R (rounding of the subtraction only)."""
    rng = np.random.default_rng(11)
    mean, var, q = filtered(rng, 4)
    dt = np.array([0.0, 30.0, 600.0, 10 * 86_400.0])  # the last one is clamped by the filter
    r = rng.uniform(1e-3, 0.1, size=(4, N_STATE))
    z = rng.uniform(0, 1, size=(4, N_STATE))
    t0 = 1_700_000_000.0
    priors = {j: StreamPrior(mean[j], var[j], t0) for j in range(4)}
    real = kalman_batch(list(range(4)), z, t0 + dt, priors, q, r)
    got = forecast(mean, var, 1, dt, q)
    np.testing.assert_allclose(got.variance, real.innovation_variance - r, rtol=1e-12, atol=1e-15)


def test_variance_grows_monotonically_with_the_horizon() -> None:
    rng = np.random.default_rng(3)
    mean, var, q = filtered(rng, 5)
    previous = var
    for k in range(1, 8):
        v = forecast(mean, var, k, 120.0, q).variance
        assert (v > previous).all()
        previous = v
    # no time, no growth; the default noise when the network's is not given
    np.testing.assert_array_equal(forecast(mean, var, 3, 0.0, q).variance, var)
    default = forecast(mean, var, 2, 60.0).variance
    np.testing.assert_allclose(default, var + 2 * CFG.default_process_noise, rtol=1e-12)


@pytest.mark.parametrize("steps", [0, -1])
def test_zero_or_negative_steps_are_refused(steps: int) -> None:
    mean, var, q = filtered(np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match="steps"):
        forecast(mean, var, steps, 60.0, q)


def test_bad_inputs_are_refused() -> None:
    mean, var, q = filtered(np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match="dt_s"):
        forecast(mean, var, 1, -5.0, q)
    with pytest.raises(ValueError, match=r"\[B, 11\]"):
        forecast(mean[:, :5], var[:, :5], 1, 60.0)


def test_mean_is_clipped_to_each_entrys_range_and_dicts_are_named() -> None:
    mean = np.full((1, N_STATE), 1.0 + 1e-9)
    mean[0, L.STATE_VECTOR.index("overall_sentiment")] = -1.0 - 1e-9
    mean[0, 0] = -1e-9
    fc = forecast(mean, np.full((1, N_STATE), 0.01), 3, 45.0)
    assert isinstance(fc, Forecast)
    (d,) = fc.as_dicts()
    assert d["steps"] == 3 and d["dt_s"] == 45.0 and d["horizon_s"] == 135.0
    assert list(d["state"]) == list(L.STATE_VECTOR) == list(d["variance"])
    assert d["state"]["overall_sentiment"] == -1.0
    assert d["state"]["joy"] == 0.0 and d["state"]["ethical_score"] == 1.0


def test_typical_gap_is_a_geometric_ema_robust_to_rare_silences() -> None:
    assert default_gap() == CFG.dt_unit_s
    gap = None
    for g in [2.0] * 20:
        gap = update_typical_gap(gap, g)
    assert gap == pytest.approx(2.0)
    after_silence = update_typical_gap(gap, 8 * 3600.0)
    assert after_silence == pytest.approx(math.exp(0.8 * math.log(2.0) + 0.2 * math.log(8 * 3600.0)))
    assert after_silence < 20.0  # an arithmetic EMA would say ~1.6 hours
    assert update_typical_gap(None, 0.0) == 1e-3  # simultaneous events: floored, finite
    assert update_typical_gap(None, 1e9) == CFG.dt_max_s  # clamped as the filter clamps
