"""The batch engine: accepted events in, outcomes (result bytes or a dead letter) out.

No Kafka here. The driver (`worker.driver`) consumes, decodes and batches; it hands the
engine `Item`s and gets back, per item and in order, an `Outcome`: a `Result` (the result
record's JSON) or a `Rejected` (why the event is a dead letter). Tests and benchmarks drive
the engine directly.

What the engine owns, per batch:

    cache lookups -> tokenize the misses -> forward on the model thread -> poison isolation
    -> helper LLM (production-oss) -> stream state (Kalman, window, SURD, spectra) -> results

Overlap (`REDHEART_OVERLAP`, default on): `advance(batch)` submits the batch's forward to
the one model thread and finishes the batch before it meanwhile, so the forward of batch N
overlaps the CPU work around it:

    main:  take N: cache lookups, tokenize N -> submit N -> N-1: wait for its forward,
           then state and results -> ...
    model:  [ forward + heads of N-1 ][ forward + heads of N (queued, starts at once) ]

Outcomes still come out in batch order (N-1 before N), so a stream's events are applied in
offset order. Without overlap the same steps run one after the other.

Processing exceptions (as Kafka Streams' KIP-1033): any exception while handling one event
— measuring its parts, its forward, its state update, building its result — rejects that
event with the reason (`internal_error` when no precise class fits) and the batch goes on.
A batch the model rejects is split to find its poison events; only when a known-good canary
event fails too is the model itself broken, and that propagates (crash-only).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from pipeline.analysis import Analyzed
from pipeline.errors import ModalityError
from pipeline.temporal.stream import BatchEvent, TemporalStep, advance
from schemas.dead_letter import MAX_REASON_CHARS
from schemas.input import InputEvent
from schemas.result import ModelInfo
from worker import __version__, logs
from worker.cache import CacheKeys, ResultCache
from worker.config import Settings
from worker.decode import Rejection
from worker.metrics import Metrics
from worker.rationale import HelperLLM, Rationale, build_prompt
from worker.results import Body, ResultWriter
from worker.state import StateStore

log = logs.get("redheart.engine")
CANARY_TEXT = "Today was a calm and ordinary day."


class Backend(Protocol):
    """What the engine needs of `pipeline.Pipeline` (narrow, so a benchmark can stand in)."""

    profile: str
    trained: bool
    checkpoint_id: str | None

    def count_tokens(self, text: str) -> int: ...
    def reject_reason(self, event: InputEvent) -> str | None: ...
    def extract(self, event: InputEvent) -> Any: ...
    def prepare(self, events: list[InputEvent], parts: list[Any] | None = None) -> Any: ...
    def run(self, prepared: Any) -> list[Analyzed]: ...
    def status(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class Item:
    """An accepted event. `partition` / `offset`: where it was read (its stream's state lives
    under the partition, and records the offset); `source`: the driver's own handle on the
    record, passed through untouched."""

    event: InputEvent
    partition: int
    offset: int
    record_ts_ms: int = 0  # when the source record was written (latency); 0: unknown
    parts: Any = None  # the pipeline's measured image/audio/biosignals, when the event has them
    tokens: int = 1  # the batcher's cost of this event
    key: bytes | None = None  # result-cache key (text-only events)
    source: Any = None


@dataclass(slots=True)
class Result:
    item: Item
    value: bytes  # the `ResultEvent` JSON
    total_ms: float  # record timestamp -> result built


@dataclass(slots=True)
class Rejected:
    item: Item
    why: Rejection


Outcome = Result | Rejected


def internal(stage: str, exc: BaseException) -> Rejection:
    """A dead letter for an exception no precise class covers: where it happened and what."""
    return Rejection("internal_error", f"{stage}: {type(exc).__name__}: {exc}"[:MAX_REASON_CHARS])


@dataclass
class _Batch:
    """A batch between its cache lookups and its outcomes: `future` is its forward on the
    model thread (None when every event was a cache hit or the batch runs inline)."""

    items: list[Item]
    started: float  # wall clock when the batch was taken (queue latency ends here)
    bodies: list[Body | Rejection | None]
    cached: list[bool]
    misses: list[int]  # what the model computes: each text once
    repeats: dict[int, int] = field(default_factory=dict)  # a miss whose text an earlier miss computes
    awaited: list[int] = field(default_factory=list)  # misses whose text the batch in flight computes
    future: Future[tuple[list[Body], float]] | None = None
    fresh: list[Body] | None = None  # filled for inline runs
    error: Exception | None = None  # why the misses' batch was rejected (prepare or forward)
    model_s: float = 0.0
    prepared: Any = field(default=None, repr=False)

    def done(self) -> bool:
        return self.future is None or self.future.done()

    def computing(self) -> frozenset[bytes]:
        """The cache keys this batch's forward computes (the cache has them once it is finished)."""
        return frozenset(k for i in self.misses if (k := self.items[i].key) is not None)


class Engine:
    def __init__(self, settings: Settings, backend: Backend, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.backend = backend
        self.metrics = metrics if metrics is not None else Metrics()
        self.model_info = ModelInfo(
            profile=backend.profile,
            mode=settings.mode,
            checkpoint_id=backend.checkpoint_id,
            version=__version__,
            trained=backend.trained,
        )
        self.model_id = f"{backend.profile}:{backend.checkpoint_id or 'untrained'}"
        self.cache: ResultCache[Body] = ResultCache(settings.cache_size)
        self._keys = CacheKeys(self.model_id)
        self.states = StateStore(
            settings.state_topic, max_window=settings.state_window, max_streams=settings.max_streams,
            on_evict=self._on_evict,
        )
        self.helper: HelperLLM | None = (
            HelperLLM.from_settings(settings) if settings.mode == "production-oss" else None
        )
        self.writer = ResultWriter(
            self.model_info, settings.result_detail, settings.helper_llm_model if self.helper is not None else None
        )
        self.log = logs.RateLimited(log)
        self.stream_time: datetime | None = None  # newest event time applied (idle eviction's clock)
        self._forecast = settings.forecast_steps if settings.mode == "production-advanced" else None
        self._cuda = str(getattr(backend, "device", "cpu")).startswith("cuda")
        self._model_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="redheart-model") if settings.overlap else None
        )
        self._inflight: _Batch | None = None

    def close(self) -> None:
        if self._model_thread is not None:
            self._model_thread.shutdown(wait=True, cancel_futures=True)
        if self.helper is not None:
            self.helper.close()

    def status(self) -> dict[str, Any]:
        return {
            "pipeline": self.backend.status(),
            "cache": self.cache.stats(),
            "helper_llm": self.helper.stats() if self.helper is not None else None,
            "state": {"streams": len(self.states), "max_streams": self.states.max_streams,
                      "partitions": self.states.partitions()},
        }

    # -- admission (per event, before batching) --------------------------------------------
    def admit(self, event: InputEvent) -> tuple[Any, int, bytes | None] | Rejection:
        """(measured parts, token cost, cache key) of an event the batcher may take, or why
        it is a dead letter. Never raises for the event's content. A text the cache already
        holds is not tokenized: its cost is what the first encoder read last time."""
        try:
            reason = self.backend.reject_reason(event)
            if reason is not None:
                return Rejection("unsupported_modality", reason)
            parts = None
            if event.modalities():
                t0 = time.perf_counter()
                try:
                    parts = self.backend.extract(event)
                except Exception as exc:  # any failure measuring this event's own parts is about its input
                    text = str(exc) if isinstance(exc, ModalityError) else f"{type(exc).__name__}: {exc}"
                    return Rejection("invalid_modality", text[:MAX_REASON_CHARS])
                finally:
                    self.metrics.stage_seconds.labels(stage="modalities").observe(time.perf_counter() - t0)
            if not event.text:
                return parts, 1, None
            # Only text-only events are cached: the key hashes the text, and an event with an
            # image or a signal is not the same input as its text alone.
            key = self._keys(event.text, event.lang) if self.cache.capacity and parts is None else None
            known = self.cache.peek(key) if key is not None else None
            return parts, known.tokens if known is not None else self.backend.count_tokens(event.text), key
        except Exception as exc:
            self.log.internal("accepting a record", exc)
            return internal("accepting the record", exc)

    # -- batches ------------------------------------------------------------------------
    def advance(self, items: list[Item]) -> list[Outcome]:
        """Start `items` and finish the batch before them, keeping the model thread busy: the
        new batch is tokenized while the previous forward runs, submitted as soon as that
        forward ends, and the previous batch's state and results are built while the new
        forward runs. Returns the finished batch's outcomes (without a model thread: these
        items', finished inline)."""
        if not items:
            return []
        nxt = self._open(items)
        prev, self._inflight = self._inflight, None
        self._submit(nxt)  # queued on the one model thread: starts the moment the previous forward ends
        out = self._finish(prev) if prev is not None else []
        if self._model_thread is None:
            out += self._finish(nxt)
        else:
            self._inflight = nxt
        return out

    def process(self, items: list[Item]) -> list[Outcome]:
        """The batch in flight, then `items`, start to finish (drain, revoke, a lone record)."""
        out = self.flush()
        if items:
            b = self._open(items)
            self._submit(b)
            out += self._finish(b)
        return out

    def flush(self, gone: set[int] | None = None) -> list[Outcome]:
        """Finish the batch in flight. `gone`: partitions lost meanwhile, whose events get no
        outcome at all (another worker owns them now)."""
        b, self._inflight = self._inflight, None
        return self._finish(b, gone) if b is not None else []

    def inflight_done(self) -> bool | None:
        """None: nothing in flight; else whether its forward has finished."""
        return None if self._inflight is None else self._inflight.done()

    def evict_idle(self) -> None:
        """Forget streams idle for `state_ttl_s`, in event time against the newest event seen
        ("stream time"), so replaying old data does not evict every stream it touches; never
        past the worker's own clock, so an event time within the allowed future skew cannot
        age every stream at once."""
        if self.settings.state_ttl_s and self.stream_time is not None:
            self.states.evict_idle(min(self.stream_time, datetime.now(tz=timezone.utc)), self.settings.state_ttl_s)

    def _open(self, items: list[Item]) -> _Batch:
        """Cache lookups, then tokenization of the misses (main thread)."""
        bodies: list[Body | Rejection | None] = [self.cache.get(i.key) if i.key is not None else None for i in items]
        cached = [b is not None for b in bodies]
        misses: list[int] = []
        repeats: dict[int, int] = {}  # a text twice in one batch is computed once (a burst of one message)
        awaited: list[int] = []  # a text the batch in flight computes: read from the cache once it has
        computing = self._inflight.computing() if self._inflight is not None else frozenset()
        first: dict[bytes, int] = {}
        for i, hit in enumerate(cached):
            if hit:
                continue
            key = items[i].key
            if key is not None and key in first:
                repeats[i] = first[key]
                cached[i] = True  # answered like a cache hit: by the analysis of the same input
                continue
            if key is not None and key in computing:
                awaited.append(i)
                cached[i] = True
                continue
            if key is not None:
                first[key] = i
            misses.append(i)
        self.metrics.cache_hits.inc(len(items) - len(misses))
        self.metrics.cache_misses.inc(len(misses))
        b = _Batch(items, time.time(), bodies, cached, misses, repeats, awaited)
        if misses:
            t0 = time.perf_counter()
            try:
                b.prepared = self._prepare([items[i] for i in misses])
            except Exception as exc:
                b.error = exc  # `_resolve` isolates the event(s) that cannot be prepared
            self.metrics.stage_seconds.labels(stage="tokenize").observe(time.perf_counter() - t0)
        return b

    def _prepare(self, items: list[Item]) -> Any:
        parts = [i.parts for i in items]
        return self.backend.prepare([i.event for i in items], parts if any(p is not None for p in parts) else None)

    def _submit(self, b: _Batch) -> None:
        if b.prepared is None:
            return
        if self._model_thread is not None:
            b.future = self._model_thread.submit(self._run_model, b.prepared)
        else:
            try:
                b.fresh, b.model_s = self._run_model(b.prepared)
            except Exception as exc:
                b.error = exc
        b.prepared = None

    def _run_model(self, prepared: Any) -> tuple[list[Body], float]:
        """The forward and the heads, then each analysis serialized once (model thread when
        `overlap`): the bodies are what the cache keeps."""
        t0 = time.perf_counter()
        analyzed = self.backend.run(prepared)
        model_s = time.perf_counter() - t0
        self.metrics.stage_seconds.labels(stage="model").observe(model_s)
        return [self.writer.body(a) for a in analyzed], model_s

    def _analyze(self, items: list[Item]) -> list[Body]:
        prepared = self._prepare(items)
        if self._model_thread is not None:  # forwards never run on two threads at once
            return self._model_thread.submit(self._run_model, prepared).result()[0]
        return self._run_model(prepared)[0]

    def _resolve(self, b: _Batch) -> None:
        """Every miss's body into `b.bodies` (and the cache): the batch's, or, when the model
        rejected the batch, each event's own (`_isolate`); repeats get their first's; texts
        the batch before computed come from the cache (it is always finished first), or,
        if it could not analyse them, are analysed here, one by one."""
        if b.awaited:
            late = []
            for i in b.awaited:
                body = self.cache.peek(b.items[i].key)  # type: ignore[arg-type]
                if body is None:
                    late.append(i)
                b.bodies[i] = body
            if late:
                for i, body in zip(late, self._isolate([b.items[i] for i in late], None)):
                    b.bodies[i] = body
                    if isinstance(body, Body):
                        self.cache.put(b.items[i].key, body)  # type: ignore[arg-type]
        if not b.misses:
            return
        fresh: list[Body] | list[Body | Rejection] | None = b.fresh
        if b.future is not None:
            try:
                fresh, b.model_s = b.future.result()  # an exception on the model thread re-raises here
            except Exception as exc:
                b.error = exc
        if fresh is None:
            t0 = time.perf_counter()
            fresh = self._isolate([b.items[i] for i in b.misses], b.error)
            b.model_s = time.perf_counter() - t0
        for i, body in zip(b.misses, fresh):
            b.bodies[i] = body
            key = b.items[i].key
            if key is not None and isinstance(body, Body):
                self.cache.put(key, body)
        for i, j in b.repeats.items():
            b.bodies[i] = b.bodies[j]

    def _isolate(self, items: list[Item], batch_error: Exception | None) -> list[Body | Rejection]:
        """The model rejected these events' batch (`batch_error`): find the poison events
        one by one. A single event is rejected with the batch's error as it stands. Events
        that fail alone are `model_rejected` — unless every event failed and so does a
        known-good canary: then it is not poison input but a broken model or device, and
        that propagates (crash-only). Two poison events alone in a batch are two dead
        letters, not a crash."""
        out: list[Body | Rejection] = []
        last: Exception | None = batch_error
        if len(items) == 1 and batch_error is not None:
            out = [Rejection("model_rejected", f"{type(batch_error).__name__}: {batch_error}"[:MAX_REASON_CHARS])]
        else:
            for item in items:
                try:
                    out.append(self._analyze([item])[0])
                except Exception as exc:
                    last = exc
                    out.append(Rejection("model_rejected", f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]))
        if last is not None and all(isinstance(o, Rejection) for o in out) and not self._model_healthy():
            raise last
        return out

    def _model_healthy(self) -> bool:
        """Whether the model still analyses a plain, known-good event (the canary)."""
        ts = datetime.now(tz=timezone.utc)
        canary = InputEvent(event_id="canary", stream_id="canary", text=CANARY_TEXT, lang="en", ts=ts)
        try:
            self._analyze([Item(canary, 0, 0)])
        except Exception as exc:
            log.error("the model fails on a known-good canary event", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False
        return True

    def _finish(self, b: _Batch, gone: set[int] | None = None) -> list[Outcome]:
        """The batch's bodies, then state and results in arrival order."""
        self._resolve(b)
        items, bodies, cached = b.items, b.bodies, b.cached
        if gone:
            keep = [i for i, item in enumerate(items) if item.partition not in gone]
            items, bodies, cached = [items[i] for i in keep], [bodies[i] for i in keep], [cached[i] for i in keep]
        asked = self._ask_helper(items, bodies)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        steps = self._apply_to_streams(items, bodies)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        self.metrics.stage_seconds.labels(stage="temporal").observe(t1 - t0)
        rationales = self._collect_helper(asked)
        blocks = self.writer.temporal(steps)
        now = datetime.now(tz=timezone.utc)
        now_s = now.timestamp()
        model_ms = b.model_s * 1000.0
        out: list[Outcome] = []
        for i, (item, body, hit) in enumerate(zip(items, bodies, cached)):
            if not isinstance(body, Body):
                out.append(Rejected(item, body))  # type: ignore[arg-type]
                continue
            record_s = item.record_ts_ms / 1000.0 if item.record_ts_ms > 0 else b.started
            total_ms = max(0.0, (now_s - record_s) * 1000.0)
            try:
                value = self.writer.write(
                    item.event, body, steps[i], blocks[i], cached=hit, processed_at=now,
                    latency_ms=(max(0.0, (b.started - record_s) * 1000.0), model_ms, total_ms),
                    rationale=self._rationale(rationales.get(asked[i])) if asked else None,
                )
            except Exception as exc:  # a result that cannot be built is this event's problem
                self.log.internal("building a result", exc)
                out.append(Rejected(item, internal("building the result", exc)))
                continue
            out.append(Result(item, value, total_ms))
        self.metrics.stage_seconds.labels(stage="results").observe(time.perf_counter() - t1)
        if self._cuda:
            import torch

            self.metrics.gpu_memory.set(int(torch.cuda.memory_allocated()))
        return out

    # -- the helper LLM (production-oss) ------------------------------------------------
    def _ask_helper(self, items: list[Item], bodies: list[Body | Rejection]) -> list[str]:
        """One rationale request per result, right after the model, so the LLM's time
        overlaps the state update; `_collect_helper` waits at most until each request's
        deadline (REDHEART_HELPER_LLM_TIMEOUT_MS), and not at all while the circuit breaker
        is open."""
        if self.helper is None:
            return []
        keys = [f"{item.partition}/{item.offset}/{n}" for n, item in enumerate(items)]
        for key, item, body in zip(keys, items, bodies):
            if not isinstance(body, Body):
                continue
            try:
                self.helper.submit(key, build_prompt(item.event.text, body.summary))
            except Exception as exc:  # no rationale for this one ("not_submitted"), the result still goes
                self.log.internal("asking the helper LLM", exc)
        return keys

    def _collect_helper(self, keys: list[str]) -> dict[str, Rationale]:
        if self.helper is None:
            return {}
        t0 = time.perf_counter()
        got = self.helper.collect(keys)
        self.metrics.stage_seconds.labels(stage="helper_llm").observe(time.perf_counter() - t0)
        for r in got.values():
            self.metrics.rationales.labels(status=r.status, reason=r.reason or "").inc()
        return got

    @staticmethod
    def _rationale(r: Rationale | None) -> tuple[str, dict[str, Any]]:
        if r is None:
            r = Rationale.unavailable("not_submitted")
        info = {"status": r.status, "reason": r.reason, "latency_ms": r.latency_ms}
        return (r.text if r.status == "ok" and r.text else "unavailable"), info

    # -- stream state ----------------------------------------------------------------------
    def _apply_to_streams(self, items: list[Item], bodies: list[Body | Rejection]) -> list[TemporalStep | None]:
        """Each analysed event updates its stream's state, in offset order: one numpy step
        for the whole batch. State lives per input partition (a stream id seen on two
        partitions is two streams). If the batched step fails, it is retried event by event
        and only the event that breaks it is rejected."""
        steps: list[TemporalStep | None] = [None] * len(items)
        idx = [i for i, body in enumerate(bodies) if isinstance(body, Body)]
        if idx:
            try:
                self._advance_streams(idx, items, bodies, steps)  # type: ignore[arg-type]
            except Exception:  # one event's observation broke the batched step: find it, event by event
                for i in idx:
                    try:
                        self._advance_streams([i], items, bodies, steps)  # type: ignore[arg-type]
                    except Exception as exc:
                        self.log.internal("the temporal update", exc)
                        bodies[i] = internal("updating the stream's temporal state", exc)
        self.metrics.streams_in_state.set(len(self.states))
        return steps

    def _advance_streams(
        self, idx: list[int], items: list[Item], bodies: list[Body], steps: list[TemporalStep | None]
    ) -> None:
        """The Kalman/SURD step for events `idx`; state is stored only if the whole step
        succeeded, so a failed attempt leaves no partial update behind."""
        events = [
            BatchEvent(items[i].event.stream_id, items[i].partition, items[i].offset, items[i].event.ts,  # type: ignore[arg-type]
                       bodies[i].observation)
            for i in idx
        ]
        tracks = {}
        for e in events:
            track = self.states.get(e.partition, e.stream_id)
            if track is not None:
                tracks[(e.partition, e.stream_id)] = track
        blocks, new_tracks = advance(
            events, tracks, max_window=self.settings.state_window, forecast_steps=self._forecast,
        )
        newest = max(e.ts for e in events)
        if self.stream_time is None or newest > self.stream_time:
            self.stream_time = newest
        for i, block in zip(idx, blocks):
            steps[i] = block
        for track in new_tracks.values():
            self.states.put(track)

    def _on_evict(self, reason: str, count: int) -> None:
        self.metrics.streams_evicted.labels(reason=reason).inc(count)
        if reason == "cap":
            self.log.warning("evict_cap", "streams evicted: REDHEART_MAX_STREAMS reached",
                             {"evicted": count, "max_streams": self.settings.max_streams})
        else:
            log.info("idle streams evicted", extra={"evicted": count, "ttl_s": self.settings.state_ttl_s})
