"""A full producer queue (slow or unreachable broker on the output side): the worker pauses
its partitions instead of growing memory, then resumes and loses nothing. The queue is made
tiny so that it fills on any broker."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.brokers import Broker
from tests.faults.report import delivery_figures, record
from tests.faults.test_hostile import rss_mb
from tests.faults.test_kill import TEXTS
from tests.integration.harness import WorkerProcess, event_id_of, parse_metrics, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

EVENTS = 3000


@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_full_producer_queue_pauses(embedded: Broker, prefix: str, tmp_path: Path, delivery: str) -> None:
    s = settings_for(embedded, prefix)
    create_topics(s, partitions=3)
    env = worker_env(
        embedded, s, free_port(), REDHEART_DELIVERY=delivery, REDHEART_COMMIT_INTERVAL_MS="2000",
        REDHEART_PRODUCER_CONFIG='{"queue.buffering.max.messages": 16, "linger.ms": 50}',
    )
    worker = WorkerProcess(env).start(tmp_path)
    events = [{"event_id": f"p{i:05d}", "stream_id": f"s{i % 30}", "text": TEXTS[i % len(TEXTS)]} for i in range(EVENTS)]
    try:
        worker.wait_ready()
        base = rss_mb(worker.proc.pid)  # type: ignore[union-attr]
        produce_lines([orjson.dumps(e) for e in events], s)
        got = read_topics(embedded, {s.results_topic: EVENTS}, timeout_s=300, distinct=event_id_of)
        peak = rss_mb(worker.proc.pid)  # type: ignore[union-attr]
        metrics = parse_metrics(worker.get("/metrics")[1].decode())
    finally:
        assert worker.stop() == 0, worker.log()
    missing, duplicates, identical = delivery_figures(got[s.results_topic], EVENTS)
    pauses = metrics.get("redheart_backpressure_pauses_total", 0)
    print(f"\n[faults] backpressure {delivery}: pauses={pauses:.0f} missing={missing} duplicates={duplicates} "
          f"rss {base:.0f} -> {peak:.0f} MB")
    record({"scenario": "producer queue full (16 messages)", "broker": embedded.kind, "delivery": delivery,
            "events": EVENTS, "kills": 0, "missing": missing, "duplicates": duplicates,
            "identical": "yes" if identical else "NO", "dead_letters": 0,
            "notes": f"{pauses:.0f} pauses; worker RSS {base:.0f} → {peak:.0f} MB"})
    assert pauses > 0
    assert missing == 0 and duplicates == 0
    assert '"backpressure: partitions paused"' in worker.log()
