"""Per-stream Kalman filter over the state vector (docs/PIPELINE.md, "Kalman filter"), vectorized over a micro-batch.

Model (local level / random walk), per stream, dimension n = len(STATE_VECTOR) = 11:

    x_k = x_{k-1} + w_k,   w_k ~ N(0, Q_k),  Q_k = diag(q_k) * clamp(dt_k) / dt_unit_s
    z_k = x_k + v_k,       v_k ~ N(0, R_k),  R_k = diag(r_k)

`dt_k` is the time between the stream's previous event and this one, in seconds, clamped
to `[dt_min_s, dt_max_s]` (events that arrive with a timestamp older than the previous
one count as simultaneous; a silence longer than `dt_max_s` adds no more uncertainty than
`dt_max_s` does). `q_k` and `r_k` are per-event noise variances, one per state entry:
the caller's, else `KalmanConfig`'s defaults (which the worker uses).

Covariance: **diagonal**, and exactly so, not as an approximation. With F = I, H = I and
diagonal Q and R (the only kind this filter takes), a diagonal covariance stays diagonal
through predict (P + Q) and update ((I - K) P with K = P (P + R)^-1 diagonal), so the
full-covariance filter gives the same numbers (the unit tests check this against a
textbook full-matrix filter). Diagonal keeps the state to 22 floats per stream (what
`StreamState.variance` stores) and the batch arithmetic elementwise.

Prior: the first event of a stream initialises it as a diffuse prior (P0 -> infinity)
updated with that event would: state = observation, variance = observation noise,
innovation = 0, surprise = 0.

Surprise is the normalized innovation magnitude sqrt(NIS / n), NIS = sum_i nu_i^2 / S_i
with S = P_pred + R: about 1 when the event is as surprising as the filter expects,
much larger when it is not.

Ordering: one call handles a micro-batch in which a stream may occur several times.
Events are processed in "rounds": round k applies the k-th occurrence of every stream
in the batch, so a stream's events are applied in their batch order (= offset order)
while different streams are updated together.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from schemas import labels as L

N_STATE = len(L.STATE_VECTOR)


@dataclass(frozen=True)
class KalmanConfig:
    """Noise defaults are variances in the units of the state vector (emotions in [0, 1],
    integrated scores in [-1, 1] or [0, 1])."""

    default_process_noise: float = 1e-2  # variance accrued per `dt_unit_s` of silence
    default_observation_noise: float = 5e-2
    dt_unit_s: float = 60.0
    dt_min_s: float = 0.0
    dt_max_s: float = 86_400.0  # one day: longer silences are as uncertain as a day's

    def __post_init__(self) -> None:
        if not (0.0 <= self.dt_min_s <= self.dt_max_s) or self.dt_unit_s <= 0:
            raise ValueError(f"invalid time range/unit in {self}")
        if self.default_process_noise < 0 or self.default_observation_noise <= 0:
            raise ValueError(f"noise defaults must be positive in {self}")


class Prior(Protocol):
    """What the filter reads of a stream's state before the batch (`StreamPrior`, or the
    worker's own per-stream object, which need not be copied into one)."""

    @property
    def mean(self) -> np.ndarray: ...
    @property
    def variance(self) -> np.ndarray: ...
    @property
    def ts_s(self) -> float: ...


@dataclass(frozen=True)
class StreamPrior:
    """A stream's filter state before the batch (after its last applied event)."""

    mean: np.ndarray  # [n]
    variance: np.ndarray  # [n], diagonal of P
    ts_s: float  # epoch seconds of the last applied event


@dataclass(frozen=True)
class KalmanOutput:
    """Per event, in the batch's order (arrays [B, n] unless noted)."""

    state: np.ndarray  # filtered mean after the event
    variance: np.ndarray  # filtered variance (diagonal of P) after the event
    innovation: np.ndarray  # z - x_pred (0 for a stream's first event)
    innovation_variance: np.ndarray  # S = P_pred + R
    surprise: np.ndarray  # [B], sqrt(NIS / n)
    first: np.ndarray  # [B] bool: the event initialised its stream
    _streams: tuple[list[Hashable], np.ndarray, np.ndarray, np.ndarray]  # keys, mean, var, clock per stream

    @property
    def posterior(self) -> dict[Hashable, StreamPrior]:
        """Each stream after its last event in the batch (built on demand: the worker reads
        the per-event arrays only)."""
        keys, mean, var, clock = self._streams
        return {key: StreamPrior(mean[j].copy(), var[j].copy(), float(clock[j])) for j, key in enumerate(keys)}


def occurrence_rank(keys: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, list[Hashable]]:
    """(stream index per event, k per event = how many earlier events of its stream, unique keys
    in first-appearance order)."""
    index: dict[Hashable, int] = {}
    for k in keys:
        index.setdefault(k, len(index))
    if len(index) == len(keys):  # every event of its own stream (the common micro-batch): ranks all 0
        return np.arange(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=np.int64), list(index)
    stream_idx = np.array([index[k] for k in keys], dtype=np.int64)
    order = np.argsort(stream_idx, kind="stable")
    sorted_idx = stream_idx[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(sorted_idx)) + 1))
    run_start = np.repeat(starts, np.diff(np.concatenate((starts, [len(order)]))))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.arange(len(order)) - run_start
    return stream_idx, rank, list(index)


def _noise(values: np.ndarray | None, default: float, batch: int, name: str) -> np.ndarray:
    if values is None:
        return np.full((batch, N_STATE), default, dtype=np.float64)
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (batch, N_STATE):
        raise ValueError(f"{name} must have shape {(batch, N_STATE)}, got {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError(f"{name} must be finite and non-negative")
    return arr


def kalman_batch(
    keys: Sequence[Hashable],
    observations: np.ndarray,
    ts_s: np.ndarray,
    priors: Mapping[Hashable, Prior],
    process_noise: np.ndarray | None = None,
    observation_noise: np.ndarray | None = None,
    config: KalmanConfig = KalmanConfig(),
) -> KalmanOutput:
    """Filter one micro-batch.

    keys: stream id per event, events of one stream in offset order.
    observations: [B, n] state-vector observations (emotions + integrated scores).
    ts_s: [B] event times, epoch seconds.
    priors: state of the streams that already have one (keys outside the batch are not
      read); a key absent here starts fresh.
    process_noise / observation_noise: [B, n] variances per event, or None for the defaults.
    """
    batch = len(keys)
    z = np.asarray(observations, dtype=np.float64)
    t = np.asarray(ts_s, dtype=np.float64)
    if z.shape != (batch, N_STATE) or t.shape != (batch,):
        raise ValueError(f"observations must be {(batch, N_STATE)} and ts_s {(batch,)}; got {z.shape}, {t.shape}")
    if not np.isfinite(z).all() or not np.isfinite(t).all():
        raise ValueError("observations and timestamps must be finite")
    q = _noise(process_noise, config.default_process_noise, batch, "process_noise")
    r = _noise(observation_noise, config.default_observation_noise, batch, "observation_noise")
    if (r <= 0).any():
        raise ValueError("observation_noise must be positive")

    stream_idx, rank, unique = occurrence_rank(keys)
    n_streams = len(unique)
    mean = np.zeros((n_streams, N_STATE))
    var = np.zeros((n_streams, N_STATE))
    last_ts = np.zeros(n_streams)
    known = np.zeros(n_streams, dtype=bool)
    held = [(j, p) for j, key in enumerate(unique) if (p := priors.get(key)) is not None]
    if held:  # the streams' priors as four array writes, not four per stream
        # (every stream known, the steady state: a plain slice, no fancy-index scatter)
        rows = slice(None) if len(held) == n_streams else [j for j, _ in held]
        mean[rows] = np.array([p.mean for _, p in held], dtype=np.float64)  # (np.stack: 2x the call overhead)
        var[rows] = np.array([p.variance for _, p in held], dtype=np.float64)
        last_ts[rows] = [p.ts_s for _, p in held]
        known[rows] = True

    out_state = np.empty((batch, N_STATE))
    out_var = np.empty((batch, N_STATE))
    out_innov = np.zeros((batch, N_STATE))
    out_s = np.empty((batch, N_STATE))
    out_surprise = np.zeros(batch)
    out_first = np.zeros(batch, dtype=bool)

    for k in range(int(rank.max()) + 1 if batch else 0):
        ev = np.flatnonzero(rank == k)  # at most one event per stream
        st = stream_idx[ev]
        fresh = ~known[st]
        # predict
        dt = np.clip(t[ev] - last_ts[st], config.dt_min_s, config.dt_max_s)
        p_pred = var[st] + q[ev] * (dt / config.dt_unit_s)[:, None]
        x_pred = mean[st]
        # update
        s = p_pred + r[ev]
        gain = p_pred / s
        innov = z[ev] - x_pred
        x_new = x_pred + gain * innov
        p_new = (1.0 - gain) * p_pred
        surprise = np.sqrt(np.sum(innov * innov / s, axis=1) / N_STATE)
        # the first event of a stream: diffuse prior updated with it
        x_new[fresh] = z[ev[fresh]]
        p_new[fresh] = r[ev[fresh]]
        innov[fresh] = 0.0
        s[fresh] = r[ev[fresh]]
        surprise[fresh] = 0.0

        # an event older than the stream's latest one does not move its clock backwards
        clock = np.where(fresh, t[ev], np.maximum(t[ev], last_ts[st]))
        mean[st], var[st], last_ts[st], known[st] = x_new, p_new, clock, True
        out_state[ev], out_var[ev], out_innov[ev], out_s[ev] = x_new, p_new, innov, s
        out_surprise[ev], out_first[ev] = surprise, fresh

    return KalmanOutput(out_state, out_var, out_innov, out_s, out_surprise, out_first, (unique, mean, var, last_ts))
