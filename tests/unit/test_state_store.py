"""StateStore logic without a broker: dirty tracking, trimming, eviction, restore rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError

from schemas import labels as L
from schemas.state import MAX_WINDOW, StreamState
from worker.state import StateRestoreError, StateStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(stream: str, partition: int = 0, offset: int = 0, window: int = 2, ts: datetime = T0) -> StreamState:
    return StreamState(
        stream_id=stream,
        input_partition=partition,
        input_offset=offset,
        last_ts=ts,
        events_seen=offset + 1,
        mean={n: 0.1 for n in L.STATE_VECTOR},
        variance={n: 0.01 for n in L.STATE_VECTOR},
        window=[[float(i)] * len(L.STATE_VECTOR) for i in range(window)],
    )


class FakeMsg:
    def __init__(self, offset: int, key: bytes | None = None, value: bytes | None = None, eof: bool = False) -> None:
        self._offset, self._key, self._value, self._eof = offset, key, value, eof

    def error(self) -> Any:
        return FakeErr() if self._eof else None

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value


class FakeErr:
    def code(self) -> int:
        return KafkaError._PARTITION_EOF


class FakeConsumer:
    """Serves a log in slices of 3 records, then the partition-EOF event."""

    def __init__(self, log: list[tuple[bytes, bytes | None]]) -> None:
        self.msgs = [FakeMsg(i, k, v) for i, (k, v) in enumerate(log)] + [FakeMsg(len(log), eof=True)]
        self.overrides: dict[str, Any] = {}
        self.assigned: list[Any] = []
        self.closed = False

    def assign(self, tps: list[Any]) -> None:
        self.assigned = tps

    def consume(self, n: int, timeout: float) -> list[FakeMsg]:
        out, self.msgs = self.msgs[:3], self.msgs[3:]
        return out

    def close(self) -> None:
        self.closed = True


def factory_for(log: list[tuple[bytes, bytes | None]]) -> tuple[FakeConsumer, Any]:
    consumer = FakeConsumer(log)

    def factory(overrides: dict[str, Any]) -> FakeConsumer:
        consumer.overrides = overrides
        return consumer

    return consumer, factory


def rec(s: StreamState) -> tuple[bytes, bytes]:
    return s.stream_id.encode(), s.model_dump_json().encode()


def test_put_marks_dirty_and_changelog_drains_per_input_partition() -> None:
    store = StateStore("st")
    store.put(state("a", 0, 5))
    store.put(state("b", 2, 7))
    store.put(state("a", 0, 6))  # later put of the same stream replaces the earlier
    records = store.changelog_records()
    assert sorted((p, k) for p, k, _ in records) == [(0, "a"), (2, "b")]
    by_key = {k: StreamState.model_validate_json(v) for _, k, v in records}
    assert by_key["a"].input_offset == 6
    assert store.changelog_records() == []
    assert store.get(0, "a").input_offset == 6 and store.get(2, "b") is not None and len(store) == 2


def test_window_is_trimmed_to_the_latest_rows() -> None:
    store = StateStore("st", max_window=4)
    kept = store.put(state("a", window=10))
    assert [r[0] for r in kept.window] == [6.0, 7.0, 8.0, 9.0]
    with pytest.raises(ValueError):
        StateStore("st", max_window=MAX_WINDOW + 1)


def test_evict_idle_queues_tombstones() -> None:
    store = StateStore("st")
    store.put(state("old", 1, ts=T0))
    store.put(state("new", 1, ts=T0 + timedelta(hours=2)))
    store.changelog_records()
    evicted = store.evict_idle(T0 + timedelta(hours=2, minutes=1), ttl_s=3600)
    assert evicted == [(1, "old")]
    assert store.get(1, "old") is None and store.get(1, "new") is not None
    assert store.changelog_records() == [(1, "old", None)]


def test_drop_forgets_partitions_and_their_unflushed_changes() -> None:
    store = StateStore("st")
    store.put(state("a", 0))
    store.put(state("b", 1))
    store.drop([0])
    assert store.partitions() == [1]
    assert [(p, k) for p, k, _ in store.changelog_records()] == [(1, "b")]


def test_restore_keeps_latest_record_below_committed_offset_and_applies_tombstones() -> None:
    log = [
        rec(state("a", 3, 10)),
        rec(state("b", 3, 11)),
        rec(state("a", 3, 20)),  # kept for a: latest below 25
        rec(state("c", 3, 12)),
        (b"c", None),  # c deleted
        rec(state("b", 3, 30)),  # past the committed offset: ignored, b falls back to offset 11
        rec(state("d", 3, 26)),  # only past the committed offset: d restores without state
        rec(state("e", 3, 24)),
        (b"e", None),
        rec(state("e", 3, 24)),  # re-created after its tombstone
    ]
    consumer, factory = factory_for(log)
    store = StateStore("st")
    store.put(state("stale", 3, 1))  # memory for the partition is replaced
    stats = store.restore(factory, 3, committed_offset=25)
    assert consumer.overrides["enable.partition.eof"] is True and consumer.closed
    assert consumer.assigned[0].topic == "st" and consumer.assigned[0].partition == 3
    assert {k: s.input_offset for k, s in store.streams(3).items()} == {"a": 20, "b": 11, "e": 24}
    assert stats.records_read == len(log) and stats.restored == 3
    assert stats.skipped_ahead == 2 and stats.tombstones == 2
    assert store.changelog_records() == []  # restored state is not dirty


def test_restore_with_nothing_committed_restores_nothing() -> None:
    _, factory = factory_for([rec(state("a", 0, 0))])
    store = StateStore("st")
    assert store.restore(factory, 0, committed_offset=None).restored == 0
    assert store.streams(0) == {}


def test_restore_skips_and_reports_records_that_cannot_be_ours() -> None:
    """One bad write to the state topic must not stop every assignment of its partition:
    records of another partition, under another key, not JSON, or not a valid state are
    skipped and counted; the good ones are restored."""
    good = rec(state("ok", 0, 1))
    other_partition = rec(state("a", partition=1, offset=0))
    wrong_key = (b"not-b", rec(state("b", 0, 2))[1])
    not_json = (b"c", b"\xff{not json")
    invalid = (b"d", orjson.dumps({"input_offset": 3, "stream_id": "d"}))
    _, factory = factory_for([good, other_partition, wrong_key, not_json, invalid])
    store = StateStore("st")
    stats = store.restore(factory, 0, committed_offset=5)
    assert set(store.streams(0)) == {"ok"} and stats.restored == 1
    assert stats.malformed == 4 and stats.first_malformed


def test_the_stream_cap_evicts_the_least_recently_updated_with_a_tombstone() -> None:
    told: list[tuple[str, int]] = []
    store = StateStore("st", max_streams=3, on_evict=lambda reason, n: told.append((reason, n)))
    for i, sid in enumerate(["a", "b", "c"]):
        store.put(state(sid, 0, i))
    store.changelog_records()
    store.put(state("a", 0, 3))  # a is now the most recent; b the least
    store.put(state("d", 1, 0))
    assert len(store) == 3 and store.get(0, "b") is None and store.get(0, "a") is not None
    assert (0, "b", None) in store.changelog_records()
    assert told == [("cap", 1)]
    store.drop([0])
    assert len(store) == 1  # only d of partition 1


def test_restore_raises_on_a_broker_error() -> None:
    class Broken(FakeConsumer):
        def consume(self, n: int, timeout: float) -> list[Any]:
            class Err:
                def code(self) -> int:
                    return KafkaError.UNKNOWN_TOPIC_OR_PART

                def __str__(self) -> str:
                    return "unknown topic"

            class M(FakeMsg):
                def error(self) -> Any:
                    return Err()

            return [M(0)]

    consumer = Broken([])
    with pytest.raises(StateRestoreError, match="unknown topic"):
        StateStore("st").restore(lambda _: consumer, 0, committed_offset=1)
    assert consumer.closed


def test_restore_times_out_instead_of_hanging() -> None:
    class Silent(FakeConsumer):
        def consume(self, n: int, timeout: float) -> list[Any]:
            return []

    with pytest.raises(StateRestoreError, match="not read to its end"):
        StateStore("st").restore(lambda _: Silent([]), 0, committed_offset=1, timeout_s=0.05)
