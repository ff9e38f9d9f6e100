"""Shared fixtures: the embedded broker (always) and the testcontainers Kafka (where Docker runs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.brokers import Broker, docker_kafka, embedded_broker


@pytest.fixture(scope="session")
def embedded() -> Iterator[Broker]:
    with embedded_broker() as b:
        yield b


@pytest.fixture(scope="session")
def docker_broker() -> Iterator[Broker]:
    with docker_kafka() as b:
        yield b


@pytest.fixture(params=["embedded", "testcontainers"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """The same test on the embedded broker and, where Docker exists, on real Kafka."""
    if request.param == "embedded":
        return request.getfixturevalue("embedded")
    return request.getfixturevalue("docker_broker")


@pytest.fixture
def prefix() -> str:
    """Topic/group prefix so tests sharing one broker never see each other's records."""
    return f"t{uuid.uuid4().hex[:8]}"
