"""Thin wrappers around confluent-kafka: every property the worker sets, in one place.

Defaults are merged under the user's `REDHEART_CONSUMER_CONFIG` / `REDHEART_PRODUCER_CONFIG`
so a reader sees the whole librdkafka configuration here, and the user can override any
of it (e.g. `session.timeout.ms` for a test broker, SASL/TLS for production).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from worker.config import Settings


class MissingTopicsError(RuntimeError):
    """A configured topic does not exist; the worker never creates them implicitly."""


def consumer_config(s: Settings) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "bootstrap.servers": s.bootstrap_servers,
        "group.id": s.group_id,
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": False,  # offsets commit only after results are acknowledged
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "allow.auto.create.topics": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": max(1_048_576, s.max_message_bytes),
        "statistics.interval.ms": s.statistics_interval_ms,
        # prefetch bound per partition: what a paused (backpressured) worker may still hold
        "queued.max.messages.kbytes": 32_768,
    }
    return {**defaults, **s.consumer_config, **s.kafka_secrets}


def producer_config(s: Settings) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "bootstrap.servers": s.bootstrap_servers,
        "enable.idempotence": True,  # no duplicates from producer retries
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.max.bytes": max(1_048_576, s.max_message_bytes + 65_536),
        # A crashed worker's open transaction holds back read_committed consumers until
        # it times out; checkpoints are sub-second, so 10 s bounds that stall.
        "transaction.timeout.ms": 10_000,
        # the producer queue is the other half of the memory bound: when it is full the
        # worker pauses its partitions until deliveries make room (worker/output.py)
        "queue.buffering.max.messages": 100_000,
        "queue.buffering.max.kbytes": 131_072,
        # delivery reports only for failures: the checkpoint needs to hear of those (a flush
        # tells it the rest were acknowledged), and a Python callback per record is not free
        "delivery.report.only.error": True,
    }
    # A record the broker cannot take fails after message.timeout.ms (the worker then stops:
    # a failed delivery is never committed past). Keep that wait below the consumer's
    # max.poll.interval.ms (300 s), so a worker paused by backpressure fails loudly before
    # the group would silently take its partitions. With transactions librdkafka bounds it
    # by transaction.timeout.ms already.
    if s.delivery == "at-least-once":
        defaults["message.timeout.ms"] = 120_000
    return {**defaults, **s.producer_config, **s.kafka_secrets}


def member_name(s: Settings) -> str:
    """Stable across restarts of the same member: the pod name in Kubernetes (host name)."""
    return s.instance_id or socket.gethostname()


def transactional_id(s: Settings) -> str:
    """One transactional producer per worker member: group + member name.

    The id must survive a restart: `init_transactions` under the same id fences the crashed
    predecessor and aborts its open transaction at once. Under a fresh id the orphaned
    transaction would hold back read_committed consumers until it times out (on real Kafka,
    `transaction.timeout.ms`; the embedded broker never times it out). Zombie fencing across
    rebalances comes from KIP-447 (the group metadata sent with the offsets). Two live
    workers must not share an id (the older is fenced and exits non-zero): run several
    workers on one host with distinct `REDHEART_INSTANCE_ID`s.
    """
    return f"{s.group_id}.{member_name(s)}"


def admin_config(s: Settings) -> dict[str, Any]:
    """Admin clients share the connection/security properties of the consumer."""
    keep = ("bootstrap.servers", "security.", "sasl.", "ssl.", "client.")
    merged = consumer_config(s)
    return {k: v for k, v in merged.items() if k.startswith(keep)}


_LIBRDKAFKA_LOG = logging.getLogger("librdkafka")


def make_consumer(s: Settings, **callbacks: Any) -> Consumer:
    # `logger`: librdkafka's own log lines go through logging, so they come out as JSON too
    return Consumer({**consumer_config(s), "logger": _LIBRDKAFKA_LOG, **callbacks})


def make_producer(s: Settings, **callbacks: Any) -> Producer:
    return Producer({**producer_config(s), "logger": _LIBRDKAFKA_LOG, **callbacks})


def make_restore_consumer(s: Settings, overrides: dict[str, Any]) -> Consumer:
    """The state restore's reader: assign() only, so it never joins the group or commits;
    reaching the partition's end fast matters more than batching."""
    return Consumer({
        **consumer_config(s),
        "group.id": f"{s.group_id}.restore",
        "fetch.wait.max.ms": 20,
        "logger": _LIBRDKAFKA_LOG,
        **overrides,
    })


def produce(
    producer: Producer,
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    *,
    headers: list[tuple[str, bytes]] | dict[str, Any] | None = None,
    partition: int = -1,
    on_delivery: Callable[..., None] | None = None,
    on_full: Callable[[], None] | None = None,
    poll_s: float = 0.05,
) -> None:
    """Hand one record to the producer, never dropping it: while the local queue is full
    (a slow or unreachable broker), serve delivery reports and retry. `on_full()` runs
    before each wait; the worker pauses its partitions there and a caller with a deadline
    raises from it. The one produce path of the worker, its state restore and its client."""
    kwargs: dict[str, Any] = {"value": value, "key": key, "partition": partition}
    if headers:
        kwargs["headers"] = headers
    if on_delivery is not None:
        kwargs["on_delivery"] = on_delivery
    while True:
        try:
            producer.produce(topic, **kwargs)
            return
        except BufferError:
            if on_full is not None:
                on_full()
            producer.poll(poll_s)


def existing_topics(admin: AdminClient, timeout: float = 10.0) -> dict[str, int]:
    """Topic -> partition count, from a full metadata listing.

    A full listing, never a per-topic metadata request: some brokers (Tansu among them)
    auto-create a topic that is asked for by name.
    """
    md = admin.list_topics(timeout=timeout)
    return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}


def worker_topics(s: Settings) -> list[str]:
    return [s.input_topic, s.results_topic, s.dlq_topic, s.state_topic]


def require_topics(s: Settings, topics: list[str], timeout: float = 10.0) -> dict[str, int]:
    admin = AdminClient(admin_config(s))
    try:
        have = existing_topics(admin, timeout)
    except KafkaException as exc:
        raise MissingTopicsError(f"cannot list topics on {s.bootstrap_servers}: {exc}") from exc
    missing = [t for t in topics if t not in have]
    if missing:
        raise MissingTopicsError(
            f"topics {missing} do not exist on {s.bootstrap_servers}; create them first "
            f"(e.g. `python -m worker topics`); the worker never auto-creates topics"
        )
    if s.input_topic in topics and s.state_topic in topics and have[s.state_topic] != have[s.input_topic]:
        raise MissingTopicsError(
            f"{s.state_topic} has {have[s.state_topic]} partitions but {s.input_topic} has "
            f"{have[s.input_topic]}: the state topic must be co-partitioned with the input topic"
        )
    return {t: have[t] for t in topics}


def create_topics(s: Settings, partitions: int = 3, timeout: float = 15.0) -> list[str]:
    """Create the four topics if absent (demo, tests, `python -m worker topics`)."""
    admin = AdminClient(admin_config(s))
    have = existing_topics(admin, timeout)
    wanted = [
        NewTopic(s.input_topic, partitions, 1),
        NewTopic(s.results_topic, partitions, 1),
        NewTopic(s.dlq_topic, partitions, 1),
        NewTopic(s.state_topic, partitions, 1, config={"cleanup.policy": "compact"}),
    ]
    new = [t for t in wanted if t.topic not in have]
    if not new:
        return []
    for topic, fut in admin.create_topics(new, operation_timeout=timeout).items():
        fut.result()
    return [t.topic for t in new]
