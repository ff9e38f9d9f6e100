"""SIGKILL the worker at random points while it works; restart it each time.

Figures (printed and written into docs/RELIABILITY.md): events without a result must be 0.
On the embedded broker, aborted transactions stay visible to read_committed consumers
(docs/OPERATIONS.md, "The embedded broker"), so duplicates can appear there; every duplicate must then be identical to its
first copy. On real Kafka (testcontainers) exactly-once must show 0 duplicates.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import orjson
import pytest

from tests.brokers import Broker
from tests.faults.report import delivery_figures, record
from tests.integration.harness import WorkerProcess, event_id_of, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

EVENTS = 5000
STREAMS = 50
KILLS = 5
TEXTS = [
    "I can't believe how happy I am today", "오늘은 정말 슬픈 하루였어요", "He broke his promise and I'm angry",
    "그 일을 하지 말았어야 했어요", "The noise outside is frightening", "가족과 함께 있어서 행복해요",
    "I regret not calling my mother", "친구의 배신이 역겨워요", "What a wonderful surprise", "시험 결과가 걱정돼요",
]
@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_sigkill_loses_nothing(broker: Broker, prefix: str, tmp_path: Path, delivery: str) -> None:
    rng = random.Random(7)
    s = settings_for(broker, prefix)
    create_topics(s, partitions=3)
    env = worker_env(broker, s, free_port(), REDHEART_DELIVERY=delivery, REDHEART_MAX_WAIT_MS="10")
    events = [
        {"event_id": f"k{i:05d}", "stream_id": f"s{i % STREAMS:02d}", "text": TEXTS[rng.randrange(len(TEXTS))]}
        for i in range(EVENTS)
    ]
    chunks = [events[i::KILLS + 1] for i in range(KILLS + 1)]
    worker = WorkerProcess(env).start(tmp_path)
    kills = 0
    try:
        for chunk in chunks[:-1]:
            worker.wait_ready()
            produce_lines([orjson.dumps(e) for e in chunk], s)
            time.sleep(rng.uniform(0.2, 1.5))  # mid-batch, mid-transaction, wherever it is
            worker.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
            worker.proc.wait()  # type: ignore[union-attr]
            kills += 1
            worker = WorkerProcess(env).start(tmp_path)
        worker.wait_ready()
        produce_lines([orjson.dumps(e) for e in chunks[-1]], s)
        got = read_topics(broker, {s.results_topic: EVENTS}, timeout_s=420, distinct=event_id_of)
    finally:
        code = worker.stop()
    assert code == 0, worker.log()

    missing, duplicates, identical = delivery_figures(got[s.results_topic], EVENTS)
    print(f"\n[faults] sigkill broker={broker.kind} delivery={delivery}: events={EVENTS} kills={kills} "
          f"missing={missing} duplicates={duplicates} duplicates_identical={identical}")
    record({
        "scenario": "SIGKILL x5 during 5,000 events", "broker": broker.kind, "delivery": delivery,
        "events": EVENTS, "kills": kills, "missing": missing, "duplicates": duplicates,
        "identical": "yes" if identical else "NO", "dead_letters": 0,
        "notes": "embedded broker shows aborted transactions" if broker.kind == "embedded" and delivery == "exactly-once" else "",
    })
    assert kills == KILLS
    assert missing == 0
    assert identical
    if broker.kind == "kafka" and delivery == "exactly-once":
        assert duplicates == 0
