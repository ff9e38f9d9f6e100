"""When and in what order work becomes durable: one object owns the commit order.

`Checkpoint.commit()` does, in order:
  1. produce the state changelog records of the streams changed since the last
     checkpoint (`changelog` hook; the state store owns what they are);
  2. compute, per partition, the first offset that is not yet done — the lowest
     offset still waiting in the batcher, or one past the last done offset;
  3. flush the producer: every record acknowledged, or the worker stops (a failed
     delivery is never committed past, in either mode);
  4. exactly-once: send those offsets to the open transaction and commit it — results,
     dead letters, changelog records and offsets become visible together or not at all;
     at-least-once: commit the offsets synchronously.
A crash at any point re-delivers at most the uncommitted tail; nothing is lost. In
exactly-once mode the uncommitted tail's records are aborted, so read_committed
consumers see each result once (on brokers that hide aborted records; docs/OPERATIONS.md, the embedded broker).

Offsets are tracked per partition in consumption order. An offset is "done" once its
result or dead letter has been handed to the producer; done-ness can arrive out of
order (a dead letter overtakes an event still waiting in the batcher), which is why
the committable offset is the head of the per-partition queue, not the last done.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
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
    exactly_once: bool
    interval_s: float
    commit_every: int = 0  # also commit after this many done records (0: time only)
    changelog: Callable[[], int] = lambda: 0  # produces changelog records, returns how many
    flush_timeout_s: float = 30.0
    _parts: dict[TP, _PartitionOffsets] = field(default_factory=dict)
    _committed: dict[TP, int] = field(default_factory=dict)
    _failures: list[str] = field(default_factory=list)
    _last_commit: float = field(default_factory=time.monotonic)
    _done_since: int = 0
    _in_txn: bool = False

    def __post_init__(self) -> None:
        if self.exactly_once:
            self.producer.init_transactions(self.flush_timeout_s)  # fences older zombies of this id

    # -- tracking -------------------------------------------------------------------
    def track(self, msg: Message) -> None:
        key = (msg.topic(), msg.partition())
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = _PartitionOffsets()
        part.track(msg.offset())

    def before_produce(self) -> None:
        """Exactly-once: every record belongs to the checkpoint's transaction."""
        if self.exactly_once and not self._in_txn:
            self.producer.begin_transaction()
            self._in_txn = True

    def done(self, topic: str, partition: int, offset: int) -> None:
        part = self._parts.get((topic, partition))
        if part is not None:  # None: the partition was revoked meanwhile
            part.mark_done(offset)
            self._done_since += 1

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
        if self.commit_every and self._done_since >= self.commit_every:
            return True
        return now - self._last_commit >= self.interval_s

    def _pending_offsets(self) -> list[TopicPartition]:
        out = []
        for key, part in self._parts.items():
            nxt = part.next_commit
            if nxt is not None and self._committed.get(key) != nxt:
                out.append(TopicPartition(key[0], key[1], nxt))
        return out

    def _all_acknowledged(self) -> None:
        """Flush the producer; every record handed to it must be acknowledged, or we stop."""
        remaining = self.producer.flush(self.flush_timeout_s)
        if remaining:
            raise DeliveryFailedError(f"{remaining} records unacknowledged after {self.flush_timeout_s}s")
        if self._failures:
            raise DeliveryFailedError("delivery failed: " + "; ".join(self._failures[:5]))

    def commit(self) -> int:
        """Make everything done so far durable. Returns the number of partitions committed."""
        self._last_commit = time.monotonic()
        self._done_since = 0
        # 1. state changelog, in the same transaction / before the offsets
        self.changelog()
        # 2. first not-done offset per partition
        offsets = self._pending_offsets()
        # 3. durable together
        if self.exactly_once:
            if offsets:
                self.before_produce()  # offsets alone still need a transaction
            if not self._in_txn:
                return 0
            # Every record acknowledged before the offsets join the transaction: a broker
            # that applies transactional offset commits early (Tansu does) must never see
            # offsets past results that are still in the producer's buffer, or lost.
            self._all_acknowledged()
            if offsets:
                self.producer.send_offsets_to_transaction(
                    offsets, self.consumer.consumer_group_metadata(), self.flush_timeout_s
                )
            self.producer.commit_transaction(self.flush_timeout_s)  # flushes; raises on failure
            self._in_txn = False
        else:
            self._all_acknowledged()
            if offsets:
                self.consumer.commit(offsets=offsets, asynchronous=False)
        for tp in offsets:
            self._committed[(tp.topic, tp.partition)] = tp.offset
        return len(offsets)
