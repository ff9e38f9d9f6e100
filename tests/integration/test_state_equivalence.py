"""Per-stream temporal state survives crashes and rebalances.

30 streams x 40 events. Run A: one worker, uninterrupted. Run B: the same events, the
worker SIGKILLed and restarted twice mid-way, and once rebalanced with a second worker
process. Every result's `temporal` block in B (duplicates included, on a broker that
shows aborted transactions) must equal A's for the same event, and every stream's final
Kalman state (last result and last changelog record) must equal A's, to float tolerance.
"""

from __future__ import annotations

import random
import signal
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
import pytest

from schemas import labels as L
from schemas.result import ResultEvent
from schemas.state import StreamState
from tests.brokers import Broker
from tests.integration.harness import WorkerProcess, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

STREAMS, PER_STREAM = 30, 40
TEXTS = [
    "I love spending time with my family", "오늘 너무 화가 나서 잠을 못 잤어요", "I'm afraid of losing my job",
    "그때 그렇게 말하지 말았어야 했어요", "What a pleasant surprise this morning", "친구가 떠나서 너무 슬퍼요",
    "That behaviour was disgusting", "할머니의 따뜻한 정이 그리워요", "If only I had listened to her",
    "We won the game and everyone cheered",
]
TOL = dict(rtol=1e-4, atol=1e-4)


def make_events() -> list[dict]:
    rng = random.Random(11)
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    out = []
    for k in range(PER_STREAM):
        for s in range(STREAMS):
            ts = base + timedelta(minutes=k * 5 + rng.uniform(0, 4), seconds=s)
            out.append({"event_id": f"s{s:02d}-{k:02d}", "stream_id": f"stream-{s:02d}",
                        "text": TEXTS[rng.randrange(len(TEXTS))], "ts": ts.isoformat()})
    return out


def vec(mapping: dict[str, float]) -> np.ndarray:
    return np.array([mapping[n] for n in L.STATE_VECTOR])


def assert_same_temporal(a: ResultEvent, b: ResultEvent) -> None:
    ta, tb = a.temporal, b.temporal
    assert ta is not None and tb is not None, (a.event_id, ta, tb)
    assert ta.events_seen == tb.events_seen, (a.event_id, ta.events_seen, tb.events_seen)
    np.testing.assert_allclose(vec(tb.state), vec(ta.state), **TOL, err_msg=a.event_id)
    np.testing.assert_allclose(vec(tb.variance), vec(ta.variance), **TOL, err_msg=a.event_id)
    np.testing.assert_allclose(vec(tb.innovation), vec(ta.innovation), **TOL, err_msg=a.event_id)
    np.testing.assert_allclose(tb.surprise, ta.surprise, **TOL, err_msg=a.event_id)
    assert (ta.dsp is None) == (tb.dsp is None)
    if ta.dsp is not None and tb.dsp is not None:
        np.testing.assert_allclose(tb.dsp.frequency, ta.dsp.frequency, **TOL)
    assert a.integrated.causal_clarity == b.integrated.causal_clarity == "insufficient_history"


def final_states(broker: Broker, topic: str, got: list) -> dict[str, StreamState]:
    last: dict[str, StreamState] = {}
    for m in got:
        if m.value() is not None:
            st = StreamState.model_validate_json(m.value())
            last[st.stream_id] = st
    return last


def run(broker: Broker, prefix: str, tmp: Path, events: list[dict], chaos: bool) -> tuple[dict, dict]:
    s = settings_for(broker, prefix)
    create_topics(s, partitions=3)
    env = worker_env(broker, s, free_port(), REDHEART_MAX_WAIT_MS="10")
    lines = [orjson.dumps(e) for e in events]
    workers = [WorkerProcess(env).start(tmp)]
    try:
        workers[0].wait_ready()
        if not chaos:
            produce_lines(lines, s)
        else:
            rng = random.Random(5)
            thirds = [lines[: len(lines) // 3], lines[len(lines) // 3 : 2 * len(lines) // 3], lines[2 * len(lines) // 3 :]]
            for part in thirds[:2]:  # two SIGKILLs mid-way
                produce_lines(part, s)
                time.sleep(rng.uniform(0.1, 0.6))  # mid-work: results, state and offsets in flight
                workers[0].proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
                workers[0].proc.wait()  # type: ignore[union-attr]
                workers[0] = WorkerProcess(env).start(tmp)
                workers[0].wait_ready()
            # a second process joins (rebalance), takes part of the last third, then leaves again
            env2 = {**env, "REDHEART_HTTP_PORT": str(free_port()), "REDHEART_INSTANCE_ID": "w2"}
            workers.append(WorkerProcess(env2).start(tmp))
            workers[1].wait_ready()
            produce_lines(thirds[2][: len(thirds[2]) // 2], s)
            time.sleep(1.0)
            assert workers[1].stop() == 0, workers[1].log()
            produce_lines(thirds[2][len(thirds[2]) // 2 :], s)
        got = read_topics(broker, {s.results_topic: len(events)}, timeout_s=300)
        states = read_topics(broker, {s.state_topic: STREAMS}, timeout_s=60)
    finally:
        for w in workers:
            if w.alive():
                assert w.stop() == 0, w.log()
    results: dict[str, list[ResultEvent]] = defaultdict(list)
    for m in got[s.results_topic]:
        r = ResultEvent.model_validate_json(m.value())
        results[r.event_id].append(r)
    return results, final_states(broker, s.state_topic, states[s.state_topic])


def test_state_survives_kills_and_rebalances(embedded: Broker, prefix: str, tmp_path: Path) -> None:
    events = make_events()
    a, a_states = run(embedded, prefix + "a", tmp_path, events, chaos=False)
    b, b_states = run(embedded, prefix + "b", tmp_path, events, chaos=True)
    ids = [e["event_id"] for e in events]
    assert set(a) == set(ids), f"run A missing {len(set(ids) - set(a))} results"
    assert set(b) == set(ids), f"run B missing {len(set(ids) - set(b))} results"
    assert all(len(v) == 1 for v in a.values())
    duplicates = sum(len(v) - 1 for v in b.values())
    for eid in ids:
        for copy in b[eid]:
            assert_same_temporal(a[eid][0], copy)
    # each stream's events were applied in order: events_seen counts 1..40
    for s in range(STREAMS):
        assert [a[f"s{s:02d}-{k:02d}"][0].temporal.events_seen for k in range(PER_STREAM)] == list(range(1, PER_STREAM + 1))
    # final Kalman state per stream, from the changelog
    assert set(a_states) == set(b_states) == {f"stream-{s:02d}" for s in range(STREAMS)}
    for sid, st in a_states.items():
        assert st.events_seen == b_states[sid].events_seen == PER_STREAM
        np.testing.assert_allclose(vec(b_states[sid].mean), vec(st.mean), **TOL)
        np.testing.assert_allclose(vec(b_states[sid].variance), vec(st.variance), **TOL)
        np.testing.assert_allclose(np.array(b_states[sid].window), np.array(st.window), **TOL)
    print(f"\n[state] equivalence: {len(ids)} events, {STREAMS} streams; run B duplicates={duplicates}")
