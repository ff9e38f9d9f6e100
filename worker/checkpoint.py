"""When and in what order work becomes durable (at-least-once for now).

`Checkpoint.commit()` does, in order:
  1. flush the producer: every result and dead letter handed to it is acknowledged
     by the broker (or the worker stops: a failed delivery is never committed past);
  2. compute, per partition, the first offset that is not yet done — the lowest
     offset still waiting in the batcher, or one past the last done offset;
  3. commit those offsets synchronously.
So a crash at any point re-delivers at most the uncommitted tail; nothing is lost.

Offsets are tracked per partition in consumption order. An offset is "done" once its
result or dead letter has been handed to the producer; done-ness can arrive out of
order (a dead letter overtakes an event still waiting in the batcher), which is why
the committable offset is the head of the per-partition queue, not the last done.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition


class OffsetOrderError(RuntimeError):
    """An offset went backwards within a partition: a bug, never a warning."""


class DeliveryFailedError(RuntimeError):
    """The broker did not acknowledge a produced record; committing past it would lose it."""


TP = tuple[str, int]


@dataclass
class _PartitionOffsets:
    queue: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    next_commit: int | None = None

    def track(self, offset: int) -> None:
        if self.queue and offset <= self.queue[-1]:
            raise OffsetOrderError(f"offset {offset} tracked after {self.queue[-1]}")
        if not self.queue and self.next_commit is not None and offset < self.next_commit:
            raise OffsetOrderError(f"offset {offset} tracked after {self.next_commit - 1} was done")
        self.queue.append(offset)

    def mark_done(self, offset: int) -> None:
        self.done.add(offset)
        while self.queue and self.queue[0] in self.done:
            head = self.queue.popleft()
            self.done.discard(head)
            self.next_commit = head + 1


@dataclass
class Checkpoint:
    consumer: Consumer
    producer: Producer
    interval_s: float
    _parts: dict[TP, _PartitionOffsets] = field(default_factory=dict)
    _committed: dict[TP, int] = field(default_factory=dict)
    _failures: list[str] = field(default_factory=list)
    _last_commit: float = field(default_factory=time.monotonic)

    # -- tracking -------------------------------------------------------------------
    def track(self, msg: Message) -> None:
        self._parts.setdefault((msg.topic(), msg.partition()), _PartitionOffsets()).track(msg.offset())

    def done(self, topic: str, partition: int, offset: int) -> None:
        part = self._parts.get((topic, partition))
        if part is not None:  # None: the partition was revoked meanwhile
            part.mark_done(offset)

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        """Producer delivery callback: remember failures; commit() refuses to pass them."""
        if err is not None:
            self._failures.append(f"{msg.topic()}[{msg.partition()}]: {err}")

    def forget(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._parts.pop((tp.topic, tp.partition), None)
            self._committed.pop((tp.topic, tp.partition), None)

    # -- committing -----------------------------------------------------------------
    def due(self, now: float) -> bool:
        return now - self._last_commit >= self.interval_s

    def commit(self, timeout_s: float = 30.0, only: list[TopicPartition] | None = None) -> int:
        """Flush, then commit what is done. Returns the number of partitions committed."""
        self._last_commit = time.monotonic()
        # 1. every handed-over record acknowledged
        remaining = self.producer.flush(timeout_s)
        if remaining:
            raise DeliveryFailedError(f"{remaining} records still unacknowledged after {timeout_s}s")
        if self._failures:
            raise DeliveryFailedError("delivery failed: " + "; ".join(self._failures[:5]))
        # 2. first not-done offset per partition
        wanted = {(tp.topic, tp.partition) for tp in only} if only is not None else None
        offsets = []
        for key, part in self._parts.items():
            if wanted is not None and key not in wanted:
                continue
            nxt = part.next_commit
            if nxt is not None and self._committed.get(key) != nxt:
                offsets.append(TopicPartition(key[0], key[1], nxt))
        # 3. commit synchronously
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            for tp in offsets:
                self._committed[(tp.topic, tp.partition)] = tp.offset
        return len(offsets)
