"""The broker restarts under a running worker.

The embedded broker keeps nothing across a restart (memory storage): the new broker has no
topics, no group offsets, no transaction state. The worker cannot recover its work from
that, so the documented behaviour is to fail loudly: exit non-zero with a `worker crashed`
log line naming the cause, for Kubernetes to restart it (it then refuses to start until the
topics exist again). It must never keep running silently without processing.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.brokers import FAST_GROUP, Broker
from tests.faults.report import record
from tests.integration.harness import WorkerProcess, read_topics, settings_for, worker_env
from worker.devbroker import DevBroker, free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

DEADLINE_S = 120  # a bound on the wait, not a speed claim


def test_broker_restart_fails_loudly(prefix: str, tmp_path: Path) -> None:
    port = free_port()
    broker = DevBroker(port).start()
    b = Broker(broker.bootstrap, "embedded", FAST_GROUP)
    s = settings_for(b, prefix)
    create_topics(s, partitions=2)
    worker = WorkerProcess(worker_env(b, s, free_port())).start(tmp_path)
    try:
        worker.wait_ready()
        events = [{"event_id": f"b{i}", "stream_id": f"s{i % 5}", "text": "hello again"} for i in range(50)]
        produce_lines([orjson.dumps(e) for e in events], s)
        assert len(read_topics(b, {s.results_topic: 50}, timeout_s=60)[s.results_topic]) == 50
        broker.stop()
        time.sleep(1.0)
        broker = DevBroker(port).start()  # same address, empty
        deadline = time.monotonic() + DEADLINE_S
        while worker.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        alive = worker.alive()
        code = None if alive else worker.proc.returncode  # type: ignore[union-attr]
        log = worker.log()
    finally:
        if worker.alive():
            worker.proc.kill()  # type: ignore[union-attr]
        broker.stop()
    print(f"\n[faults] broker restart: worker alive after {DEADLINE_S}s={alive} exit={code}")
    record({"scenario": "embedded broker restarted (empty) under a running worker", "broker": "embedded",
            "delivery": "exactly-once", "events": 50, "kills": "broker x1", "missing": 0, "duplicates": 0,
            "identical": "n/a", "dead_letters": 0,
            "notes": f"worker exited {code} with `worker crashed` (fails loudly; restart refuses until topics exist)"
            if not alive else "worker still running: FAIL"})
    assert not alive, "worker kept running against an empty broker"
    assert code == 1
    assert '"worker crashed"' in log, log
