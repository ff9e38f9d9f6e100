"""/healthz, /readyz, /status and /metrics of a running worker; the result cache end to end."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.integration.harness import WorkerProcess, parse_metrics, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration


def test_status_metrics_and_cache(embedded: Broker, prefix: str, tmp_path: Path) -> None:
    s = settings_for(embedded, prefix)
    create_topics(s, partitions=2)
    worker = WorkerProcess(worker_env(embedded, s, free_port(), REDHEART_CACHE_SIZE="100")).start(tmp_path)
    try:
        worker.wait_ready()
        assert worker.get("/healthz")[0] == 200
        status = orjson.loads(worker.get("/status")[1])
        assert status["model"]["trained"] is False
        assert status["pipeline"]["profile"] == "small"
        assert status["pipeline"]["parameters"]["own"] > 0
        assert [e["name"] for e in status["pipeline"]["encoders"]]
        assert status["assigned_partitions"]
        assert status["config"]["input_topic"] == s.input_topic

        texts = ["I love this city", "이 도시가 정말 좋아요", "That was a terrible mistake"]
        first = [{"event_id": f"a{i}", "stream_id": f"s{i}", "text": t} for i, t in enumerate(texts)]
        produce_lines([orjson.dumps(e) for e in first], s)
        read_topics(embedded, {s.results_topic: 3}, timeout_s=60)
        # the same texts again (with other whitespace) from other streams: served from the cache
        again = [{"event_id": f"b{i}", "stream_id": f"t{i}", "text": f"  {t.replace(' ', '  ')} "} for i, t in enumerate(texts)]
        produce_lines([orjson.dumps(e) for e in again], s)
        got = read_topics(embedded, {s.results_topic: 6}, timeout_s=60)
        results = {r.event_id: r for r in (ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic])}
        for i in range(3):
            a, b = results[f"a{i}"], results[f"b{i}"]
            assert a.cached is False and b.cached is True
            assert b.analysis == a.analysis and b.integrated == a.integrated

        metrics = parse_metrics(worker.get("/metrics")[1].decode())
        assert metrics["redheart_cache_hits_total"] == 3
        assert metrics["redheart_cache_misses_total"] == 3
        assert metrics["redheart_events_consumed_total"] == 6
        assert metrics["redheart_results_produced_total"] == 6
        for stage in ("decode", "tokenize", "model", "temporal", "results", "produce"):
            assert metrics[f'redheart_stage_seconds_count{{stage="{stage}"}}'] >= 1
        assert metrics["redheart_assigned_partitions"] == 2
        assert orjson.loads(worker.get("/status")[1])["cache"]["hits"] == 3
    finally:
        assert worker.stop() == 0, worker.log()
