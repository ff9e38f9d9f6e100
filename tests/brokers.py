"""Brokers for tests: Tansu in-process (always) and apache/kafka via testcontainers (with Docker)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from worker.devbroker import DevBroker


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    kind: str  # "embedded" | "kafka"
    # Tansu shows aborted transactions to read_committed consumers and needs short
    # session timeouts to rebalance quickly (docs/OPERATIONS.md, "The embedded broker").
    consumer_overrides: tuple[tuple[str, object], ...] = ()


FAST_GROUP = (("session.timeout.ms", 2000), ("heartbeat.interval.ms", 300))


@contextlib.contextmanager
def embedded_broker() -> Iterator[Broker]:
    with DevBroker() as b:
        yield Broker(b.bootstrap, "embedded", FAST_GROUP)


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no usable daemon": skip
        return False


@contextlib.contextmanager
def docker_kafka() -> Iterator[Broker]:
    if not docker_available():
        pytest.skip("no Docker daemon: the testcontainers Kafka variant runs only where Docker exists")
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka:
        yield Broker(kafka.get_bootstrap_server(), "kafka", FAST_GROUP)
