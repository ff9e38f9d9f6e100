"""No record can stop a partition (poison pills, bombs and clocks), through the real
worker on the real broker:

- good events interleaved with each high and medium record of the hostile review — `ts` of
  1e20, a record timestamp in year 10000, biosignals whose features leave the result's range
  (two of them alone in a batch), a JPEG scan bomb, a far-future `ts`, a 40 MP PNG, a 16 MiB
  metadata record: every good event answered, every hostile one answered or dead-lettered,
  the worker never exits, and a stream's state survives a far-future timestamp plus an
  eviction pass;
- the stream cap evicts the least recently updated streams (metric, bounded `/status`);
- a record that kills the process outright (a native crash, injected through a
  `sitecustomize` on the worker's path, as a crashing C decoder would) is handled alone after
  the first restart and dead-lettered after it kills the process alone.

Figures go into docs/RELIABILITY.md.
"""

from __future__ import annotations

import base64
import io
import struct
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from confluent_kafka import Consumer, Producer
from PIL import Image

from schemas.dead_letter import DeadLetter
from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.faults.report import record
from tests.faults.test_kill import TEXTS
from tests.integration.harness import (
    WorkerProcess, event_id_of, parse_metrics, read_topics, settings_for, worker_env,
)
from worker.devbroker import free_port
from worker.kafka import create_topics

pytestmark = pytest.mark.integration

YEAR_10000_MS = 253_402_300_800_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scan_bomb(scans: int = 10_000, side: int = 4000) -> bytes:
    """A 16 MP progressive JPEG with `scans` empty scans (10 bytes each) before its end:
    each costs the decoder a pass over the whole image."""
    buf = io.BytesIO()
    Image.new("RGB", (side, side), (120, 80, 40)).save(buf, "JPEG", progressive=True, quality=50)
    data = buf.getvalue()
    assert data.endswith(b"\xff\xd9")
    empty = b"\xff\xda" + struct.pack(">H", 8) + bytes([1, 1, 0x00, 1, 63, 0x10])  # an AC refinement scan, no data
    return data[:-2] + empty * scans + b"\xff\xd9"


def big_png(side_w: int = 8000, side_h: int = 5000) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side_w, side_h), (10, 200, 30)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def gsr_bomb() -> dict:
    rng = np.random.default_rng(3)
    return {"gsr": {"sample_rate": 16.0, "values": (2e9 + rng.standard_normal(640) * 1e8).tolist()}}


def _producer(broker: Broker) -> Producer:
    return Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 20_000_000,
                     "linger.ms": 0, "enable.idempotence": True})


def _send(p: Producer, topic: str, value: bytes, key: bytes, timestamp: int | None = None) -> None:
    kwargs = {"timestamp": timestamp} if timestamp is not None else {}
    p.produce(topic, value=value, key=key, partition=0, **kwargs)
    p.poll(0)


def test_hostile_records_interleaved_with_good_ones(embedded: Broker, prefix: str, tmp_path: Path) -> None:
    s = settings_for(embedded, prefix)
    create_topics(s, partitions=1)  # one partition: every hostile record sits in front of good ones
    env = worker_env(
        embedded, s, free_port(), REDHEART_MAX_WAIT_MS="50", REDHEART_STATE_EVICTION_INTERVAL_S="1",
        REDHEART_RECOVERY_DIR=str(tmp_path / "recovery"), REDHEART_MAX_STREAMS="40",
    )
    worker = WorkerProcess(env).start(tmp_path)
    now_ms = int(time.time() * 1000)
    good_n = 0

    def good(stream: str = "") -> bytes:
        nonlocal good_n
        good_n += 1
        return orjson.dumps({"event_id": f"g{good_n:03d}", "stream_id": stream or f"s{good_n % 5}",
                             "text": TEXTS[good_n % len(TEXTS)]})

    hostile = {
        "ts_1e20": orjson.dumps({"event_id": "h-ts", "stream_id": "s1", "text": "hello", "ts": 1e20}),
        "record_ts_year_10000": orjson.dumps({"event_id": "h-rts", "stream_id": "s1", "text": "hello"}),
        "gsr_bomb_a": orjson.dumps({"event_id": "h-gsr-a", "stream_id": "s2", "biosignals": gsr_bomb()}),
        "gsr_bomb_b": orjson.dumps({"event_id": "h-gsr-b", "stream_id": "s3", "biosignals": gsr_bomb()}),
        "far_future_ts": orjson.dumps({"event_id": "h-future", "stream_id": "keep", "text": "from the future",
                                       "ts": "9999-12-31T23:59:59Z"}),
        "scan_bomb": orjson.dumps({"event_id": "h-scans", "stream_id": "s4",
                                   "image": {"format": "jpeg", "data": _b64(scan_bomb())}}),
        "png_40mp": orjson.dumps({"event_id": "h-png", "stream_id": "s4",
                                  "image": {"format": "png", "data": _b64(big_png())}}),
        "metadata_16mib": b'{"event_id": "h-meta", "stream_id": "s0", "text": "hi", "metadata": {"k": ['
        + b",".join([b'{"a": "xxxxxxxxxxxxxxxx"}'] * 620_000) + b"]}}",
    }
    p = _producer(embedded)
    timings: dict[str, float] = {}
    try:
        worker.wait_ready()
        _send(p, s.input_topic, good("keep"), b"keep")  # the stream whose state must survive
        for name, value in hostile.items():
            if name == "gsr_bomb_b":  # right behind its twin: two of them alone in one batch
                _send(p, s.input_topic, value, b"h")
                continue
            for _ in range(2):
                _send(p, s.input_topic, good(), b"g")
            _send(p, s.input_topic, value, b"h", timestamp=YEAR_10000_MS if name == "record_ts_year_10000" else None)
            after = good()
            _send(p, s.input_topic, after, b"g")
            timings[name] = time.monotonic()
            if name == "scan_bomb":  # the events behind a scan bomb are answered within seconds
                assert p.flush(30) == 0
                sent = time.monotonic()
                got = read_topics(embedded, {s.results_topic: good_n}, timeout_s=120)
                timings["behind_scan_bomb_s"] = time.monotonic() - sent - 2.0  # less the reader's 2 s grace
        assert p.flush(60) == 0
        time.sleep(2.5)  # an eviction pass runs (interval 1 s) after the far-future record
        _send(p, s.input_topic, orjson.dumps({"event_id": "keep-2", "stream_id": "keep", "text": "still here"}), b"keep")
        # the stream cap: 60 more streams through a worker that keeps 40
        for i in range(60):
            _send(p, s.input_topic, orjson.dumps({"event_id": f"c{i:02d}", "stream_id": f"cap-{i}",
                                                  "text": TEXTS[i % len(TEXTS)]}), f"cap-{i}".encode())
        assert p.flush(60) == 0
        want_results = good_n + 1 + 60
        got = read_topics(embedded, {s.results_topic: want_results, s.dlq_topic: 1}, timeout_s=300)
        assert worker.alive(), worker.log()
        metrics = parse_metrics(worker.get("/metrics")[1].decode())
        status = orjson.loads(worker.get("/status")[1])
    finally:
        code = worker.stop()
    assert code == 0, worker.log()

    results = {r.event_id: r for r in (ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic])}
    letters = {orjson.loads(m.value())["event_id"] if m.value()[:1] == b"{" and len(m.value()) < 10_000_000
               else "h-meta": DeadLetter.from_headers(m.headers()) for m in got[s.dlq_topic]}
    goods = {f"g{i:03d}" for i in range(1, good_n + 1)}
    hostile_ids = {"h-ts", "h-rts", "h-gsr-a", "h-gsr-b", "h-future", "h-scans", "h-png", "h-meta"}
    outcome = {h: (letters[h].error_class if h in letters else "answered" if h in results else "MISSING")
               for h in sorted(hostile_ids)}
    cap_evicted = metrics.get('redheart_streams_evicted_total{reason="cap"}', 0)
    print(f"\n[faults] poison: {outcome}; behind the scan bomb answered in {timings.get('behind_scan_bomb_s', -1):.1f} s; "
          f"cap evictions {cap_evicted}")
    record({"scenario": "each hostile-review record between good events (1 partition)", "broker": embedded.kind,
            "delivery": "exactly-once", "events": good_n + 1 + 1 + 60 + len(hostile_ids), "kills": 0,
            "missing": len((goods | {"keep-2"}) - set(results)), "duplicates": 0, "identical": "n/a",
            "dead_letters": len(letters),
            "notes": "; ".join(f"{k}: {v}" for k, v in outcome.items())
            + f"; events behind the scan bomb answered in {timings.get('behind_scan_bomb_s', -1):.1f} s"})
    assert goods | {"keep-2"} <= set(results), sorted((goods | {"keep-2"}) - set(results))
    assert "MISSING" not in outcome.values(), outcome
    assert outcome["h-ts"] == "schema_violation" and outcome["h-rts"] == "invalid_timestamp"
    assert outcome["h-future"] == "invalid_timestamp"
    assert outcome["h-gsr-a"] == outcome["h-gsr-b"] == "invalid_modality"
    assert outcome["h-scans"] == "invalid_modality" and outcome["h-meta"] == "schema_violation"
    assert "internal_error" not in outcome.values()
    # the far-future record did not move the eviction clock: the stream kept its state
    assert results["keep-2"].temporal is not None and results["keep-2"].temporal.events_seen == 2
    assert cap_evicted >= 20
    assert metrics.get('redheart_streams_evicted_total{reason="ttl"}', 0) == 0
    assert status["state"]["streams"] <= 40


CRASH_INJECTION = '''
"""Test-only: make the worker process die natively (SIGABRT, like a crashing C decoder)
while it decodes a record that carries the marker text."""
import os
import worker.decode as _d

_real = _d.decode


def decode(value, *args, **kwargs):
    if value is not None and b"CRASH-THE-PROCESS" in value:
        os.abort()
    return _real(value, *args, **kwargs)


_d.decode = decode
'''


def test_a_record_that_kills_the_process_is_dead_lettered_after_restarts(
    embedded: Broker, prefix: str, tmp_path: Path
) -> None:
    s = settings_for(embedded, prefix)
    create_topics(s, partitions=1)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(CRASH_INJECTION)
    env = worker_env(embedded, s, free_port(), REDHEART_MAX_WAIT_MS="200",
                     REDHEART_RECOVERY_DIR=str(tmp_path / "recovery"), PYTHONPATH=str(inject))
    events = [orjson.dumps({"event_id": f"e{i:02d}", "stream_id": "s", "text": TEXTS[i % len(TEXTS)]})
              for i in range(12)]
    events.insert(6, orjson.dumps({"event_id": "poison", "stream_id": "s", "text": "CRASH-THE-PROCESS"}))
    p = _producer(embedded)
    for value in events:
        _send(p, s.input_topic, value, b"s")
    assert p.flush(30) == 0
    exits: list[int] = []
    results: dict[str, bytes] = {}
    letters: list[DeadLetter] = []
    reader = Consumer({"bootstrap.servers": embedded.bootstrap, "group.id": f"{prefix}-reader",
                       "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                       **dict(embedded.consumer_overrides)})
    reader.subscribe([s.results_topic, s.dlq_topic])
    worker = WorkerProcess(env).start(tmp_path)
    deadline = time.monotonic() + 600
    try:
        # expected: two native crashes (batched, then alone), then a worker that finishes the partition
        while time.monotonic() < deadline and not (len(results) == 12 and letters):
            for m in reader.consume(100, 0.2):
                if m.error() is not None:
                    continue
                if m.topic() == s.results_topic:
                    results[event_id_of(m)] = m.value()
                else:
                    letters.append(DeadLetter.from_headers(m.headers()))
            if worker.proc.poll() is not None:  # type: ignore[union-attr]
                exits.append(worker.proc.returncode)  # type: ignore[union-attr]
                assert len(exits) <= 3, worker.log()
                worker = WorkerProcess(env).start(tmp_path)
        assert worker.alive(), worker.log()
    finally:
        reader.close()
        code = worker.stop()
    assert code == 0, worker.log()
    answered = set(results)
    print(f"\n[faults] native crash: process exits {exits}, then answered {len(answered)} of 12, "
          f"dead letters {[(d.error_class, d.source_offset) for d in letters]}")
    record({"scenario": "a record that aborts the process (native crash)", "broker": embedded.kind,
            "delivery": "exactly-once", "events": 13, "kills": len(exits), "missing": 12 - len(answered),
            "duplicates": 0, "identical": "n/a", "dead_letters": len(letters),
            "notes": f"process exits {exits}; the record is handled alone after the first crash and "
                     f"dead-lettered (internal_error) after it killed the process alone"})
    assert exits == [-6, -6], exits  # batched, then alone; the third start dead-letters it
    assert answered == {f"e{i:02d}" for i in range(12)}
    assert [(d.error_class, d.source_offset) for d in letters] == [("internal_error", 6)]
    assert "died 1 time(s) while handling this record alone (native crash: Fatal Python error: Aborted" in letters[0].reason



STALL_INJECTION = '''
"""Test-only: make decoding one record take 8 s (a decode that stalls the consume loop)."""
import time
import worker.decode as _d

_real = _d.decode


def decode(value, *args, **kwargs):
    if value is not None and b"STALL-THE-LOOP" in value:
        time.sleep(8)
    return _real(value, *args, **kwargs)


_d.decode = decode
'''


def test_a_stalled_loop_fails_liveness_and_a_bad_state_record_is_skipped(
    embedded: Broker, prefix: str, tmp_path: Path
) -> None:
    """`/healthz` answers 503 while the consume loop makes no progress for longer than
    REDHEART_LIVENESS_TIMEOUT_S, and 200 again once it moves; records on the state topic that
    cannot be states are skipped on restore (reported), not a crash on every assignment."""
    s = settings_for(embedded, prefix)
    create_topics(s, partitions=1)
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(STALL_INJECTION)
    p = _producer(embedded)
    for junk in (b"\xff not json", b'{"stream_id": "x"}', b'{"input_offset": "7"}'):
        _send(p, s.state_topic, junk, b"x")
    assert p.flush(30) == 0
    env = worker_env(embedded, s, free_port(), REDHEART_LIVENESS_TIMEOUT_S="2", PYTHONPATH=str(inject),
                     REDHEART_RECOVERY_DIR=str(tmp_path / "recovery"))
    worker = WorkerProcess(env).start(tmp_path)
    seen: list[int] = []
    try:
        worker.wait_ready()
        assert worker.get("/healthz")[0] == 200
        _send(p, s.input_topic, orjson.dumps({"event_id": "stall", "stream_id": "s", "text": "STALL-THE-LOOP now"}), b"s")
        _send(p, s.input_topic, orjson.dumps({"event_id": "after", "stream_id": "s", "text": TEXTS[0]}), b"s")
        assert p.flush(30) == 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (503 in seen and seen[-1] == 200):
            seen.append(worker.get("/healthz")[0])
            time.sleep(0.25)
        got = read_topics(embedded, {s.results_topic: 2}, timeout_s=60)
        metrics = parse_metrics(worker.get("/metrics")[1].decode())
    finally:
        code = worker.stop()
    assert code == 0, worker.log()
    assert 503 in seen and seen[-1] == 200, seen
    assert {event_id_of(m) for m in got[s.results_topic]} == {"stall", "after"}
    assert metrics["redheart_state_records_skipped_total"] == 3  # none has an integer input_offset
    record({"scenario": "a stalled consume loop; junk on the state topic", "broker": embedded.kind,
            "delivery": "exactly-once", "events": 2, "kills": 0, "missing": 0, "duplicates": 0, "identical": "n/a",
            "dead_letters": 0,
            "notes": f"/healthz went 200 → 503 → 200 ({seen.count(503)} polls at 503, liveness timeout 2 s, an 8 s "
                     f"stall); 3 unreadable state records skipped on restore, worker ready"})
