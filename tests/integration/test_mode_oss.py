"""production-oss through the real worker process, a real broker and a local server that
speaks the OpenAI chat-completions protocol: each result carries the helper LLM's
rationale for its own event; when the LLM fails, results say `unavailable` and keep
flowing (after the breaker opens, without waiting for the LLM at all)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.integration.harness import WorkerProcess, parse_metrics, read_topics, settings_for, worker_env
from tests.llm_server import FakeOpenAIServer
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

TEXTS = ["I am so happy today!", "He betrayed me and I am furious.", "I'm scared of the dark.", "I miss her."]


def events(start: int, n: int) -> list[bytes]:
    return [
        orjson.dumps({"event_id": f"e-{i}", "stream_id": f"s-{i % 3}", "text": TEXTS[i % len(TEXTS)]})
        for i in range(start, start + n)
    ]


def test_rationales_and_breaker(broker: Broker, prefix: str, tmp_path: Path) -> None:
    s = settings_for(broker, prefix)
    create_topics(s, partitions=1)
    key_file = tmp_path / "token"
    key_file.write_text("sekret-token\n")
    with FakeOpenAIServer(model="fake-oss", api_key="sekret-token") as llm:
        env = worker_env(
            broker, s, free_port(),
            REDHEART_MODE="production-oss",
            REDHEART_HELPER_LLM_URL=llm.base_url,
            REDHEART_HELPER_LLM_MODEL="fake-oss",
            REDHEART_HELPER_LLM_API_KEY_FILE=str(key_file),
            REDHEART_HELPER_LLM_TIMEOUT_MS="3000",
            REDHEART_HELPER_LLM_BREAKER_FAILURES="3",
            REDHEART_HELPER_LLM_BREAKER_RESET_S="3600",
            REDHEART_DELIVERY="at-least-once",
            REDHEART_CACHE_SIZE="0",
        )
        worker = WorkerProcess(env).start(tmp_path)
        try:
            worker.wait_ready()
            produce_lines(events(0, 8), s)
            got = read_topics(broker, {s.results_topic: 8})
            ok = [ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic]]
            assert len(ok) == 8, worker.log()
            for r in ok:
                assert r.rationale_info is not None and r.rationale_info.status == "ok", r.rationale_info
                # the fake names the dominant emotion it was sent: the answer belongs to this event
                assert r.rationale is not None and r.analysis.emotion.dominant in r.rationale
                assert r.rationale_info.model == "fake-oss"
            assert llm.request_count == 8

            assert {k.lower(): v for k, v in llm.last_headers.items()}.get("authorization") == "Bearer sekret-token"
            assert b"sekret" not in worker.get("/status")[1]

            llm.behave("error", status=503)
            produce_lines(events(100, 6), s)
            got = read_topics(broker, {s.results_topic: 8 + 6})
            failed = [ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic]][8:]
            assert len(failed) == 6, worker.log()
            assert all(r.rationale == "unavailable" for r in failed)
            assert {r.rationale_info.reason for r in failed if r.rationale_info} <= {"http_503", "circuit_open"}
            sent = llm.request_count

            produce_lines(events(200, 6), s)
            got = read_topics(broker, {s.results_topic: 8 + 6 + 6})
            later = [ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic]][14:]
            assert len(later) == 6, worker.log()
            # the breaker is open (3 failures, reset in an hour): no request, no waiting
            assert all(r.rationale == "unavailable" and r.rationale_info.reason == "circuit_open" for r in later)
            assert llm.request_count == sent
            metrics = parse_metrics(worker.get("/metrics")[1].decode())
            assert metrics['redheart_rationales_total{reason="circuit_open",status="unavailable"}'] >= 6
            assert assert_alive(worker)
        finally:
            code = worker.stop()
    assert code == 0, worker.log()


def assert_alive(worker: WorkerProcess) -> bool:
    assert worker.alive(), worker.log()
    return True
