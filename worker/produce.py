"""Send a JSONL file to the input topic: each line's bytes as the value, `stream_id` as the key.

Lines are sent as they are (not re-serialized), so a malformed line reaches the worker
and its DLQ exactly as a buggy producer would send it — handy for trying the DLQ.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from worker import kafka
from worker.config import Settings


def key_of(line: bytes) -> bytes | None:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    sid = obj.get("stream_id") if isinstance(obj, dict) else None
    return sid.encode("utf-8") if isinstance(sid, str) else None


def produce_lines(lines: list[bytes], settings: Settings, topic: str | None = None) -> int:
    producer = kafka.make_producer(settings)
    failures: list[str] = []

    def on_delivery(err, msg) -> None:  # type: ignore[no-untyped-def]
        if err is not None:
            failures.append(str(err))

    target = topic or settings.input_topic
    for line in lines:
        kafka.produce(producer, target, line, key_of(line), on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(30)
    if left or failures:
        raise RuntimeError(f"{left} records unacknowledged, {len(failures)} failed: {failures[:3]}")
    return len(lines)


def produce_file(path: Path, settings: Settings, topic: str | None = None) -> int:
    lines = [ln for ln in path.read_bytes().splitlines() if ln.strip()]
    return produce_lines(lines, settings, topic)
