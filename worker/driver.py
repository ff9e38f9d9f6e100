"""The Kafka side of the worker: consume, decode, batch, hand batches to the engine, write
the outcomes, checkpoint; rebalances, draining, liveness.

    consume -> crash-marker -> decode (bad -> DLQ) -> engine.admit -> batcher
            -> engine.advance(batch) -> outcomes -> Output (results, dead letters)
            -> checkpoint (changelog, flush producer, commit offsets)

One thread owns the consumer, the batcher and the producer; the engine may run the model
on a second thread (see `worker.engine`). Crash-only is for infrastructure (broker, model,
state store): the process exits non-zero, Kubernetes restarts it and the uncommitted tail
is re-delivered. A record that kills the process outright (a native crash) is recognised
on restart by `worker.recovery`. A record's content never stops the loop: it is a dead
letter with the reason.

The caller checks that the topics exist (`kafka.require_topics`) before building a
`Driver`: `python -m worker run` does it first, before the slow model load.
"""

from __future__ import annotations

import signal
import time
from datetime import datetime, timezone
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from worker import __version__, kafka, logs
from worker.batcher import MicroBatcher, Pending
from worker.checkpoint import Checkpoint
from worker.config import Settings
from worker.decode import Rejection, decode
from worker.engine import Backend, Engine, Item, Outcome, Result, internal
from worker.health import HealthServer
from worker.metrics import Metrics
from worker.output import FatalKafkaError, Output, Source
from worker.recovery import CrashMarker, marker_path
from worker.state import StateRestoreError

log = logs.get("redheart.worker")
POLL_TIMEOUT_S = 0.1
INFLIGHT_POLL_S = 0.002  # how often the loop looks whether the in-flight forward is done


class PartitionsLostError(RuntimeError):
    """The group took partitions away without a revoke (session timeout): restart cleanly."""


class Driver:
    def __init__(self, settings: Settings, backend: Backend) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine = Engine(settings, backend, self.metrics)
        self.batcher: MicroBatcher[Item] = MicroBatcher(
            settings.max_batch_events, settings.max_batch_tokens, settings.max_wait_ms / 1000.0
        )
        self.marker = CrashMarker(
            marker_path(settings.recovery_dir, settings.group_id, kafka.member_name(settings)),
            poison_after=settings.poison_after_crashes,
        )
        self._last_eviction = time.monotonic()
        self._beat = time.monotonic()  # the consume loop's last sign of progress (liveness)
        self._restoring = False
        self._stop = False
        self._fatal: KafkaError | None = None
        self._assigned: set[tuple[str, int]] = set()
        self.http: HealthServer | None = None

    # -- lifecycle --------------------------------------------------------------------
    def request_stop(self, *_: Any) -> None:
        self._stop = True

    def ready(self) -> bool:
        return bool(self._assigned) and not self._stop

    def alive(self) -> bool:
        """False once the consume loop has made no progress for `liveness_timeout_s` (a hung
        forward, a decode that never ends): Kubernetes then restarts the worker. A state
        restore has its own deadline (`state_restore_timeout_s`) and counts as progress."""
        return self._restoring or time.monotonic() - self._beat < self.settings.liveness_timeout_s

    def status(self) -> dict[str, Any]:
        engine = self.engine.status()
        return {
            "version": __version__,
            "model": self.engine.model_info.model_dump(),
            "pipeline": engine["pipeline"],
            "assigned_partitions": sorted(f"{t}[{p}]" for t, p in self._assigned),
            "batcher": {"pending_events": len(self.batcher), "pending_tokens": self.batcher.tokens},
            "cache": engine["cache"],
            "helper_llm": engine["helper_llm"],
            "state": engine["state"],
            "liveness": {"seconds_since_progress": round(time.monotonic() - self._beat, 3), "alive": self.alive()},
            "recovered_from_crash": self.marker.crashed,
            "http": self.http.stats() if self.http is not None else None,
            "config": self.settings.redacted(),
        }

    def run(self) -> int:
        """Consume until SIGTERM/SIGINT; returns the process exit code (0 on a clean stop)."""
        s = self.settings
        exactly_once = s.delivery == "exactly-once"
        txn = {"transactional.id": kafka.transactional_id(s)} if exactly_once else {}
        # one delivery callback for every record (librdkafka calls it for failures only), set
        # on the producer rather than passed with each record
        producer = kafka.make_producer(s, error_cb=self._on_error, on_delivery=self._on_delivery, **txn)
        self.consumer = kafka.make_consumer(s, error_cb=self._on_error, stats_cb=self._on_stats)
        self.checkpoint = Checkpoint(
            self.consumer,
            producer,
            exactly_once=exactly_once,
            interval_s=s.commit_interval_ms / 1000.0,
            commit_every=s.commit_every,
            changelog=lambda: self.output.changelog(self.engine.states.changelog_records()),
        )
        self.output = Output(s, producer, self.consumer, self.checkpoint, self.metrics,
                             fatal=lambda: self._fatal, waiting=self._progress)
        self.marker.arm()
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.http = HealthServer(
            s.http_host, s.http_port, self.metrics.registry, self.status, self.ready, self.alive,
            timeout_s=s.http_timeout_s, max_connections=s.http_max_connections,
        )
        self.http.start()
        self.consumer.subscribe([s.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        log.info(
            "worker started",
            extra={"group_id": s.group_id, "http_port": self.http.port, "model": self.engine.model_info.model_dump(),
                   "recovering_from_crash": self.marker.crashed,
                   "native_crash": self.marker.native_crash.splitlines()[0][:200] if self.marker.native_crash else None},
        )
        try:
            self._loop()
            self._drain()
        finally:
            self.consumer.close()  # leaves the group; the revoke callback commits what is done
            producer.flush(s.shutdown_timeout_s)
            self.http.stop()
            self.engine.close()
        self.marker.clear()  # a clean stop: nothing is suspect at the next start
        log.info("worker stopped", extra={"reason": "signal"})
        return 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        self.checkpoint.on_delivery(err, msg)

    def _progress(self) -> None:
        self._beat = time.monotonic()

    def _loop(self) -> None:
        s = self.settings
        while not self._stop:
            self._beat = time.monotonic()
            if self._fatal is not None:
                raise FatalKafkaError(str(self._fatal))
            wait = self.batcher.time_to_ready(time.monotonic())
            room = max(1, s.max_batch_events - len(self.batcher))
            timeout = POLL_TIMEOUT_S if wait is None else min(POLL_TIMEOUT_S, wait)
            inflight = self.engine.inflight_done()
            if inflight is not None:
                timeout = min(timeout, INFLIGHT_POLL_S)
            msgs = self.consumer.consume(num_messages=room, timeout=timeout)
            if msgs:
                t0 = time.perf_counter()
                records = 0
                for msg in msgs:  # recorded before any is handled: a hard crash leaves them suspect
                    if msg.error() is None:
                        self.marker.consumed(msg.topic(), msg.partition(), msg.offset())
                        records += 1
                self.marker.flush()
                now_utc = datetime.now(tz=timezone.utc)  # the clock event times are checked against
                for msg in msgs:
                    self._accept(msg, now_utc)
                self.metrics.consumed.inc(records)
                self.metrics.stage_seconds.labels(stage="decode").observe(time.perf_counter() - t0)
            self.output.producer.poll(0)
            now = time.monotonic()
            while self.batcher.ready(now):
                self._write(self.engine.advance(self._take()))
                now = time.monotonic()
            if self.engine.inflight_done():
                self._write(self.engine.flush())
            if now - self._last_eviction >= s.state_eviction_interval_s:
                self._last_eviction = now
                self.engine.evict_idle()
            if self.checkpoint.due(now):
                self.checkpoint.commit()

    def _drain(self) -> None:
        """Finish what was consumed before stopping, then commit it — within the deadline.

        Past `shutdown_timeout_s` (less a margin for the commit and leaving the group) the
        remaining batches are dropped uncommitted: the next owner consumes them again.
        """
        deadline = time.monotonic() + 0.7 * self.settings.shutdown_timeout_s
        self._write(self.engine.flush())
        batches = self.batcher.drain()
        for n, batch in enumerate(batches):
            if time.monotonic() > deadline:
                left = sum(len(b) for b in batches[n:])
                log.warning("shutdown deadline reached", extra={"uncommitted_events": left})
                break
            self._write(self.engine.process(self._items(batch)))
        self.checkpoint.commit()

    # -- records in ---------------------------------------------------------------------
    def _accept(self, msg: Message, now: datetime | None = None) -> None:
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise FatalKafkaError(str(err))
            log.warning("consumer error", extra={"error": str(err)})
            return
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
            self.output.dead_letter(Source.of(msg), why)
            log.warning("poison record dead-lettered after a crash",
                        extra={"partition": msg.partition(), "offset": msg.offset(), "crashes": crashes})
            return
        if verdict == "alone":
            self._handle_alone(msg, crashes)
            return
        admitted = self._admit(msg, now)
        if isinstance(admitted, Rejection):
            self.output.dead_letter(Source.of(msg), admitted)
            return
        self.batcher.add(admitted, admitted.tokens, time.monotonic())

    def _admit(self, msg: Message, now: datetime | None = None) -> Item | Rejection:
        """The record as a batchable item, or why it is a dead letter. Never raises for the
        record's content: whatever escapes the precise checks is an `internal_error` dead
        letter (the processing-exception rule)."""
        try:
            s = self.settings
            _, ts_ms = msg.timestamp()
            event = decode(
                msg.value(), ts_ms, max_text_bytes=s.max_text_bytes, max_message_bytes=s.max_message_bytes,
                max_future_skew_s=s.max_future_skew_s, max_past_skew_s=s.max_past_skew_s, now=now,
            )
            if isinstance(event, Rejection):
                return event
            admitted = self.engine.admit(event)
            if isinstance(admitted, Rejection):
                return admitted
            parts, tokens, key = admitted
            return Item(event, msg.partition(), msg.offset(), ts_ms, parts, tokens, key, Source.of(msg))
        except Exception as exc:
            self.engine.log.internal("accepting a record", exc)
            return internal("accepting the record", exc)

    def _handle_alone(self, msg: Message, crashes: int) -> None:
        """A record that was in flight when the last process died: handled by itself, with
        the marker naming it, so that if it kills this process too the next one knows which."""
        self._write(self.engine.flush())
        for batch in self.batcher.drain():
            self._write(self.engine.process(self._items(batch)))
        self.marker.begin_alone(msg.topic(), msg.partition(), msg.offset(), crashes)
        admitted = self._admit(msg)
        if isinstance(admitted, Rejection):
            self.output.dead_letter(Source.of(msg), admitted)
        else:
            self._write(self.engine.process([admitted]))
        self.marker.end_alone()

    # -- batches out --------------------------------------------------------------------
    def _take(self) -> list[Item]:
        return self._items(self.batcher.take())

    def _items(self, batch: list[Pending[Item]]) -> list[Item]:
        if batch:
            self.metrics.batch_size.observe(len(batch))
            self.metrics.batch_tokens.observe(sum(p.tokens for p in batch))
        return [p.item for p in batch]

    def _write(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        t0 = time.perf_counter()
        produced = 0
        for o in outcomes:
            if isinstance(o, Result):
                self.output.result(o.item.source, o.item.event.stream_id, o.value, o.total_ms)
                produced += 1
            else:
                self.output.dead_letter(o.item.source, o.why)
        self.metrics.produced.inc(produced)
        self.metrics.stage_seconds.labels(stage="produce").observe(time.perf_counter() - t0)

    # -- rebalance callbacks (run inside consume) ------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Restore the partitions' stream state before processing them (not ready meanwhile)."""
        self._restoring = True
        try:
            self._restore(consumer, partitions)
        finally:
            self._restoring, self._beat = False, time.monotonic()
        self.metrics.streams_in_state.set(len(self.engine.states))
        self._assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.assigned.set(len(self._assigned))
        log.info("partitions assigned", extra={"partitions": [f"{tp.topic}[{tp.partition}]" for tp in partitions]})

    def _restore(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        s = self.settings
        committed = consumer.committed(
            [TopicPartition(tp.topic, tp.partition) for tp in partitions], timeout=s.state_restore_timeout_s
        )
        for tp in committed:
            if tp.error is not None:
                raise StateRestoreError(f"committed offset of {tp.topic}[{tp.partition}]: {tp.error}")
            stats = self.engine.states.restore(
                lambda overrides: kafka.make_restore_consumer(s, overrides),
                tp.partition,
                tp.offset if tp.offset >= 0 else None,
                timeout_s=s.state_restore_timeout_s,
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
        self._write(self.engine.flush())
        for batch in self.batcher.drain():
            self._write(self.engine.process(self._items(batch)))
        self.checkpoint.commit()
        self.checkpoint.forget(partitions)
        self.engine.states.drop(tp.partition for tp in partitions)
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
        self._write(self.engine.flush({p for _, p in gone}))  # the other partitions' events still get results
        for batch in self.batcher.drain():
            for p in batch:
                if (p.item.source.topic, p.item.partition) not in gone:
                    self.batcher.add(p.item, p.tokens, p.arrived)
        self.checkpoint.forget(partitions)
        self.engine.states.drop(tp.partition for tp in partitions)
        self._assigned -= gone
        log.warning("partitions lost", extra={"partitions": sorted(f"{t}[{p}]" for t, p in gone)})

    def _on_stats(self, stats_json: str) -> None:
        self.metrics.observe_stats(orjson.loads(stats_json), self.settings.input_topic)

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err
        else:
            log.warning("kafka error", extra={"error": str(err)})
