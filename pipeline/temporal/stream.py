"""Glue between the filter's arrays and the wire's `StreamState` / `Temporal`
(docs/PIPELINE.md, temporal state).

`advance(...)` applies one micro-batch to the streams' states: it runs the Kalman filter
over the whole batch at once (a stream's events in offset order), appends each observation
to its stream's window (latest `max_window` rows kept) and returns, per event, a
`TemporalStep` (the numbers of its result's `temporal` block, as arrays: the worker writes
them straight to JSON) and, per stream, the new `StreamState` for the state store.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import orjson

from pipeline.temporal.dsp import trajectory_spectra_many
from pipeline.temporal.forecast import default_gap, forecast, update_typical_gap
from pipeline.temporal.kalman import KalmanConfig, kalman_batch
from pipeline.temporal.surd import StreamSurdConfig, SurdResult, stream_surd
from schemas import labels as L
from schemas.result import Dsp, Forecast, StreamSurd, Temporal
from schemas.state import MAX_WINDOW, StreamState


# Recompute the stream's spectra and SURD every this many events of the stream.
ANALYSIS_EVERY = 8
StreamKey = tuple[int, str]  # (input partition, stream id)
_N = len(L.STATE_VECTOR)
_NO_ROWS = np.zeros((0, _N))


class BatchEvent(NamedTuple):
    """One event as the temporal step reads it (a tuple: one is built per event)."""

    stream_id: str
    partition: int
    offset: int
    ts: datetime
    observation: Sequence[float]  # ordered as STATE_VECTOR


@dataclass(slots=True)
class TemporalStep:
    """One event's `temporal` block: its stream's filtered state right after the event.
    The filter's numbers live in the batch's `table` (row `row`: state | variance |
    innovation, each in STATE_VECTOR order), shared by the batch's events so they are
    written out with one numpy call. `surd` / `dsp` are the stream's objects, shared by its
    events until recomputed."""

    table: np.ndarray  # [batch, 3 * len(STATE_VECTOR)]
    row: int
    surprise: float
    events_seen: int
    surd: StreamSurd | None
    dsp: Dsp | None
    forecast: dict | None = None  # production-advanced: `Forecast` fields

    @property
    def state(self) -> np.ndarray:  # clipped to [-1, 1]
        return self.table[self.row, :_N]

    @property
    def variance(self) -> np.ndarray:
        return self.table[self.row, _N : 2 * _N]

    @property
    def innovation(self) -> np.ndarray:
        return self.table[self.row, 2 * _N :]

    def to_model(self) -> Temporal:
        """The validated wire model (tests, tools; the worker writes JSON directly)."""
        return Temporal.model_validate({
            "state": dict(zip(L.STATE_VECTOR, self.state.tolist())),
            "variance": dict(zip(L.STATE_VECTOR, self.variance.tolist())),
            "innovation": dict(zip(L.STATE_VECTOR, self.innovation.tolist())),
            "surprise": self.surprise,
            "events_seen": self.events_seen,
            "surd": self.surd,
            "dsp": self.dsp,
            "forecast": None if self.forecast is None else Forecast.model_validate(self.forecast),
        })


_BLOCKS: OrderedDict[int, tuple[Any, orjson.Fragment]] = OrderedDict()
_BLOCKS_KEPT = 8192


def block_json(block: StreamSurd | Dsp | None) -> orjson.Fragment | None:
    """A stream's SURD or spectra block as JSON, made once per block: the same object is
    carried by every event of its stream, and by its state, until the next recomputation,
    and both the results and the changelog write it. Blocks are rounded where they are made
    (`_stream_surd`, `advance`), so this is the one serialization. Kept by identity (the
    object is held, so its id is not reused while kept), the latest `_BLOCKS_KEPT`; the
    worker's main thread is the only caller."""
    if block is None:
        return None
    key = id(block)
    hit = _BLOCKS.get(key)
    if hit is not None and hit[0] is block:
        _BLOCKS.move_to_end(key)
        return hit[1]
    # the fields as they are: blocks hold JSON-native values only (ints, floats, and lists
    # and dicts of floats), and orjson writes them ~5x faster than the model's serializer
    fragment = orjson.Fragment(orjson.dumps(block.__dict__))
    _BLOCKS[key] = (block, fragment)
    if len(_BLOCKS) > _BLOCKS_KEPT:
        _BLOCKS.popitem(last=False)
    return fragment


@dataclass(slots=True, eq=False)
class _Rows:
    """A stream's window storage, shared by its successive states. Rows (and each row's JSON)
    are appended at `used` and never written below it, so an earlier state's window, a view
    below `used`, stays as it was, and appending an event copies one row, not the window. A
    batch that failed after appending has moved `used` past the state it started from: the
    next append from that state finds `used` elsewhere and starts a new storage."""

    data: np.ndarray  # [capacity, len(STATE_VECTOR)]
    json: list[bytes]  # json[r]: row r's values as JSON, without the brackets, for r < used
    used: int


_HEADROOM = 32  # rows a new storage leaves free for the stream's next events


def _rows_json(rows: np.ndarray) -> list[bytes]:
    """Each row's values as JSON, without the brackets: one serialization for all the rows,
    cut between rows (a JSON number never contains "],[")."""
    if not len(rows):
        return []
    return orjson.dumps(rows.tolist())[2:-2].split(b"],[")


def _extend(prev: StreamTrack | None, new: np.ndarray, new_json: list[bytes]) -> tuple[_Rows, int, int]:
    """`prev`'s window followed by the `new` rows, in storage: (storage, start, end) with the
    rows at `storage.data[start:end]`. Appends in place when `prev` ends where its storage is
    filled to and there is room; else copies `prev`'s window into a new storage."""
    k = len(new)
    store = prev._store if prev is not None else None
    if store is not None and store.used == prev._end and prev._end + k <= len(store.data):  # type: ignore[union-attr]
        start, end = prev._end - len(prev.window), prev._end + k  # type: ignore[union-attr]
    else:
        window = prev.window if prev is not None else _NO_ROWS
        start, end = 0, len(window) + k
        store = _Rows(np.empty((end + max(k, _HEADROOM), _N)), prev._window_rows() if prev is not None else [],
                      len(window))
        store.data[: len(window)] = window
    store.data[store.used : end] = new
    store.json.extend(new_json)
    store.used = end
    return store, start, end


@dataclass(slots=True)
class StreamTrack:
    """One stream's temporal state as the worker holds it in memory: mutable, numpy, built
    without validation. `StreamState` is its wire form (the changelog record): `to_json`
    writes it, `from_state` reads it back after a validated restore. Field names are the
    wire's; `mean` / `variance` are arrays in `STATE_VECTOR` order."""

    stream_id: str
    input_partition: int
    input_offset: int
    last_ts: datetime
    events_seen: int
    mean: np.ndarray
    variance: np.ndarray
    window: np.ndarray  # [rows, len(STATE_VECTOR)], oldest first; never written in place
    surd: StreamSurd | None = None
    dsp: Dsp | None = None
    typical_gap_s: float | None = None
    # where `window` lives when `advance` made it: the stream's storage, the window ending at
    # row `_end` of it (None: a state built otherwise, e.g. restored, owns its window)
    _store: _Rows | None = field(default=None, repr=False, compare=False)
    _end: int = field(default=0, repr=False, compare=False)

    @property
    def ts_s(self) -> float:
        """The last applied event's time in epoch seconds (what the filter reads as its prior)."""
        return self.last_ts.timestamp()

    def trimmed(self, max_window: int) -> StreamTrack:
        """This state with its window cut to the latest `max_window` rows (in place)."""
        if len(self.window) > max_window:
            self.window = self.window[-max_window:]  # (still ending at `_end`)
        return self

    @classmethod
    def from_state(cls, state: StreamState) -> StreamTrack:
        return cls(
            state.stream_id, state.input_partition, state.input_offset, state.last_ts, state.events_seen,
            np.array([state.mean[n] for n in L.STATE_VECTOR]), np.array([state.variance[n] for n in L.STATE_VECTOR]),
            np.array(state.window, dtype=np.float64).reshape(-1, _N), state.surd, state.dsp, state.typical_gap_s,
        )

    def _window_rows(self) -> list[bytes]:
        """Each window row's values as JSON without the brackets: made once, when `advance`
        appended the row, so a changelog record per checkpoint joins them instead of writing
        the whole window's floats again."""
        if self._store is not None:
            return self._store.json[self._end - len(self.window) : self._end]
        return _rows_json(self.window)

    def to_state(self) -> StreamState:
        """The validated wire model (tests, tools; the changelog is written by `to_json`)."""
        return StreamState.model_validate_json(self.to_json())

    def to_json(self) -> bytes:
        """The `StreamState` JSON, at full precision (a restore continues exactly)."""
        return orjson.dumps(
            {
                "schema_version": L.SCHEMA_VERSION,
                "stream_id": self.stream_id,
                "input_partition": self.input_partition,
                "input_offset": self.input_offset,
                "last_ts": self.last_ts,
                "events_seen": self.events_seen,
                "mean": dict(zip(L.STATE_VECTOR, self.mean.tolist())),
                "variance": dict(zip(L.STATE_VECTOR, self.variance.tolist())),
                "window": orjson.Fragment(b"[[" + b"],[".join(rows) + b"]]" if (rows := self._window_rows()) else b"[]"),
                "surd": block_json(self.surd),
                "dsp": block_json(self.dsp),
                "typical_gap_s": self.typical_gap_s,
            },
            option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC,
        )


def advance(
    events: Sequence[BatchEvent],
    tracks: Mapping[StreamKey, StreamTrack],
    config: KalmanConfig = KalmanConfig(),
    max_window: int = MAX_WINDOW,
    surd_config: StreamSurdConfig = StreamSurdConfig(),
    forecast_steps: int | None = None,
) -> tuple[list[TemporalStep], dict[StreamKey, StreamTrack]]:
    """`events` in consumption order; `tracks`: current state of the streams that have one,
    keyed by (input partition, stream id) — a stream id seen on two partitions (a producer
    that did not key by stream_id) is two streams. `tracks` is never modified: the new
    states are returned, so a failed step leaves nothing half done.

    The filter runs over the whole batch at once (`kalman_batch`, numpy over the batch's
    streams); what is left per event is appending its row to its stream's window. The
    stream's SURD and spectra are window statistics that move slowly and cost ~1 ms each,
    so they are recomputed every `ANALYSIS_EVERY` events of the stream (at events_seen
    = 8, 16, ...; SURD from 64) over the window as it stands after that event, and carried
    in the state in between (spectra of all due streams in one batched call). Which events
    recompute depends only on the stream's own count, so the answer for an event never
    depends on which events shared its micro-batch or on a restore in between.
    `forecast_steps` (production-advanced) adds each event's Kalman forecast that many
    typical gaps ahead."""
    n = len(events)
    keys = [(e.partition, e.stream_id) for e in events]
    obs = np.array([e.observation for e in events], dtype=np.float64).reshape(n, _N)
    seconds = [e.ts.timestamp() for e in events]
    out = kalman_batch(keys, obs, np.array(seconds), tracks, None, None, config)  # the configured noise levels
    means = np.clip(out.state, -1.0, 1.0)  # a convex combination of observations; clip float dust
    table = np.concatenate([means, out.variance, out.innovation], axis=1)
    surprise = out.surprise.tolist()
    row_json = _rows_json(obs)
    order: dict[StreamKey, list[int]] = {}  # per stream, its events' indices in the batch
    for i, key in enumerate(keys):
        order.setdefault(key, []).append(i)
    temporal: list[TemporalStep] = [None] * n  # type: ignore[list-item]
    gaps = [0.0] * n
    due: dict[int, np.ndarray] = {}  # event index -> its stream's window right after it
    refreshed: list[StreamKey] = []  # streams with a due event
    running: dict[StreamKey, StreamTrack] = {}
    for key, idx in order.items():
        prev = tracks.get(key)
        if prev is None:
            window, seen, last_ts, gap, surd, dsp = _NO_ROWS, 0, events[idx[0]].ts, None, None, None
        else:
            window, seen, last_ts, gap, surd, dsp = (
                prev.window, prev.events_seen, prev.last_ts, prev.typical_gap_s, prev.surd, prev.dsp
            )
        last = last_ts.timestamp()
        # the stream's window after each of its events is a slice of these rows (appended
        # after the previous state's, which keeps its own: see `_Rows`)
        new = obs[idx[0] : idx[0] + 1] if len(idx) == 1 else obs[idx]  # (a slice: no fancy-index copy)
        store, start, end = _extend(prev, new, [row_json[i] for i in idx])
        rows = store.data[start:end]
        first_due = len(due)
        for j, i in enumerate(idx):
            t = seconds[i]
            if seen > 0:
                gap = update_typical_gap(gap, t - last)
            seen += 1
            if t >= last:
                last_ts, last = events[i].ts, t
            if seen % ANALYSIS_EVERY == 0:
                upto = len(window) + j + 1
                due[i] = rows[max(0, upto - max_window) : upto]
            gaps[i] = gap if gap is not None else default_gap()
            temporal[i] = TemporalStep(table, i, surprise[i], seen, surd, dsp)  # (refreshed below if due)
        if len(due) > first_due:
            refreshed.append(key)
        e, final = events[idx[-1]], idx[-1]
        running[key] = StreamTrack(
            e.stream_id, e.partition, e.offset, last_ts, seen, means[final].copy(), out.variance[final].copy(),
            rows[-max_window:], surd, dsp, gap, store, end,
        )
    if due:
        # The window statistics of every due event at once: the spectra as one batched FFT
        # per window length (rounded as results write them, in one call), SURD per window;
        # then each later event of the stream carries its stream's latest.
        spectra = trajectory_spectra_many(list(due.values()))
        made = [i for i, sp in zip(due, spectra) if sp is not None]
        shown = np.round(np.array([(sp.frequency, sp.resonance) for sp in spectra if sp is not None]),
                         L.DECIMALS).tolist() if made else []
        blocks = {i: Dsp.model_construct(frequency=f, resonance=r) for i, (f, r) in zip(made, shown)}
        for key in refreshed:
            track = running[key]
            surd, dsp = (prev.surd, prev.dsp) if (prev := tracks.get(key)) is not None else (None, None)
            for i in order[key]:
                if i in due:
                    dsp = blocks.get(i)
                    surd = _stream_surd(stream_surd(due[i], surd_config), len(due[i]), temporal[i].events_seen) or surd
                temporal[i].surd, temporal[i].dsp = surd, dsp
            track.surd, track.dsp = surd, dsp
    if forecast_steps is not None and events:
        ahead = forecast(means, out.variance, forecast_steps, np.array(gaps), None)
        for block, f in zip(temporal, ahead.as_dicts()):
            block.forecast = f
    return temporal, running


def _stream_surd(result: SurdResult | None, window_events: int, at_event: int) -> StreamSurd | None:
    if result is None:
        return None
    unique = {name.split("[", 1)[0]: bits for name, bits in result.unique.items()}
    d = L.DECIMALS  # written as results write every figure (the state keeps what results show)
    return StreamSurd(
        window_events=window_events,
        at_event=at_event,
        redundant=round(max(0.0, result.redundant), d),
        unique={k: round(max(0.0, v), d) for k, v in unique.items()},
        synergistic=round(max(0.0, result.synergistic), d),
        leak=round(max(0.0, result.leak), d),
        shares={k: round(min(1.0, max(0.0, v)), d) for k, v in result.shares().items()},
    )
