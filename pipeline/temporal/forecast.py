"""Temporal propagation (mode `production-advanced`): the Kalman k-step forecast.

The per-stream filter (`kalman.py`) is a random walk, x_k = x_{k-1} + w_k. Forecasting
k event gaps ahead from the filtered state is k predict steps with no update:

    mean_k = mean_0                          (a random walk has no drift)
    var_k  = var_{k-1} + q * clamp(dt) / dt_unit_s

so the mean stays the filtered mean (clipped to each entry's valid range) and only the
variance grows. The predict step is the filter's own: each step is run through
`kalman.kalman_batch` (see `_predict_variance`), so a change of the noise model there
(the clamp of dt, its unit, the form of Q) changes the forecast with it; nothing of it is
re-implemented here.

Output at the horizon only (`steps` gaps ahead), not per step: with a constant mean and a
variance affine in the step, step j's variance is var_0 + j/k (var_k - var_0), so a list
per step would carry no information beyond the end point and the current variance (which
`temporal.variance` already holds) while multiplying the result's size.

Gap dt: the caller passes `dt_s`, the stream's typical gap: `StreamState.typical_gap_s`,
kept by `update_typical_gap` (a geometric EMA of the clamped gaps, None until the
stream's second event); until a stream has one the forecast uses `KalmanConfig.dt_unit_s`
(`default_gap`).

Process noise: the future events' q is unknown; the caller's estimate, else the filter's
default (which the worker uses).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.temporal.kalman import N_STATE, KalmanConfig, StreamPrior, kalman_batch
from schemas import labels as L

# Valid range of each state-vector entry: probabilities and [0, 1] scores; sentiment in [-1, 1].
STATE_LOW = np.array([-1.0 if name == "overall_sentiment" else 0.0 for name in L.STATE_VECTOR])
STATE_HIGH = np.ones(N_STATE)

# R for the update that `_predict_variance` discards: the smallest positive double, so
# S = P_pred + R rounds to P_pred for any variance above ~1e-292.
_NO_OBSERVATION = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class Forecast:
    """Per event (arrays `[B, n]` unless noted), `steps` typical gaps after it."""

    steps: int
    dt_s: np.ndarray  # [B] gap per step, seconds (before the filter's clamp)
    state: np.ndarray  # forecast mean (= filtered mean, clipped to the valid ranges)
    variance: np.ndarray  # forecast variance

    def as_dicts(self) -> list[dict[str, Any]]:
        """Per event::

            {"steps": k, "dt_s": float, "horizon_s": k * dt_s,
             "state": {name: value}, "variance": {name: variance}}   # names: STATE_VECTOR
        """
        return [
            {
                "steps": self.steps,
                "dt_s": float(self.dt_s[i]),
                "horizon_s": float(self.steps * self.dt_s[i]),
                "state": dict(zip(L.STATE_VECTOR, self.state[i].tolist())),
                "variance": dict(zip(L.STATE_VECTOR, self.variance[i].tolist())),
            }
            for i in range(len(self.dt_s))
        ]


def _predict_variance(
    mean: np.ndarray, variance: np.ndarray, dt_s: np.ndarray, process_noise: np.ndarray | None, config: KalmanConfig
) -> np.ndarray:
    """One predict step of the filter, `[B, n]` -> `[B, n]`, taken from `kalman_batch` itself.

    `kalman_batch` predicts and updates in one call and reports S = P_pred + R as
    `innovation_variance`. Feeding it each row as a known stream whose last event was at
    t = 0, an event at t = dt (so its dt is exactly `dt_s`, clamped by the filter as it
    would be), the observation equal to the mean (innovation 0) and R = the smallest
    positive double makes S equal P_pred to the last bit. The update is discarded.
    (`kalman.py` has no separate predict function; when it gains one, call it here.)
    """
    batch = mean.shape[0]
    keys: list[Hashable] = list(range(batch))
    priors = {j: StreamPrior(mean[j], variance[j], 0.0) for j in range(batch)}
    r = np.full((batch, N_STATE), _NO_OBSERVATION)
    out = kalman_batch(keys, mean, dt_s, priors, process_noise, r, config)
    return out.innovation_variance


def forecast(
    state: np.ndarray,
    variance: np.ndarray,
    steps: int,
    dt_s: float | np.ndarray,
    process_noise: np.ndarray | None = None,
    config: KalmanConfig = KalmanConfig(),
) -> Forecast:
    """Forecast `steps` gaps of `dt_s` seconds after each event.

    state, variance: `[B, n]` filtered mean and variance after the event (`KalmanOutput`
    `.state` / `.variance`, or a `StreamState`'s `mean` / `variance`, ordered as
    `STATE_VECTOR`). dt_s: one gap for all, or `[B]`. process_noise: `[B, n]` variances
    per `dt_unit_s` assumed for the future events, or None for the filter's default."""
    if steps < 1:
        raise ValueError(f"forecast steps must be >= 1, got {steps}")
    mean = np.asarray(state, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    if mean.ndim != 2 or mean.shape[1] != N_STATE or var.shape != mean.shape:
        raise ValueError(f"state and variance must be [B, {N_STATE}]; got {mean.shape}, {var.shape}")
    batch = mean.shape[0]
    dt = np.broadcast_to(np.asarray(dt_s, dtype=np.float64), (batch,)).copy()
    if not np.isfinite(dt).all() or (dt < 0).any():
        raise ValueError("dt_s must be finite and non-negative")
    if not np.isfinite(var).all() or (var < 0).any():
        raise ValueError("variance must be finite and non-negative")
    for _ in range(steps):
        var = _predict_variance(mean, var, dt, process_noise, config)
    return Forecast(steps, dt, np.clip(mean, STATE_LOW, STATE_HIGH), var)


def default_gap(config: KalmanConfig = KalmanConfig()) -> float:
    """The gap assumed for a stream with no typical gap yet (one event so far): the
    filter's time unit, the scale its process noise is expressed in."""
    return float(config.dt_unit_s)


def update_typical_gap(
    previous_s: float | None, gap_s: float, alpha: float = 0.2, config: KalmanConfig = KalmanConfig()
) -> float:
    """The stream's typical gap after one more gap (`StreamState.typical_gap_s`).

    A geometric EMA (an EMA of log gaps): chat-like streams mix bursts of seconds with
    silences of hours, and an arithmetic mean would be set by the rare silences, making
    "the next few events" mean hours. Gaps are clamped as the filter clamps them, and at
    1 ms from below (simultaneous events would drive a log to -inf)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    gap = min(max(gap_s, config.dt_min_s, 1e-3), config.dt_max_s)
    if previous_s is None:
        return gap
    return math.exp((1.0 - alpha) * math.log(max(previous_s, 1e-3)) + alpha * math.log(gap))
