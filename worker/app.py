"""The consume loop: records -> validated events -> micro-batches -> pipeline -> results.

One thread owns the consumer, the batcher, the state and the producer. With
`overlap` (the default) the model's `run` goes to a second thread, one batch at a time,
so the forward of batch N overlaps the CPU work around it (SPEC §4):

    main:  consume/decode -> batcher -> take N: cache lookups, tokenize N -> submit N
           -> N-1: wait for its forward, then state, results, produce -> ...
    model:  [ forward + heads of N-1 ][ forward + heads of N (queued, starts at once) ]

Results still leave in batch order (N-1 is finished before N), so a stream's events are
applied in offset order. Only the model thread runs the forward; everything Kafka stays
on the main thread. `overlap=false` runs the same steps one after the other. The loop:

    consume -> decode (bad -> DLQ) -> batcher -> pipeline -> produce results
            -> checkpoint (flush producer, then commit offsets)

Processing exceptions (as Kafka Streams' KIP-1033): any exception raised while handling
one record — decoding, validation, measuring its parts, its forward, its state update,
building its result — dead-letters that record with the reason (`internal_error` when no
precise class fits) and the loop goes on. A batch the model rejects is split to find its
poison events; only when a known-good canary event fails too is the model itself broken.
Crash-only is for infrastructure (broker, model, state store): then the process exits
non-zero, Kubernetes restarts it and the uncommitted tail is re-delivered. A record that
kills the process outright (a native crash) is recognised on restart by `worker.recovery`.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import orjson
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from pipeline.errors import ModalityError
from pipeline.temporal.stream import BatchEvent, advance
from schemas.dead_letter import MAX_REASON_CHARS, DeadLetter
from schemas.input import InputEvent
from schemas import labels as L
from schemas.result import EventAnalysis, Latency, ModelInfo, RationaleInfo, ResultEvent, Temporal
from worker import __version__, kafka, logs
from worker.batcher import MicroBatcher, Pending
from worker.cache import ResultCache, cache_key
from worker.checkpoint import Checkpoint
from worker.config import Settings
from worker.decode import Rejection, decode
from worker.health import HealthServer
from worker.metrics import Metrics
from worker.rationale import HelperLLM, Rationale, build_prompt
from worker.recovery import CrashMarker, marker_path
from worker.state import StateStore

log = logs.get("redheart.worker")
POLL_TIMEOUT_S = 0.1
INFLIGHT_POLL_S = 0.002  # how often the loop looks whether the in-flight forward is done
LOG_EVERY_S = 60.0  # at most one log line per kind of repeated event (evictions, internal errors)
CANARY_TEXT = "Today was a calm and ordinary day."


class Analyzer(Protocol):
    """What the worker needs of `pipeline.Pipeline` (kept narrow so tests can see the seam)."""

    profile: str
    trained: bool
    checkpoint_id: str | None

    def count_tokens(self, text: str) -> int: ...
    def reject_reason(self, event: InputEvent) -> str | None: ...
    def extract(self, event: InputEvent) -> Any: ...
    def prepare(self, events: list[InputEvent], parts: list[Any] | None = None) -> Any: ...
    def run(self, prepared: Any) -> list[EventAnalysis]: ...
    def status(self) -> dict[str, Any]: ...


def _cuda_memory_bytes() -> int:
    import torch

    return int(torch.cuda.memory_allocated())


class FatalKafkaError(RuntimeError):
    """librdkafka reported a fatal error; the client instance is unusable."""


class StateRestoreFailed(RuntimeError):
    """The committed offsets needed to restore state could not be read."""


def _observation(a: EventAnalysis) -> list[float]:
    """The event's point in the stream's state space (`labels.STATE_VECTOR` order)."""
    i, kinds = a.integrated, a.analysis.surd.kinds
    per_event_clarity = kinds["redundant"] + kinds["unique"]
    return [a.analysis.emotion.emotions[e] for e in L.EMOTIONS] + [
        i.overall_sentiment, i.ethical_score, i.regret_potential, per_event_clarity
    ]


def _causal_clarity(temporal: Temporal | None) -> float | str:
    if temporal is None or temporal.surd is None:
        return L.INSUFFICIENT_HISTORY
    return min(1.0, temporal.surd.shares["redundant"] + temporal.surd.shares["unique"])


def _internal(stage: str, exc: BaseException) -> Rejection:
    """A dead letter for an exception no precise class covers: where it happened and what."""
    return Rejection("internal_error", f"{stage}: {type(exc).__name__}: {exc}"[:MAX_REASON_CHARS])


class PartitionsLostError(RuntimeError):
    """The group took partitions away without a revoke (session timeout): restart cleanly."""


@dataclass(slots=True)
class Work:
    """An accepted event with the coordinates of the record it came from."""

    event: InputEvent
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None
    record_ts_ms: int
    parts: Any = None  # the pipeline's measured image/audio/biosignals, when the event has them


@dataclass
class InFlight:
    """A batch between its cache lookups and its results: `future` is its forward on the
    model thread (None when every event was a cache hit or the batch runs inline)."""

    works: list[Work]
    started: float  # wall clock when the batch was taken (queue latency ends here)
    outcomes: list[EventAnalysis | Rejection | None]
    cached: list[bool]
    keys: list[bytes | None]
    misses: list[int]
    future: Future[tuple[list[EventAnalysis], float]] | None = None
    fresh: list[EventAnalysis | Rejection] | None = None  # filled for inline runs
    error: Exception | None = None  # why the misses' batch was rejected (prepare or forward)
    model_s: float = 0.0
    prepared: Any = field(default=None, repr=False)

    def done(self) -> bool:
        return self.future is None or self.future.done()


class Worker:
    def __init__(self, settings: Settings, pipeline: Analyzer) -> None:
        self.s = settings
        self.pipeline = pipeline
        self.metrics = Metrics()
        self.batcher: MicroBatcher[Work] = MicroBatcher(
            settings.max_batch_events, settings.max_batch_tokens, settings.max_wait_ms / 1000.0
        )
        self.model_info = ModelInfo(
            profile=pipeline.profile,
            mode=settings.mode,
            checkpoint_id=pipeline.checkpoint_id,
            version=__version__,
            trained=pipeline.trained,
        )
        self.model_id = f"{pipeline.profile}:{pipeline.checkpoint_id or 'untrained'}"
        self.cache: ResultCache[EventAnalysis] = ResultCache(settings.cache_size)
        self.store = StateStore(
            settings.state_topic, max_window=settings.state_window, max_streams=settings.max_streams,
            on_evict=self._on_evict,
        )
        self.marker = CrashMarker(
            marker_path(settings.recovery_dir, settings.group_id, kafka.member_name(settings)),
            poison_after=settings.poison_after_crashes,
        )
        self._last_eviction = time.monotonic()
        self._beat = time.monotonic()  # the consume loop's last sign of progress (liveness)
        self._restoring = False
        self._last_log: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._stream_time: datetime | None = None
        self._cuda = str(getattr(pipeline, "device", "cpu")).startswith("cuda")
        self._stop = False
        self._fatal: KafkaError | None = None
        self._assigned: set[tuple[str, int]] = set()
        self.http: HealthServer | None = None
        self.helper: HelperLLM | None = HelperLLM.from_settings(settings) if settings.mode == "production-oss" else None
        self._inflight: InFlight | None = None
        self._model_thread: ThreadPoolExecutor | None = None

    # -- lifecycle --------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self._stop = True

    def ready(self) -> bool:
        return bool(self._assigned) and not self._stop

    def alive(self) -> bool:
        """False once the consume loop has made no progress for `liveness_timeout_s` (a hung
        forward, a decode that never ends): Kubernetes then restarts the worker. A state
        restore has its own deadline (`state_restore_timeout_s`) and counts as progress."""
        return self._restoring or time.monotonic() - self._beat < self.s.liveness_timeout_s

    def status(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "model": self.model_info.model_dump(),
            "pipeline": self.pipeline.status(),
            "assigned_partitions": sorted(f"{t}[{p}]" for t, p in self._assigned),
            "batcher": {"pending_events": len(self.batcher), "pending_tokens": self.batcher.tokens},
            "cache": self.cache.stats(),
            "helper_llm": self.helper.stats() if self.helper is not None else None,
            "state": {"streams": len(self.store), "max_streams": self.store.max_streams,
                      "partitions": self.store.partitions()},
            "liveness": {"seconds_since_progress": round(time.monotonic() - self._beat, 3), "alive": self.alive()},
            "recovered_from_crash": self.marker.crashed,
            "http": self.http.stats() if self.http is not None else None,
            "config": self.s.redacted(),
        }

    def run(self) -> int:
        """Consume until SIGTERM/SIGINT; returns the process exit code (0 on a clean stop)."""
        kafka.require_topics(self.s, kafka.worker_topics(self.s))
        exactly_once = self.s.delivery == "exactly-once"
        txn = {"transactional.id": kafka.transactional_id(self.s)} if exactly_once else {}
        self.producer = kafka.make_producer(self.s, error_cb=self._on_error, **txn)
        self.consumer = kafka.make_consumer(self.s, error_cb=self._on_error, stats_cb=self._on_stats)
        self.checkpoint = Checkpoint(
            self.consumer,
            self.producer,
            exactly_once=exactly_once,
            interval_s=self.s.commit_interval_ms / 1000.0,
            commit_every=self.s.commit_every,
            changelog=self._produce_changelog,
        )
        self.producer_on_delivery = self.checkpoint.on_delivery
        self.marker.arm()
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.http = HealthServer(
            self.s.http_host, self.s.http_port, self.metrics.registry, self.status, self.ready, self.alive,
            timeout_s=self.s.http_timeout_s, max_connections=self.s.http_max_connections,
        )
        self.http.start()
        if self.s.overlap:
            self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="redheart-model")
        self.consumer.subscribe(
            [self.s.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info(
            "worker started",
            extra={"group_id": self.s.group_id, "http_port": self.http.port, "model": self.model_info.model_dump(),
                   "recovering_from_crash": self.marker.crashed,
                   "native_crash": self.marker.native_crash.splitlines()[0][:200] if self.marker.native_crash else None},
        )
        try:
            self._loop()
            self._drain()
        finally:
            self.consumer.close()  # leaves the group; the revoke callback commits what is done
            self.producer.flush(self.s.shutdown_timeout_s)
            self.http.stop()
            if self._model_thread is not None:
                self._model_thread.shutdown(wait=True, cancel_futures=True)
            if self.helper is not None:
                self.helper.close()
        self.marker.clear()  # a clean stop: nothing is suspect at the next start
        log.info("worker stopped", extra={"reason": "signal"})
        return 0

    def _loop(self) -> None:
        while not self._stop:
            self._beat = time.monotonic()
            if self._fatal is not None:
                raise FatalKafkaError(str(self._fatal))
            wait = self.batcher.time_to_ready(time.monotonic())
            room = max(1, self.s.max_batch_events - len(self.batcher))
            timeout = POLL_TIMEOUT_S if wait is None else min(POLL_TIMEOUT_S, wait)
            if self._inflight is not None:
                timeout = min(timeout, INFLIGHT_POLL_S)
            msgs = self.consumer.consume(num_messages=room, timeout=timeout)
            if msgs:
                t0 = time.perf_counter()
                for msg in msgs:  # recorded before any is handled: a hard crash leaves them suspect
                    if msg.error() is None:
                        self.marker.consumed(msg.topic(), msg.partition(), msg.offset())
                self.marker.flush()
                for msg in msgs:
                    self._accept(msg)
                self.metrics.stage_seconds.labels(stage="decode").observe(time.perf_counter() - t0)
            self.producer.poll(0)
            now = time.monotonic()
            while self.batcher.ready(now):
                self._advance(self.batcher.take())
                now = time.monotonic()
            if self._inflight is not None and self._inflight.done():
                self._finish_inflight()
            if (self.s.state_ttl_s and self._stream_time
                    and now - self._last_eviction >= self.s.state_eviction_interval_s):
                # idle is measured in event time against the newest event seen ("stream time"),
                # so replaying old data does not evict every stream it touches; never past the
                # worker's own clock, so an event time within the allowed future skew cannot
                # age every stream at once
                self._last_eviction = now
                self.store.evict_idle(min(self._stream_time, datetime.now(tz=timezone.utc)), self.s.state_ttl_s)
            if self.checkpoint.due(now):
                self.checkpoint.commit()

    def _drain(self) -> None:
        """Finish what was consumed before stopping, then commit it — within the deadline.

        Past `shutdown_timeout_s` (less a margin for the commit and leaving the group) the
        remaining batches are dropped uncommitted: the next owner consumes them again.
        """
        deadline = time.monotonic() + 0.7 * self.s.shutdown_timeout_s
        self._finish_inflight()
        batches = self.batcher.drain()
        for n, batch in enumerate(batches):
            if time.monotonic() > deadline:
                left = sum(len(b) for b in batches[n:])
                log.warning("shutdown deadline reached", extra={"uncommitted_events": left})
                break
            self._process(batch)
        self.checkpoint.commit()

    # -- records in ---------------------------------------------------------------------
    def _accept(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise FatalKafkaError(str(err))
            log.warning("consumer error", extra={"error": str(err)})
            return
        self.metrics.consumed.inc()
        self.checkpoint.track(msg)
        verdict, crashes = self.marker.verdict(msg.topic(), msg.partition(), msg.offset())
        if verdict == "poison":
            native = self.marker.native_crash.splitlines()[0][:200] if self.marker.native_crash else ""
            why = Rejection(
                "internal_error",
                f"the worker process died {crashes} time(s) while handling this record alone ("
                + (f"native crash: {native}" if native else "killed: SIGKILL or the OOM killer")
                + "); it is not handled again",
            )
            self._dead_letter(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers(), why)
            log.warning("poison record dead-lettered after a crash",
                        extra={"partition": msg.partition(), "offset": msg.offset(), "crashes": crashes})
            return
        if verdict == "alone":
            self._handle_alone(msg, crashes)
            return
        admitted = self._admit(msg)
        if isinstance(admitted, Rejection):
            self._dead_letter(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers(), admitted)
            return
        work, tokens = admitted
        self.batcher.add(work, tokens, time.monotonic())

    def _admit(self, msg: Message) -> tuple[Work, int] | Rejection:
        """The record as a batchable event with its token count, or why it is a dead letter.
        Never raises for the record's content: whatever escapes the precise checks is an
        `internal_error` dead letter (the processing-exception rule)."""
        try:
            _, ts_ms = msg.timestamp()
            decoded = decode(
                msg.value(), ts_ms, max_text_bytes=self.s.max_text_bytes, max_message_bytes=self.s.max_message_bytes,
                max_future_skew_s=self.s.max_future_skew_s, max_past_skew_s=self.s.max_past_skew_s,
            )
            if isinstance(decoded, Rejection):
                return decoded
            reason = self.pipeline.reject_reason(decoded)
            if reason is not None:
                return Rejection("unsupported_modality", reason)
            parts = None
            if decoded.modalities():
                t0 = time.perf_counter()
                try:
                    parts = self.pipeline.extract(decoded)
                except Exception as exc:  # any failure measuring this event's own parts is about its input
                    text = str(exc) if isinstance(exc, ModalityError) else f"{type(exc).__name__}: {exc}"
                    return Rejection("invalid_modality", text[:MAX_REASON_CHARS])
                finally:
                    self.metrics.stage_seconds.labels(stage="modalities").observe(time.perf_counter() - t0)
            work = Work(
                decoded, msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers(), ts_ms, parts
            )
            return work, (self.pipeline.count_tokens(decoded.text) if decoded.text else 1)
        except Exception as exc:
            self._log_internal("accepting a record", exc)
            return _internal("accepting the record", exc)

    def _handle_alone(self, msg: Message, crashes: int) -> None:
        """A record that was in flight when the last process died: handled by itself, with
        the marker naming it, so that if it kills this process too the next one knows which."""
        self._finish_inflight()
        for batch in self.batcher.drain():
            self._process(batch)
        self.marker.begin_alone(msg.topic(), msg.partition(), msg.offset(), crashes)
        admitted = self._admit(msg)
        if isinstance(admitted, Rejection):
            self._dead_letter(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers(), admitted)
        else:
            work, tokens = admitted
            self._process([Pending(work, tokens, time.monotonic())])
        self.marker.end_alone()

    def _log_internal(self, stage: str, exc: BaseException) -> None:
        """Internal errors are bugs to hear about, but a flood of them must not flood the log."""
        self._rate_limited_log("internal_error", "record dead-lettered: internal error",
                               {"stage": stage, "error": f"{type(exc).__name__}: {exc}"[:500]}, exc_info=exc)

    def _rate_limited_log(self, kind: str, message: str, extra: dict[str, Any], exc_info: Any = None) -> None:
        now = time.monotonic()
        if now - self._last_log.get(kind, -LOG_EVERY_S) < LOG_EVERY_S:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last_log[kind] = now
        log.warning(message, extra={**extra, "suppressed_since_last": self._suppressed.pop(kind, 0)}, exc_info=exc_info)

    def _on_evict(self, reason: str, count: int) -> None:
        self.metrics.streams_evicted.labels(reason=reason).inc(count)
        if reason == "cap":
            self._rate_limited_log("evict_cap", "streams evicted: REDHEART_MAX_STREAMS reached",
                                   {"evicted": count, "max_streams": self.s.max_streams})
        else:
            log.info("idle streams evicted", extra={"evicted": count, "ttl_s": self.s.state_ttl_s})

    def _dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None,
        why: Rejection,
    ) -> None:
        """Original key, bytes and headers to the DLQ, plus headers saying why and whence."""
        letter = DeadLetter(
            error_class=why.error_class,
            reason=why.reason,
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            worker_version=__version__,
        )
        self._produce(self.s.dlq_topic, key, value, list(headers or []) + letter.headers())
        self.checkpoint.done(topic, partition, offset)
        self.metrics.dead_letters.labels(reason=why.error_class).inc()
        log.debug("dead letter", extra={"class": why.error_class, "reason": why.reason, "offset": offset})

    # -- batches ------------------------------------------------------------------------
    def _advance(self, batch: list[Pending[Work]]) -> None:
        """Start `batch` and finish the one before it, keeping the model thread busy:
        the new batch is tokenized while the previous forward runs, submitted as soon as
        that forward ends, and the previous batch's state and results are produced while
        the new forward runs. Without a model thread: start and finish inline."""
        if not batch:
            return
        nxt = self._start(batch)
        prev, self._inflight = self._inflight, None
        self._submit(nxt)  # queued on the one model thread: starts the moment the previous forward ends
        if prev is not None:
            self._finish(prev)
        if self._model_thread is None:
            self._finish(nxt)
        else:
            self._inflight = nxt

    def _process(self, batch: list[Pending[Work]]) -> None:
        """One batch start to finish, after any batch in flight (drain, revoke)."""
        if not batch:
            return
        self._finish_inflight()
        b = self._start(batch)
        self._submit(b)
        self._finish(b)

    def _finish_inflight(self, gone: set[tuple[str, int]] | None = None) -> None:
        b, self._inflight = self._inflight, None
        if b is not None:
            self._finish(b, gone)

    def _start(self, batch: list[Pending[Work]]) -> InFlight:
        """A batch taken from the batcher: its size metrics, then `_open`."""
        works = [p.item for p in batch]
        self.metrics.batch_size.observe(len(works))
        self.metrics.batch_tokens.observe(sum(p.tokens for p in batch))
        return self._open(works)

    def _open(self, works: list[Work]) -> InFlight:
        """Cache lookups, then tokenization of the misses (main thread)."""
        b = InFlight(works, time.time(), *self._lookup(works))
        if b.misses:
            t0 = time.perf_counter()
            try:
                b.prepared = self._prepare([works[i] for i in b.misses])
            except Exception as exc:
                b.error = exc  # `_resolve` isolates the event(s) that cannot be prepared
            self.metrics.stage_seconds.labels(stage="tokenize").observe(time.perf_counter() - t0)
        return b

    def _submit(self, b: InFlight) -> None:
        if b.prepared is None:
            return
        if self._model_thread is not None:
            b.future = self._model_thread.submit(self._run_model, b.prepared)
        else:
            try:
                b.fresh, b.model_s = self._run_model(b.prepared)  # type: ignore[assignment]
            except Exception as exc:
                b.error = exc
        b.prepared = None

    def _run_model(self, prepared: Any) -> tuple[list[EventAnalysis], float]:
        """The forward and the heads (model thread when `overlap`)."""
        t0 = time.perf_counter()
        out = list(self.pipeline.run(prepared))
        model_s = time.perf_counter() - t0
        self.metrics.stage_seconds.labels(stage="model").observe(model_s)
        return out, model_s

    def _resolve(self, b: InFlight) -> None:
        """Every miss's outcome into `b.outcomes` (and the cache): the batch's results, or,
        when the model rejected the batch, each event's own (`_isolate`)."""
        if not b.misses:
            return
        fresh = b.fresh
        if b.future is not None:
            try:
                fresh, b.model_s = b.future.result()  # an exception on the model thread re-raises here
            except Exception as exc:
                b.error = exc
        if fresh is None:
            t0 = time.perf_counter()
            fresh = self._isolate([b.works[i] for i in b.misses], b.error)
            b.model_s = time.perf_counter() - t0
        self._store(b, fresh)

    def _finish(self, b: InFlight, gone: set[tuple[str, int]] | None = None) -> None:
        """The batch's outcomes, then state and results in arrival order. `gone`:
        partitions lost meanwhile, whose events get nothing."""
        self._resolve(b)
        works, outcomes, cached = b.works, b.outcomes, b.cached
        if gone:
            keep = [i for i, w in enumerate(works) if (w.topic, w.partition) not in gone]
            works, outcomes, cached = [works[i] for i in keep], [outcomes[i] for i in keep], [cached[i] for i in keep]
        keys = self._ask_helper(works, outcomes)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        temporal = self._apply_to_streams(works, outcomes)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        self.metrics.stage_seconds.labels(stage="temporal").observe(t1 - t0)
        rationales = self._collect_helper(keys)
        for i, (work, outcome, hit) in enumerate(zip(works, outcomes, cached)):
            if isinstance(outcome, Rejection):
                w = work
                self._dead_letter(w.topic, w.partition, w.offset, w.key, w.value, w.headers, outcome)
                continue
            rationale = rationales.get(keys[i]) if keys else None
            self._produce_result(work, outcome, temporal[i], hit, b.started, b.model_s, rationale)  # type: ignore[arg-type]
        self.metrics.stage_seconds.labels(stage="produce").observe(time.perf_counter() - t1)
        if self._cuda:
            self.metrics.gpu_memory.set(_cuda_memory_bytes())

    def _ask_helper(self, works: list[Work], outcomes: list[EventAnalysis | Rejection]) -> list[str]:
        """production-oss: start one rationale request per result, right after the model,
        so the LLM's time overlaps the state update; `_collect_helper` waits at most until
        each request's deadline (REDHEART_HELPER_LLM_TIMEOUT_MS), and not at all while the
        circuit breaker is open."""
        if self.helper is None:
            return []
        keys = [f"{w.topic}/{w.partition}/{w.offset}" for w in works]
        for key, work, a in zip(keys, works, outcomes):
            if isinstance(a, Rejection):
                continue
            summary = {
                "dominant_emotion": a.analysis.emotion.dominant,
                "overall_sentiment": a.integrated.overall_sentiment,
                "ethical_score": a.integrated.ethical_score,
                "regret_potential": a.integrated.regret_potential,
            }
            try:
                self.helper.submit(key, build_prompt(work.event.text, summary))
            except Exception as exc:  # no rationale for this one ("not_submitted"), the result still goes
                self._log_internal("asking the helper LLM", exc)
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

    def _apply_to_streams(self, works: list[Work], outcomes: list[EventAnalysis | Rejection]) -> list[Temporal | None]:
        """Each analysed event updates its stream's state, in offset order (SPEC §3).

        State lives per input partition; a batch is split by partition so a stream id
        seen on two partitions (a producer that did not key by stream_id) never mixes.
        """
        temporal: list[Temporal | None] = [None] * len(works)
        by_partition: dict[int, list[int]] = {}
        for i, outcome in enumerate(outcomes):
            if not isinstance(outcome, Rejection):
                by_partition.setdefault(works[i].partition, []).append(i)
        for partition, idx in by_partition.items():
            try:
                self._advance_streams(partition, idx, works, outcomes, temporal)  # type: ignore[arg-type]
            except Exception:  # one event's observation broke the batched step: find it, event by event
                for i in idx:
                    try:
                        self._advance_streams(partition, [i], works, outcomes, temporal)  # type: ignore[arg-type]
                    except Exception as exc:
                        self._log_internal("the temporal update", exc)
                        outcomes[i] = _internal("updating the stream's temporal state", exc)
        self.metrics.streams_in_state.set(len(self.store))
        return temporal

    def _advance_streams(
        self, partition: int, idx: list[int], works: list[Work], outcomes: list[EventAnalysis],
        temporal: list[Temporal | None],
    ) -> None:
        """The Kalman/SURD step for events `idx` of one partition; state is stored only if
        the whole step succeeded, so a failed attempt leaves no partial update behind."""
        events = [
            BatchEvent(works[i].event.stream_id, partition, works[i].offset, works[i].event.ts,  # type: ignore[arg-type]
                       _observation(outcomes[i]))
            for i in idx
        ]
        states = {e.stream_id: st for e in events if (st := self.store.get(partition, e.stream_id)) is not None}
        blocks, new_states = advance(
            events, states, max_window=self.s.state_window,
            forecast_steps=self.s.forecast_steps if self.s.mode == "production-advanced" else None,
        )
        newest = max(e.ts for e in events)
        if self._stream_time is None or newest > self._stream_time:
            self._stream_time = newest
        for i, block in zip(idx, blocks):
            temporal[i] = block
        for state in new_states.values():
            self.store.put(state)

    def _produce_changelog(self) -> int:
        """Checkpoint hook: dirty stream states and tombstones to the state topic."""
        records = self.store.changelog_records()
        for partition, key, value in records:
            self._produce(self.s.state_topic, key.encode("utf-8"), value, partition=partition)
        return len(records)

    def _lookup(self, works: list[Work]) -> tuple[list[Any], list[bool], list[bytes | None], list[int]]:
        """(outcome per event or None, cache hit per event, cache keys, indices of the misses)."""
        # Only text-only events are cached: the key hashes the text, and an event with an
        # image or a signal is not the same input as its text alone.
        keys = [
            cache_key(w.event.text, w.event.lang, self.model_id)
            if self.cache.capacity and w.parts is None and w.event.text else None
            for w in works
        ]
        outcomes: list[EventAnalysis | Rejection | None] = [self.cache.get(k) if k else None for k in keys]
        cached = [o is not None for o in outcomes]
        misses = [i for i, hit in enumerate(cached) if not hit]
        self.metrics.cache_hits.inc(len(works) - len(misses))
        self.metrics.cache_misses.inc(len(misses))
        return outcomes, cached, keys, misses

    def _store(self, b: InFlight, fresh: list[EventAnalysis | Rejection]) -> None:
        for i, outcome in zip(b.misses, fresh):
            b.outcomes[i] = outcome
            if not isinstance(outcome, Rejection) and b.keys[i] is not None:
                self.cache.put(b.keys[i], outcome)  # type: ignore[arg-type]

    def _compute(self, works: list[Work]) -> tuple[list[EventAnalysis | Rejection], list[bool], float]:
        """(outcome per event, whether it came from the cache, model seconds): the batch
        path's own steps, inline and without producing anything."""
        b = self._open(works)
        self._submit(b)
        self._resolve(b)
        return b.outcomes, b.cached, b.model_s  # type: ignore[return-value]

    def _prepare(self, works: list[Work]) -> Any:
        parts = [w.parts for w in works]
        return self.pipeline.prepare([w.event for w in works], parts if any(p is not None for p in parts) else None)

    def _analyze(self, works: list[Work]) -> list[EventAnalysis]:
        prepared = self._prepare(works)
        if self._model_thread is not None:  # forwards never run on two threads at once
            return self._model_thread.submit(self._run_model, prepared).result()[0]
        return self._run_model(prepared)[0]

    def _isolate(self, works: list[Work], batch_error: Exception | None) -> list[EventAnalysis | Rejection]:
        """The model rejected these events' batch (`batch_error`): find the poison events
        one by one. A single event is rejected with the batch's error as it stands. Events
        that fail alone are `model_rejected` — unless every event failed and so does a
        known-good canary: then it is not poison input but a broken model or device, and
        that propagates (crash-only). Two poison events alone in a batch are two dead
        letters, not a crash."""
        outcomes: list[EventAnalysis | Rejection] = []
        last: Exception | None = batch_error
        if len(works) == 1 and batch_error is not None:
            outcomes = [Rejection("model_rejected", f"{type(batch_error).__name__}: {batch_error}"[:MAX_REASON_CHARS])]
        else:
            for w in works:
                try:
                    outcomes.append(self._analyze([w])[0])
                except Exception as exc:
                    last = exc
                    outcomes.append(Rejection("model_rejected", f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]))
        if last is not None and all(isinstance(o, Rejection) for o in outcomes) and not self._model_healthy():
            raise last
        return outcomes

    def _model_healthy(self) -> bool:
        """Whether the model still analyses a plain, known-good event (the canary)."""
        ts = datetime.now(tz=timezone.utc)
        canary = InputEvent(event_id="canary", stream_id="canary", text=CANARY_TEXT, lang="en", ts=ts)
        try:
            self._analyze([Work(canary, "", 0, 0, None, b"", None, 0)])
        except Exception as exc:
            log.error("the model fails on a known-good canary event", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False
        return True

    def _produce_result(
        self,
        work: Work,
        a: EventAnalysis,
        temporal: Temporal | None,
        cached: bool,
        started: float,
        model_s: float,
        rationale: Rationale | None = None,
    ) -> None:
        now = datetime.now(tz=timezone.utc)
        record_s = work.record_ts_ms / 1000.0 if work.record_ts_ms > 0 else started
        total_ms = max(0.0, (now.timestamp() - record_s) * 1000.0)
        try:
            value = self._result_json(work, a, temporal, cached, started, model_s, rationale, now, record_s, total_ms)
        except Exception as exc:  # a result that cannot be built or validated is this record's problem
            self._log_internal("building a result", exc)
            w = work
            self._dead_letter(w.topic, w.partition, w.offset, w.key, w.value, w.headers,
                              _internal("building the result", exc))
            return
        self._produce(self.s.results_topic, work.event.stream_id.encode("utf-8"), value)
        self.checkpoint.done(work.topic, work.partition, work.offset)
        self.metrics.produced.inc()
        self.metrics.end_to_end.observe(total_ms / 1000.0)

    def _result_json(
        self,
        work: Work,
        a: EventAnalysis,
        temporal: Temporal | None,
        cached: bool,
        started: float,
        model_s: float,
        rationale: Rationale | None,
        now: datetime,
        record_s: float,
        total_ms: float,
    ) -> bytes:
        result = ResultEvent(
            event_id=work.event.event_id,
            stream_id=work.event.stream_id,
            ts=work.event.ts,
            processed_at=now,
            model=self.model_info,
            lang=a.lang,
            analysis=a.analysis,
            integrated=a.integrated.model_copy(update={"causal_clarity": _causal_clarity(temporal)}),
            temporal=temporal,
            auxiliary=a.auxiliary,
            cached=cached,
            latency_ms=Latency(
                queue=max(0.0, (started - record_s) * 1000.0), model=model_s * 1000.0, total=total_ms
            ),
            metadata=work.event.metadata,
            uncertainty=a.uncertainty,
            explanation=a.explanation,
            **self._rationale_fields(rationale),
        )
        return result.model_dump_json().encode()

    def _rationale_fields(self, r: Rationale | None) -> dict[str, Any]:
        if self.helper is None:
            return {}
        if r is None:  # not submitted (cannot happen for a produced result; stay explicit)
            r = Rationale.unavailable("not_submitted")
        info = RationaleInfo(status=r.status, reason=r.reason, latency_ms=r.latency_ms, model=self.s.helper_llm_model)
        return {"rationale": r.text if r.status == "ok" and r.text else "unavailable", "rationale_info": info}

    def _produce(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list | None = None, partition: int = -1
    ) -> None:
        self.checkpoint.before_produce()
        paused: list[TopicPartition] = []
        try:
            while True:
                try:
                    self.producer.produce(
                        topic, value=value, key=key, headers=headers, partition=partition,
                        on_delivery=self.producer_on_delivery,
                    )
                    return
                except BufferError:
                    # Backpressure: the producer queue is full (slow or unreachable broker).
                    # Stop fetching instead of growing memory, wait for deliveries, never drop.
                    if not paused:
                        paused = self.consumer.assignment()
                        self.consumer.pause(paused)
                        self.metrics.backpressure.inc()
                        log.info("backpressure: partitions paused", extra={"queued": len(self.producer)})
                    if self._fatal is not None:
                        raise FatalKafkaError(str(self._fatal)) from None
                    self.producer.poll(0.05)
                    self._beat = time.monotonic()  # waiting on the broker is not a stalled loop
        finally:
            if paused:
                self.consumer.resume(paused)
                log.info("backpressure: partitions resumed", extra={"queued": len(self.producer)})

    # -- rebalance callbacks (run inside consume) ------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Restore the partitions' stream state before processing them (not ready meanwhile)."""
        self._restoring = True
        try:
            self._restore(consumer, partitions)
        finally:
            self._restoring, self._beat = False, time.monotonic()
        self.metrics.streams_in_state.set(len(self.store))
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.assigned.set(len(self._assigned))
        log.info("partitions assigned", extra={"partitions": [f"{tp.topic}[{tp.partition}]" for tp in partitions]})

    def _restore(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(
            [TopicPartition(tp.topic, tp.partition) for tp in partitions], timeout=self.s.state_restore_timeout_s
        )
        for tp in committed:
            if tp.error is not None:
                raise StateRestoreFailed(f"committed offset of {tp.topic}[{tp.partition}]: {tp.error}")
            stats = self.store.restore(
                self._restore_consumer,
                tp.partition,
                tp.offset if tp.offset >= 0 else None,
                timeout_s=self.s.state_restore_timeout_s,
            )
            log.info("state restored", extra={"partition": tp.partition, "committed_offset": tp.offset,
                                              "streams": stats.restored, "records": stats.records_read,
                                              "skipped_ahead": stats.skipped_ahead, "malformed": stats.malformed,
                                              "seconds": round(stats.seconds, 3)})
            if stats.malformed:
                self.metrics.state_records_skipped.inc(stats.malformed)
                log.warning("state records skipped on restore", extra={
                    "partition": tp.partition, "skipped": stats.malformed, "first": stats.first_malformed})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish the in-flight work and commit it while we still own the partitions."""
        self._finish_inflight()
        for batch in self.batcher.drain():
            self._process(batch)
        self.checkpoint.commit()
        self.checkpoint.forget(partitions)
        self.store.drop(tp.partition for tp in partitions)
        self._assigned -= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.assigned.set(len(self._assigned))
        log.info("partitions revoked", extra={"partitions": [f"{tp.topic}[{tp.partition}]" for tp in partitions]})

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Lost (not revoked): another member may already own them; produce nothing more for them.

        With exactly-once, the open transaction may hold results of the lost partitions
        and can no longer commit; the worker stops (crash-only) and restarts from the
        committed offsets rather than guessing which records to keep.
        """
        if self.checkpoint.exactly_once:
            raise PartitionsLostError(f"partitions lost: {[f'{tp.topic}[{tp.partition}]' for tp in partitions]}")
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._finish_inflight(gone)  # the other partitions' events in it still get their results
        for batch in self.batcher.drain():
            for p in batch:
                if (p.item.topic, p.item.partition) not in gone:
                    self.batcher.add(p.item, p.tokens, p.arrived)
        self.checkpoint.forget(partitions)
        self.store.drop(tp.partition for tp in partitions)
        self._assigned -= gone
        log.warning("partitions lost", extra={"partitions": sorted(f"{t}[{p}]" for t, p in gone)})

    def _restore_consumer(self, overrides: dict[str, Any]) -> Consumer:
        conf = {
            **kafka.consumer_config(self.s),
            "group.id": f"{self.s.group_id}.restore",  # assign() only: never joins, never commits
            "fetch.wait.max.ms": 20,  # reaching the partition's end fast matters more than batching
            **overrides,
        }
        return Consumer(conf)

    def _on_stats(self, stats_json: str) -> None:
        self.metrics.observe_stats(orjson.loads(stats_json), self.s.input_topic)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err
        else:
            log.warning("kafka error", extra={"error": str(err)})
