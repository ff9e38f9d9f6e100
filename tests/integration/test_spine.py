"""The spine, end to end through a real broker and the real worker process.

200 events over 20 streams (Korean and English) -> exactly 200 schema-valid results with
matching event ids and per-stream order; 6 kinds of bad input -> DLQ with reasons and the
original bytes; the worker stays alive and processes good events sent after the bad ones;
SIGTERM -> exit 0.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from schemas.dead_letter import DeadLetter
from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.integration.harness import WorkerProcess, parse_metrics, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

KO = [
    "오늘 시험에 합격해서 너무 기뻐요", "친구가 약속을 어겨서 화가 났어요", "밤길이 무서워서 택시를 탔어요",
    "할머니가 보고 싶어서 눈물이 났어요", "그 말을 하지 말았어야 했는데 후회돼요", "선물을 받고 깜짝 놀랐어요",
    "이웃이 쓰레기를 버려서 역겨웠어요", "가족과 함께한 저녁이 따뜻했어요", "회사에서 실수를 해서 걱정돼요",
    "오랜 친구를 다시 만나 정이 느껴졌어요",
]
EN = [
    "I got the job and I can't stop smiling", "He lied to me again and I'm furious", "The storm outside scares me",
    "I miss my dad every single day", "I should have apologized when I had the chance", "What a surprise party that was",
    "The smell in that kitchen was disgusting", "We adopted a puppy and we love her", "I'm worried about the layoffs",
    "If only I had taken the other offer",
]


def good_events(n: int, streams: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + n):
        s = i % streams
        ko = s % 2 == 0
        pool = KO if ko else EN
        out.append(
            {"event_id": f"ev-{i:04d}", "stream_id": f"stream-{s:02d}", "text": f"{pool[(i // streams) % len(pool)]} ({i})",
             **({"lang": "ko"} if ko and i % 4 == 0 else {}), "metadata": {"seq": i}}
        )
    return out


def bad_records() -> list[tuple[bytes, str]]:
    """(record value, expected error.class) — one of each kind."""
    img = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
    return [
        (b'{"event_id": "bad-1", "stream_id": "stream-00", "text": "unterminated', "invalid_json"),
        (b"\xff\xfe\xfa not utf-8 at all", "invalid_encoding"),
        (orjson.dumps({"stream_id": "stream-01", "text": "no event id"}), "schema_violation"),
        (orjson.dumps({"event_id": "bad-4", "stream_id": "stream-02", "text": "가" * 4000}), "oversized"),
        (orjson.dumps({"schema_version": "9.0", "event_id": "bad-5", "stream_id": "stream-03", "text": "hi"}),
         "unsupported_version"),
        (orjson.dumps({"event_id": "bad-6", "stream_id": "stream-04", "image": {"format": "png", "data": img}}),
         "invalid_modality"),
    ]


@pytest.mark.parametrize("delivery, overlap", [("exactly-once", "true"), ("at-least-once", "false")])
def test_spine_end_to_end(broker: Broker, prefix: str, tmp_path: Path, delivery: str, overlap: str) -> None:
    """Both delivery modes, and both loops: the model on its own thread (default) and inline."""
    s = settings_for(broker, prefix)
    create_topics(s, partitions=3)
    env = worker_env(broker, s, free_port(), REDHEART_MAX_WAIT_MS="30", REDHEART_DELIVERY=delivery,
                     REDHEART_OVERLAP=overlap)
    worker = WorkerProcess(env).start(tmp_path)
    try:
        worker.wait_ready()
        first, second = good_events(100, 20), good_events(100, 20, start=100)
        bad = bad_records()
        produce_lines([orjson.dumps(e) for e in first], s)
        produce_lines([v for v, _ in bad], s)
        produce_lines([orjson.dumps(e) for e in second], s)

        got = read_topics(broker, {s.results_topic: 200, s.dlq_topic: len(bad)})
        assert worker.alive(), f"worker died:\n{worker.log()}"

        # exactly 200 schema-valid results, matching ids, no duplicates
        results = [ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic]]
        sent = {e["event_id"]: e for e in first + second}
        ids = [r.event_id for r in results]
        assert len(ids) == 200, f"{len(ids)} results:\n{worker.log()}"
        assert sorted(ids) == sorted(sent)
        for msg, r in zip(got[s.results_topic], results):
            assert msg.key() == r.stream_id.encode()
            assert r.stream_id == sent[r.event_id]["stream_id"]
            assert r.metadata == sent[r.event_id]["metadata"]
            assert r.model.trained is False and r.model.profile == "small"
            assert set(r.analysis.emotion.emotions) == {"joy", "love", "surprise", "anger", "fear", "sadness", "disgust"}
            assert -1.0 <= r.integrated.overall_sentiment <= 1.0
            assert 0.0 <= r.integrated.confidence <= 1.0
        assert {r.lang for r in results} == {"ko", "en"}

        # per-stream order preserved
        per_stream: dict[str, list[int]] = defaultdict(list)
        for r in results:
            per_stream[r.stream_id].append(int(r.event_id.split("-")[1]))
        assert len(per_stream) == 20
        for sid, seq in per_stream.items():
            assert seq == sorted(seq), f"{sid} out of order: {seq}"

        # dead letters: original bytes, precise reasons, source coordinates
        letters = {m.value(): (DeadLetter.from_headers(m.headers()), m) for m in got[s.dlq_topic]}
        assert len(got[s.dlq_topic]) == len(bad)
        for value, expected in bad:
            assert value in letters, f"missing dead letter for {value[:40]!r}"
            dl, msg = letters[value]
            assert dl.error_class == expected, (expected, dl)
            assert dl.reason and dl.source_topic == s.input_topic and dl.source_offset >= 0
        # the worker's own counters agree with what was sent
        code, body = worker.get("/metrics")
        assert code == 200
        metrics = parse_metrics(body.decode())
        assert metrics["redheart_events_consumed_total"] == 200 + len(bad)
        assert metrics["redheart_results_produced_total"] == 200
        for _, expected in bad:
            assert metrics[f'redheart_dead_letters_total{{reason="{expected}"}}'] == 1
        assert metrics["redheart_batch_size_count"] >= 1
        assert metrics["redheart_batch_size_sum"] == 200
    finally:
        code = worker.stop()
    assert code == 0, worker.log()
