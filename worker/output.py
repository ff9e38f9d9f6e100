"""Everything the worker writes goes through one `Output`: results, dead letters, changelog.

It owns the producer side of the loop: each record joins the checkpoint's transaction
(exactly-once) before it is produced; a full producer queue pauses the consumer's
partitions until deliveries make room (backpressure: memory stays bounded and nothing is
dropped); a record handed over marks its source offset done for the checkpoint; a dead
letter carries the original key, bytes and headers plus headers saying why and whence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from schemas.dead_letter import DeadLetter
from worker import __version__, kafka, logs
from worker.checkpoint import Checkpoint
from worker.config import Settings
from worker.decode import Rejection
from worker.metrics import Metrics
from worker.state import ChangelogRecord

log = logs.get("redheart.output")


class FatalKafkaError(RuntimeError):
    """librdkafka reported a fatal error; the client instance is unusable."""


@dataclass(frozen=True, slots=True)
class Source:
    """The input record an outcome answers: where it was read, and its bytes for the DLQ."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None

    @classmethod
    def of(cls, msg: Message) -> Source:
        return cls(msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), msg.headers())


class Output:
    def __init__(
        self,
        settings: Settings,
        producer: Producer,
        consumer: Consumer,
        checkpoint: Checkpoint,
        metrics: Metrics,
        fatal: Callable[[], KafkaError | None],
        waiting: Callable[[], None],
    ) -> None:
        """`fatal()`: the fatal librdkafka error seen so far, if any; `waiting()`: called
        while blocked on a full producer queue (waiting on the broker is not a stalled loop)."""
        self.settings = settings
        self.producer = producer
        self.consumer = consumer
        self.checkpoint = checkpoint
        self.metrics = metrics
        self._fatal = fatal
        self._waiting = waiting
        self._paused: list[TopicPartition] = []  # partitions paused while the producer queue is full

    def result(self, source: Source, stream_id: str, value: bytes, total_ms: float) -> None:
        self._produce(self.settings.results_topic, stream_id.encode("utf-8"), value)
        self.checkpoint.done(source.topic, source.partition, source.offset)
        self.metrics.end_to_end.observe(total_ms / 1000.0)  # (`produced` is counted per batch by the caller)

    def dead_letter(self, source: Source, why: Rejection) -> None:
        """Original key, bytes and headers to the DLQ, plus headers saying why and whence."""
        letter = DeadLetter(
            error_class=why.error_class,
            reason=why.reason,
            source_topic=source.topic,
            source_partition=source.partition,
            source_offset=source.offset,
            worker_version=__version__,
        )
        self._produce(self.settings.dlq_topic, source.key, source.value, list(source.headers or []) + letter.headers())
        self.checkpoint.done(source.topic, source.partition, source.offset)
        self.metrics.dead_letters.labels(reason=why.error_class).inc()
        log.debug("dead letter", extra={"class": why.error_class, "reason": why.reason, "offset": source.offset})

    def changelog(self, records: list[ChangelogRecord]) -> int:
        """Stream states (or tombstones) to the co-partitioned state topic (checkpoint hook)."""
        for partition, key, value in records:
            self._produce(self.settings.state_topic, key.encode("utf-8"), value, partition=partition)
        return len(records)

    def _produce(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list | None = None, partition: int = -1
    ) -> None:
        self.checkpoint.before_produce()
        try:
            # (delivery reports reach the checkpoint through the producer's own callback)
            kafka.produce(self.producer, topic, value, key, headers=headers, partition=partition,
                          on_full=self._queue_full)
        finally:
            if self._paused:
                self.consumer.resume(self._paused)
                self._paused = []
                log.info("backpressure: partitions resumed", extra={"queued": len(self.producer)})

    def _queue_full(self) -> None:
        """Before each wait on a full producer queue: pause fetching (once), fail on a fatal
        client error, and tell the loop it is waiting on the broker, not stalled."""
        if not self._paused:
            self._paused = self.consumer.assignment()
            self.consumer.pause(self._paused)
            self.metrics.backpressure.inc()
            log.info("backpressure: partitions paused", extra={"queued": len(self.producer)})
        err = self._fatal()
        if err is not None:
            raise FatalKafkaError(str(err))
        self._waiting()
