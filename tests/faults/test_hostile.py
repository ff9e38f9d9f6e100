"""10,000 hostile inputs mixed with 1,000 good ones: every hostile
record in the DLQ with the right class, every good one answered, the worker alive and its
memory bounded. Figures into docs/RELIABILITY.md."""

from __future__ import annotations

import base64
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from schemas.dead_letter import DeadLetter
from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.faults.report import record
from tests.faults.test_kill import TEXTS
from tests.integration.harness import WorkerProcess, read_topics, settings_for, worker_env
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration

HOSTILE, GOOD = 10_000, 1_000
RSS_GROWTH_LIMIT_MB = 400  # the model, tokenizers and caches are loaded before the baseline


def hostile(i: int) -> tuple[bytes, str]:
    """(value, expected error.class), ten kinds in turn."""
    eid = f"h{i:05d}"
    kind = i % 10
    if kind == 0:
        return b'{"event_id": "' + eid.encode() + b'", "text": ', "invalid_json"
    if kind == 1:
        return b"\xc3\x28 " + eid.encode(), "invalid_encoding"
    if kind == 2:
        return orjson.dumps({"event_id": eid, "text": "no stream id"}), "schema_violation"
    if kind == 3:
        return orjson.dumps({"event_id": eid, "stream_id": "x", "text": "é" * 5000}), "oversized"
    if kind == 4:
        return orjson.dumps({"schema_version": "3.0", "event_id": eid, "stream_id": "x", "text": "hi"}), "unsupported_version"
    if kind == 5:
        img = base64.b64encode(b"\xff\xd8\xff" + bytes(100)).decode()
        return orjson.dumps({"event_id": eid, "stream_id": "x", "image": {"format": "jpeg", "data": img}}), "invalid_modality"
    if kind == 6:
        return b"[" * 2000 + b"]" * 2000, "invalid_json"  # nesting bomb: orjson refuses past its depth limit
    if kind == 7:
        if (i // 10) % 2:  # a nesting bomb in metadata that would only fail when the result is serialized
            bomb = b'{"a":' * 400 + b"1" + b"}" * 400
            return b'{"event_id": "' + eid.encode() + b'", "stream_id": "x", "text": "hi", "metadata": ' + bomb + b"}", "schema_violation"
        meta = {f"k{j}": j for j in range(100)}
        return orjson.dumps({"event_id": eid, "stream_id": "x", "text": "hi", "metadata": meta}), "schema_violation"
    if kind == 8:
        return orjson.dumps({"event_id": eid, "stream_id": "x", "text": "hi", "ts": "yesterday"}), "schema_violation"
    return orjson.dumps({"event_id": eid, "stream_id": "x", "text": ["not", "a", "string"]}), "schema_violation"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_hostile_flood(embedded: Broker, prefix: str, tmp_path: Path) -> None:
    rng = random.Random(13)
    s = settings_for(embedded, prefix)
    create_topics(s, partitions=3)
    worker = WorkerProcess(worker_env(embedded, s, free_port(), REDHEART_MAX_WAIT_MS="10")).start(tmp_path)
    bad = [hostile(i) for i in range(HOSTILE)]
    good = [{"event_id": f"g{i:04d}", "stream_id": f"s{i % 20}", "text": TEXTS[i % len(TEXTS)]} for i in range(GOOD)]
    mixed = [v for v, _ in bad] + [orjson.dumps(e) for e in good]
    rng.shuffle(mixed)
    expected = {v: c for v, c in bad}
    try:
        worker.wait_ready()
        warmup = {"event_id": "warmup", "stream_id": "w", "text": TEXTS[0]}
        produce_lines([orjson.dumps(warmup)], s)  # warm up: model, tokenizers, first batch
        read_topics(embedded, {s.results_topic: 1}, timeout_s=60)
        base = rss_mb(worker.proc.pid)  # type: ignore[union-attr]
        produce_lines(mixed, s)
        got = read_topics(embedded, {s.results_topic: GOOD + 1, s.dlq_topic: HOSTILE}, timeout_s=300)
        peak = rss_mb(worker.proc.pid)  # type: ignore[union-attr]
        assert worker.alive(), worker.log()
    finally:
        assert worker.stop() == 0, worker.log()
    letters = got[s.dlq_topic]
    wrong = [
        (m.value()[:40], DeadLetter.from_headers(m.headers()).error_class, expected.get(m.value()))
        for m in letters
        if DeadLetter.from_headers(m.headers()).error_class != expected.get(m.value())
    ]
    results = [ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic]]
    answered = Counter(r.event_id for r in results)
    wanted = {e["event_id"] for e in good} | {"warmup"}
    print(f"\n[faults] hostile: {HOSTILE} hostile + {GOOD} good; dead letters={len(letters)} wrong class={len(wrong)} "
          f"results={len(results)} rss base={base:.0f} MB peak={peak:.0f} MB")
    record({"scenario": "10,000 hostile + 1,000 good inputs", "broker": embedded.kind, "delivery": "exactly-once",
            "events": HOSTILE + GOOD, "kills": 0, "missing": len(wanted - set(answered)),
            "duplicates": sum(answered.values()) - len(answered), "identical": "n/a", "dead_letters": len(letters),
            "notes": f"wrong DLQ class {len(wrong)}; worker RSS {base:.0f} → {peak:.0f} MB"})
    assert len(letters) == HOSTILE and not wrong, wrong[:5]
    assert set(answered) == wanted and sum(answered.values()) == len(wanted)
    assert peak - base < RSS_GROWTH_LIMIT_MB
