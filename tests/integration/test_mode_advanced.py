"""production-advanced through the real worker process and a real broker: every result
carries its MC-dropout spread, English results name the words that drove their scores,
and the temporal block forecasts the stream `forecast_steps` typical gaps ahead."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.integration.harness import WorkerProcess, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

EN = ["I should have told her the truth.", "What a wonderful surprise party!", "He lied to me again."]


def test_advanced_fields_end_to_end(broker: Broker, prefix: str, tmp_path: Path) -> None:
    s = settings_for(broker, prefix)
    create_topics(s, partitions=1)
    env = worker_env(
        broker, s, free_port(), REDHEART_MODE="production-advanced", REDHEART_MC_DROPOUT_PASSES="4",
        REDHEART_EXPLAIN_TOP_K="3", REDHEART_FORECAST_STEPS="5", REDHEART_DELIVERY="at-least-once",
    )
    worker = WorkerProcess(env).start(tmp_path)
    try:
        worker.wait_ready()
        # one stream, an event every 10 s of event time; one Korean event in the middle
        lines = [
            orjson.dumps({"event_id": f"e{i}", "stream_id": "s", "ts": 1_767_225_600_000 + 10_000 * i,
                          "text": "정말 후회돼요" if i == 4 else EN[i % 3]})
            for i in range(9)
        ]
        produce_lines(lines, s)
        got = read_topics(broker, {s.results_topic: 9})
        results = sorted((ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic]),
                         key=lambda r: int(r.event_id[1:]))
        assert len(results) == 9, worker.log()
        for r in results:
            assert r.model.mode == "production-advanced"
            assert r.uncertainty is not None and r.uncertainty.passes == 4
            assert r.temporal is not None and r.temporal.forecast is not None
            f = r.temporal.forecast
            assert f.steps == 5 and f.horizon_s == pytest.approx(5 * f.dt_s)
            # uncertainty grows with the horizon: forecast variance above the filtered one
            assert all(f.variance[k] > r.temporal.variance[k] for k in f.variance)
        assert results[-1].temporal.forecast.dt_s == pytest.approx(10.0, rel=1e-6)
        for r in results:
            if r.event_id == "e4":
                assert r.explanation is None  # Korean in `small`: no differentiable Korean encoder
            else:
                assert r.explanation is not None and set(r.explanation.scores) == {
                    "dominant_emotion", "overall_sentiment", "ethical_score", "regret_potential"}
                text_words = {w.strip(".!").lower() for w in EN[int(r.event_id[1:]) % 3].split()}
                for tokens in r.explanation.scores.values():
                    assert tokens and all(t.token.strip(".!") in text_words | {""} for t in tokens)
    finally:
        code = worker.stop()
    assert code == 0, worker.log()
