"""StateStore against the embedded broker: changelog out, restore back, exactly what survives."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.brokers import Broker
from tests.unit.test_state_store import T0, state
from worker.state import StateStore, produce_changelog

pytestmark = pytest.mark.integration


def make_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(10)


def factory(broker: Broker, group: str) -> Any:
    def make(overrides: dict[str, Any]) -> Consumer:
        return Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, **dict(broker.consumer_overrides), **overrides})

    return make


def test_changelog_round_trip_keeps_only_committed_state(embedded: Broker, prefix: str) -> None:
    topic = f"{prefix}.state"
    make_topic(embedded.bootstrap, topic, 2)
    producer = Producer({"bootstrap.servers": embedded.bootstrap, "enable.idempotence": True, "linger.ms": 5})

    writer = StateStore(topic)
    for offset, stream in enumerate(["a", "b", "c", "a", "d"]):  # input partition 1
        writer.put(state(stream, 1, offset))
        produce_changelog(producer, topic, writer.changelog_records())  # one checkpoint per event
    writer.put(state("x", 0, 3))  # input partition 0: must not appear in partition 1
    writer.put(state("b", 1, 9))  # past the committed offset (7): b falls back to offset 1
    writer.put(state("e", 1, 8))  # only past the committed offset
    produce_changelog(producer, topic, writer.changelog_records())
    # c goes idle and is evicted: its tombstone follows its records
    assert sorted(writer.evict_idle(T0 + timedelta(days=1), ttl_s=3600)) == [(0, "x"), (1, "a"), (1, "b"), (1, "c"), (1, "d"), (1, "e")]
    tombstones = writer.changelog_records()
    produce_changelog(producer, topic, [r for r in tombstones if r[1] == "c"])
    assert producer.flush(10) == 0

    reader = StateStore(topic)
    stats = reader.restore(
        factory(embedded, f"{prefix}.restore"), 1, committed_offset=7, timeout_s=30,
    )
    assert {k: s.input_offset for k, s in reader.streams(1).items()} == {"a": 3, "b": 1, "d": 4}
    assert stats.skipped_ahead == 2 and stats.tombstones == 1
    assert reader.partitions() == [1]

    other = reader.restore(factory(embedded, f"{prefix}.restore"), 0, committed_offset=7, timeout_s=30)
    assert list(reader.streams(0)) == ["x"] and other.restored == 1


def test_restore_reads_a_large_partition_to_its_end(embedded: Broker, prefix: str) -> None:
    """Tansu's high watermarks are wrong (docs/OPERATIONS.md); the EOF-based restore must still see all."""
    topic = f"{prefix}.state"
    make_topic(embedded.bootstrap, topic, 1)
    producer = Producer({"bootstrap.servers": embedded.bootstrap, "linger.ms": 20})
    n = 20_000
    writer = StateStore(topic)
    for i in range(n):
        writer.put(state(f"s{i}", 0, i, window=1))
    produce_changelog(producer, topic, writer.changelog_records())
    assert producer.flush(30) == 0
    reader = StateStore(topic)
    stats = reader.restore(factory(embedded, f"{prefix}.restore"), 0, committed_offset=n, timeout_s=60)
    assert stats.records_read == n and stats.restored == n and len(reader) == n
