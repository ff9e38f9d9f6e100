"""Glue between the filter's arrays and the wire's `StreamState` / `Temporal` (SPEC §3).

`advance(...)` applies one micro-batch to the streams' states: it runs the Kalman filter
over the batch (a stream's events in offset order), appends each observation to its
stream's window (latest `max_window` rows kept) and returns, per event, the `Temporal`
block for its result and, per stream, the new `StreamState` for the state store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from pipeline.temporal.dsp import trajectory_spectra
from pipeline.temporal.forecast import default_gap, forecast, update_typical_gap
from pipeline.temporal.kalman import KalmanConfig, StreamPrior, kalman_batch
from pipeline.temporal.surd import StreamSurdConfig, SurdResult, stream_surd
from schemas import labels as L
from schemas.result import Dsp, Forecast, StreamSurd, Temporal
from schemas.state import MAX_WINDOW, StreamState


# Recompute the stream's spectra and SURD every this many events of the stream.
ANALYSIS_EVERY = 8


@dataclass(frozen=True)
class BatchEvent:
    stream_id: str
    partition: int
    offset: int
    ts: datetime
    observation: Sequence[float]  # ordered as STATE_VECTOR


def prior_from_state(state: StreamState) -> StreamPrior:
    return StreamPrior(
        np.array([state.mean[n] for n in L.STATE_VECTOR]),
        np.array([state.variance[n] for n in L.STATE_VECTOR]),
        state.last_ts.timestamp(),
    )


def advance(
    events: Sequence[BatchEvent],
    states: Mapping[str, StreamState],
    process_noise: np.ndarray | None = None,
    observation_noise: np.ndarray | None = None,
    config: KalmanConfig = KalmanConfig(),
    max_window: int = MAX_WINDOW,
    surd_config: StreamSurdConfig = StreamSurdConfig(),
    forecast_steps: int | None = None,
) -> tuple[list[Temporal], dict[str, StreamState]]:
    """`events` in consumption order; `states`: current state of the streams that have one.

    The stream's SURD and spectra are window statistics that move slowly and cost ~1 ms
    each, so they are recomputed every `ANALYSIS_EVERY` events of the stream (at events_seen
    = 8, 16, ...; SURD from 64) over the window as it stands after that event, and carried
    in the state in between. Which events recompute depends only on the stream's own count,
    so the answer for an event never depends on which events shared its micro-batch or on a
    restore in between. `forecast_steps` (production-advanced) adds each event's Kalman
    forecast that many typical gaps ahead."""
    keys = [e.stream_id for e in events]
    obs = np.array([list(e.observation) for e in events], dtype=np.float64).reshape(len(events), len(L.STATE_VECTOR))
    ts = np.array([e.ts.timestamp() for e in events])
    priors = {k: prior_from_state(states[k]) for k in set(keys) if k in states}
    out = kalman_batch(keys, obs, ts, priors, process_noise, observation_noise, config)

    temporal: list[Temporal] = []
    gaps: list[float] = []
    running: dict[str, _Running] = {}
    for i, e in enumerate(events):
        run = running.get(e.stream_id)
        if run is None:
            prev = states.get(e.stream_id)
            run = running[e.stream_id] = (
                _Running([], 0, e.ts, None, None, e.partition, e.offset)
                if prev is None
                else _Running(
                    list(prev.window), prev.events_seen, prev.last_ts, prev.surd, prev.dsp, e.partition, e.offset,
                    typical_gap_s=prev.typical_gap_s,
                )
            )
        if run.seen > 0:
            run.typical_gap_s = update_typical_gap(run.typical_gap_s, (e.ts - run.last_ts).total_seconds())
        run.window.append(obs[i].tolist())
        if len(run.window) > max_window:
            del run.window[: len(run.window) - max_window]
        run.seen += 1
        run.offset, run.partition = e.offset, e.partition
        if e.ts >= run.last_ts:
            run.last_ts = e.ts
        mean = np.clip(out.state[i], -1.0, 1.0)  # a convex combination of observations; clip float dust
        if run.seen % ANALYSIS_EVERY == 0:
            rows = np.array(run.window)  # once for both analyses
            spectra = trajectory_spectra(rows)
            run.dsp = None if spectra is None else Dsp(
                frequency=spectra.frequency.tolist(), resonance=spectra.resonance.tolist()
            )
            run.surd = _stream_surd(stream_surd(rows, surd_config), len(run.window), run.seen) or run.surd
        run.mean, run.variance = mean, out.variance[i]
        gaps.append(run.typical_gap_s if run.typical_gap_s is not None else default_gap())
        temporal.append(
            # built without re-validation, like the states below: the keys are STATE_VECTOR by
            # construction and the values come from the filter (a test validates these blocks)
            Temporal.model_construct(
                state=dict(zip(L.STATE_VECTOR, mean.tolist())),
                variance=dict(zip(L.STATE_VECTOR, out.variance[i].tolist())),
                innovation=dict(zip(L.STATE_VECTOR, out.innovation[i].tolist())),
                surprise=float(out.surprise[i]),
                events_seen=run.seen,
                surd=run.surd,
                dsp=run.dsp,
            )
        )
    if forecast_steps is not None and events:
        ahead = forecast(np.clip(out.state, -1.0, 1.0), out.variance, forecast_steps, np.array(gaps), process_noise)
        for block, f in zip(temporal, ahead.as_dicts()):
            block.forecast = Forecast.model_validate(f)
    # One StreamState per stream per batch, built without re-validating its window: every
    # value in it was produced above from validated observations (the window alone is up to
    # 512 x 11 floats, and validating it per event was most of the worker's overhead).
    new_states = {
        sid: StreamState.model_construct(
            stream_id=sid,
            input_partition=run.partition,
            input_offset=run.offset,
            last_ts=run.last_ts,
            events_seen=run.seen,
            mean=dict(zip(L.STATE_VECTOR, run.mean.tolist())),
            variance=dict(zip(L.STATE_VECTOR, run.variance.tolist())),
            window=run.window,
            surd=run.surd,
            dsp=run.dsp,
            typical_gap_s=run.typical_gap_s,
        )
        for sid, run in running.items()
    }
    return temporal, new_states


@dataclass
class _Running:
    """A stream's state while a batch is applied to it (mutable; see `advance`)."""

    window: list[list[float]]
    seen: int
    last_ts: datetime
    surd: StreamSurd | None
    dsp: Dsp | None
    partition: int
    offset: int
    mean: np.ndarray | None = None
    variance: np.ndarray | None = None
    typical_gap_s: float | None = None


def _stream_surd(result: SurdResult | None, window_events: int, at_event: int) -> StreamSurd | None:
    if result is None:
        return None
    unique = {name.split("[", 1)[0]: bits for name, bits in result.unique.items()}
    return StreamSurd(
        window_events=window_events,
        at_event=at_event,
        redundant=max(0.0, result.redundant),
        unique={k: max(0.0, v) for k, v in unique.items()},
        synergistic=max(0.0, result.synergistic),
        leak=max(0.0, result.leak),
        shares={k: min(1.0, max(0.0, v)) for k, v in result.shares().items()},
    )
