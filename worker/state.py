"""Per-partition stream state and its changelog on `redheart.state` (docs/CONTRACT.md).

Layout: the state topic is co-partitioned with the input topic. The state of a stream
read from input partition p lives in memory under p and its changelog records go to
state-topic partition p, key = stream_id (UTF-8), value = `StreamState` JSON (written from
the in-memory `StreamTrack`), which
carries `input_offset`, the offset of the last input event the state reflects. A null
value (tombstone) deletes the stream.

Lifecycle, as the worker drives it:
  - `put(state)` after an event is applied: the state is kept and marked dirty; its window
    is trimmed to the latest `max_window` rows (<= `schemas.state.MAX_WINDOW`);
  - `changelog_records()` at checkpoint time drains dirty states (and tombstones of
    evicted streams) as `(partition, key, value)` for the checkpoint to produce *before*
    it commits input offsets, so a committed offset never runs ahead of its state;
  - `restore(...)` when a partition is assigned: reads the state-topic partition from the
    beginning to its end and keeps, per stream, the latest record whose `input_offset` is
    below the committed input offset — records past it describe events that will be
    consumed again and are ignored (as Quix Streams does); tombstones delete;
  - `drop(partitions)` when partitions are revoked or lost;
  - `evict_idle(now, ttl_s)` removes streams whose last event (`last_ts`, event time) is
    older than the TTL and queues their tombstones;
  - at most `max_streams` streams are held: `put` (and `restore`) evict the least recently
    updated beyond it, with a tombstone, so memory is bounded whatever stream ids producers
    invent (the TTL alone is in event time, which producers control).

A record on the state topic that cannot be ours (not JSON, not a valid `StreamState`, a key
that is not its stream id, a stream of another input partition) is skipped and counted in
`RestoreStats.malformed`, never a crash: one bad write to the topic must not stop every
assignment of its partition. (Co-partitioning itself is checked at start-up from the topics'
partition counts.)

End of partition: the embedded broker reports wrong high watermarks (docs/OPERATIONS.md), so the
restore never asks for them. It reads until librdkafka's partition-EOF event, which comes
from the fetch itself.

Known limit (shared with every changelog design on compacted topics): if compaction has
already removed an older, committed record of a stream whose newest record is past the
committed offset, the stream restores without state (it starts fresh).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from pydantic import ValidationError

from pipeline.temporal.stream import StreamTrack
from schemas.state import MAX_WINDOW, StreamState
from worker import kafka

ChangelogRecord = tuple[int, str, bytes | None]


class StateRestoreError(RuntimeError):
    """The state partition could not be read to its end, or holds a record that cannot be ours."""


@dataclass(frozen=True)
class RestoreStats:
    partition: int
    records_read: int
    restored: int  # streams kept
    skipped_ahead: int  # records ignored because their input_offset >= committed offset
    tombstones: int
    seconds: float
    malformed: int = 0  # records skipped because they cannot be a state of this partition
    first_malformed: str | None = None  # why the first one was skipped (for the log line)


class StateStore:
    def __init__(
        self,
        state_topic: str,
        max_window: int = MAX_WINDOW,
        max_streams: int = 1_000_000,
        on_evict: Callable[[str, int], None] | None = None,
    ) -> None:
        """`on_evict(reason, count)`: told of evictions ("ttl" or "cap"), for metrics and logs."""
        if not 1 <= max_window <= MAX_WINDOW:
            raise ValueError(f"max_window must be in [1, {MAX_WINDOW}], got {max_window}")
        if max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        self.state_topic = state_topic
        self.max_window = max_window
        self.max_streams = max_streams
        self._on_evict = on_evict
        self._parts: dict[int, dict[str, StreamTrack]] = {}
        self._dirty: dict[tuple[int, str], StreamTrack | None] = {}  # None: tombstone
        self._lru: OrderedDict[tuple[int, str], None] = OrderedDict()  # least recently updated first

    # -- reading ------------------------------------------------------------------------
    def get(self, partition: int, stream_id: str) -> StreamTrack | None:
        return self._parts.get(partition, {}).get(stream_id)

    def partitions(self) -> list[int]:
        return sorted(self._parts)

    def streams(self, partition: int) -> dict[str, StreamTrack]:
        """The partition's states (a read-only view by convention: change them with `put`)."""
        return self._parts.get(partition, {})

    def __len__(self) -> int:
        return len(self._lru)

    # -- writing ------------------------------------------------------------------------
    def put(self, state: StreamTrack | StreamState) -> StreamTrack:
        """Keep `state` (window trimmed to `max_window`) under its input partition; mark it dirty.
        The store owns what it is given: a `StreamState` is taken in as its `StreamTrack`."""
        if isinstance(state, StreamState):
            state = StreamTrack.from_state(state)
        state.trimmed(self.max_window)
        part = state.input_partition
        self._parts.setdefault(part, {})[state.stream_id] = state
        self._dirty[(part, state.stream_id)] = state
        self._lru[(part, state.stream_id)] = None
        self._lru.move_to_end((part, state.stream_id))
        self._enforce_cap()
        return state

    def _enforce_cap(self) -> None:
        """Evict the least recently updated streams beyond `max_streams` (tombstoned)."""
        evicted = 0
        while len(self._lru) > self.max_streams:
            part, key = self._lru.popitem(last=False)[0]
            self._parts[part].pop(key, None)
            self._dirty[(part, key)] = None
            evicted += 1
        if evicted and self._on_evict is not None:
            self._on_evict("cap", evicted)

    def changelog_records(self) -> list[ChangelogRecord]:
        """Drain dirty states and tombstones as (state partition, key, value or None)."""
        records = [
            (part, key, None if state is None else state.to_json())
            for (part, key), state in self._dirty.items()
        ]
        self._dirty.clear()
        return records

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget revoked/lost partitions, unflushed changes included (the new owner restores)."""
        gone = set(partitions)
        for part in gone:
            self._parts.pop(part, None)
        self._dirty = {k: v for k, v in self._dirty.items() if k[0] not in gone}
        self._lru = OrderedDict((k, None) for k in self._lru if k[0] not in gone)

    def evict_idle(self, now: datetime, ttl_s: float) -> list[tuple[int, str]]:
        """Remove streams whose last event is more than `ttl_s` before `now`; their tombstones
        come out of the next `changelog_records()`. Returns the evicted (partition, key)."""
        evicted = []
        for part, streams in self._parts.items():
            for key in [k for k, s in streams.items() if (now - s.last_ts).total_seconds() > ttl_s]:
                del streams[key]
                self._dirty[(part, key)] = None
                self._lru.pop((part, key), None)
                evicted.append((part, key))
        if evicted and self._on_evict is not None:
            self._on_evict("ttl", len(evicted))
        return evicted

    # -- restoring ----------------------------------------------------------------------
    def restore(
        self,
        consumer_factory: Callable[[dict[str, Any]], Consumer],
        partition: int,
        committed_offset: int | None,
        *,
        timeout_s: float = 60.0,
        batch: int = 10_000,
    ) -> RestoreStats:
        """Rebuild `partition` from the state topic, replacing what memory held for it.

        `consumer_factory(overrides)` must return a consumer for the state topic's cluster
        with `overrides` merged over its configuration (the restore assigns the partition
        itself, never subscribes, never commits). `committed_offset`: the committed offset
        of input partition `partition` (None: nothing committed, so nothing is restored —
        every event will be consumed again).
        """
        started = time.monotonic()
        consumer = consumer_factory(
            {"enable.partition.eof": True, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
        )
        latest: dict[bytes, tuple[int, bytes]] = {}  # key -> (input_offset, value) of the kept record
        read = ahead = tombstones = 0
        malformed: list[str] = []
        limit = -1 if committed_offset is None else committed_offset
        try:
            consumer.assign([TopicPartition(self.state_topic, partition, OFFSET_BEGINNING)])
            done = False
            while not done:
                if time.monotonic() - started > timeout_s:
                    raise StateRestoreError(
                        f"{self.state_topic}[{partition}] not read to its end within {timeout_s}s ({read} records)"
                    )
                for msg in consumer.consume(batch, 0.2):
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            done = True
                            continue
                        raise StateRestoreError(f"reading {self.state_topic}[{partition}]: {err}")
                    key, value = msg.key(), msg.value()
                    read += 1
                    if value is None:
                        tombstones += 1
                        latest.pop(key, None)
                        continue
                    input_offset = _input_offset(value)
                    if input_offset is None:
                        malformed.append(f"offset {msg.offset()}: not a state record (no integer input_offset)")
                        continue
                    if input_offset >= limit:
                        ahead += 1
                        continue
                    latest[key] = (input_offset, value)
        finally:
            consumer.close()

        streams: dict[str, StreamTrack] = {}
        for key, (_, value) in latest.items():
            try:
                state = StreamState.model_validate_json(value)
            except ValidationError as exc:
                malformed.append(f"key {key[:64]!r}: invalid state ({exc.error_count()} errors)")
                continue
            if state.input_partition != partition or state.stream_id.encode() != key:
                malformed.append(
                    f"key {key[:64]!r} holds stream {state.stream_id[:64]!r} of input partition "
                    f"{state.input_partition}, not of partition {partition}"
                )
                continue
            streams[state.stream_id] = StreamTrack.from_state(state).trimmed(self.max_window)
        self._parts[partition] = streams
        self._dirty = {k: v for k, v in self._dirty.items() if k[0] != partition}
        self._lru = OrderedDict((k, None) for k in self._lru if k[0] != partition)
        for state in sorted(streams.values(), key=lambda st: st.last_ts):  # oldest first: evicted first
            self._lru[(partition, state.stream_id)] = None
        self._enforce_cap()
        return RestoreStats(
            partition, read, len(self._parts[partition]), ahead, tombstones, time.monotonic() - started,
            malformed=len(malformed), first_malformed=malformed[0] if malformed else None,
        )


def _input_offset(value: bytes) -> int | None:
    """The record's `input_offset`, or None when the value is not a state record at all."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    offset = obj.get("input_offset") if isinstance(obj, dict) else None
    return offset if isinstance(offset, int) and not isinstance(offset, bool) else None


def produce_changelog(producer: Producer, topic: str, records: list[ChangelogRecord], **kwargs: Any) -> None:
    """Hand changelog records to the producer (the caller flushes/commits as its checkpoint says)."""
    for part, key, value in records:
        kafka.produce(producer, topic, value, key.encode(), partition=part, **kwargs)
