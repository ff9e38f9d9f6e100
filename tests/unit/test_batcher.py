"""Micro-batching policy: count, token budget, wait time, arrival order."""

from __future__ import annotations

import pytest

from worker.batcher import MicroBatcher


def test_full_by_count() -> None:
    b: MicroBatcher[int] = MicroBatcher(max_events=3, max_tokens=10_000, max_wait_s=10)
    for i in range(7):
        b.add(i, 5, now=0.0)
    assert b.ready(now=0.0)
    assert [p.item for p in b.take()] == [0, 1, 2]
    assert [p.item for p in b.take()] == [3, 4, 5]
    assert not b.ready(now=0.0)  # one left, not old enough
    assert b.ready(now=10.0)
    assert [p.item for p in b.take()] == [6]
    assert len(b) == 0 and b.tokens == 0


def test_token_budget_splits_and_oversized_goes_alone() -> None:
    b: MicroBatcher[str] = MicroBatcher(max_events=100, max_tokens=100, max_wait_s=10)
    b.add("a", 60, 0.0)
    b.add("b", 60, 0.0)
    b.add("huge", 500, 0.0)
    b.add("c", 10, 0.0)
    assert b.ready(0.0)
    assert [p.item for p in b.take()] == ["a"]
    assert [p.item for p in b.take()] == ["b"]
    assert [p.item for p in b.take()] == ["huge"]
    assert [p.item for p in b.take()] == ["c"]


def test_wait_time_and_time_to_ready() -> None:
    b: MicroBatcher[int] = MicroBatcher(max_events=10, max_tokens=1000, max_wait_s=0.02)
    assert b.time_to_ready(0.0) is None and not b.ready(0.0)
    b.add(1, 1, now=1.000)
    b.add(2, 1, now=1.010)
    assert not b.ready(1.015)
    assert b.time_to_ready(1.015) == pytest.approx(0.005)
    assert b.ready(1.020)
    assert [p.item for p in b.drain()[0]] == [1, 2]


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(max_events=0, max_tokens=1, max_wait_s=0)
