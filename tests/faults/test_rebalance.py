"""Two workers; one is stopped and started again mid-stream, so partitions move both ways.
Figures into docs/RELIABILITY.md: 0 events without a result;
duplicates (only possible where aborted transactions are visible, or at-least-once after a
crash — a clean stop commits before giving partitions up) identical to their first copy."""

from __future__ import annotations

import random
import time
from pathlib import Path

import orjson
import pytest

from tests.brokers import Broker
from tests.faults.report import delivery_figures, record
from tests.faults.test_kill import TEXTS
from tests.integration.harness import WorkerProcess, event_id_of, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

EVENTS = 3000


def test_rebalance_both_ways(broker: Broker, prefix: str, tmp_path: Path) -> None:
    rng = random.Random(3)
    s = settings_for(broker, prefix)
    create_topics(s, partitions=4)
    env_a = worker_env(broker, s, free_port(), instance="a", REDHEART_MAX_WAIT_MS="10")
    env_b = worker_env(broker, s, free_port(), instance="b", REDHEART_MAX_WAIT_MS="10")
    events = [
        {"event_id": f"r{i:05d}", "stream_id": f"s{i % 40:02d}", "text": TEXTS[rng.randrange(len(TEXTS))]}
        for i in range(EVENTS)
    ]
    lines = [orjson.dumps(e) for e in events]
    chunks = [lines[i::4] for i in range(4)]
    a = WorkerProcess(env_a).start(tmp_path)
    b = WorkerProcess(env_b).start(tmp_path)
    moves = 0
    try:
        a.wait_ready()
        b.wait_ready()
        for chunk in chunks[:-1]:
            produce_lines(chunk, s)
            time.sleep(rng.uniform(0.2, 1.0))
            assert b.stop() == 0, b.log()  # b's partitions move to a
            b = WorkerProcess(env_b).start(tmp_path)  # and some come back
            b.wait_ready()
            moves += 2
        produce_lines(chunks[-1], s)
        got = read_topics(broker, {s.results_topic: EVENTS}, timeout_s=300, distinct=event_id_of)
        assert a.alive() and b.alive()
    finally:
        codes = [w.stop() for w in (a, b) if w.proc is not None]
    assert codes == [0, 0]
    missing, duplicates, identical = delivery_figures(got[s.results_topic], EVENTS)
    print(f"\n[faults] rebalance broker={broker.kind}: events={EVENTS} partition moves={moves} missing={missing} "
          f"duplicates={duplicates} identical={identical}")
    record({"scenario": "2 workers, one stopped/started x3 (rebalance both ways)", "broker": broker.kind,
            "delivery": "exactly-once", "events": EVENTS, "kills": f"{moves // 2} stop/start", "missing": missing,
            "duplicates": duplicates, "identical": "yes" if identical else "NO", "dead_letters": 0})
    assert missing == 0 and identical
    if broker.kind == "kafka":
        assert duplicates == 0
