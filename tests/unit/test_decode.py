"""Record bytes -> event or a precise dead-letter reason; never an exception."""

from __future__ import annotations

import orjson
import pytest

from schemas.input import InputEvent
from worker.decode import Rejection, decode

LIMITS = {"max_text_bytes": 64, "max_message_bytes": 4096}


def test_good_record_gets_record_timestamp_when_ts_absent() -> None:
    ev = decode(orjson.dumps({"event_id": "e", "stream_id": "s", "text": "hello"}), 1_750_000_000_000, **LIMITS)
    assert isinstance(ev, InputEvent)
    assert ev.ts is not None and int(ev.ts.timestamp() * 1000) == 1_750_000_000_000


@pytest.mark.parametrize(
    "value, error_class, fragment",
    [
        (None, "schema_violation", "no value"),
        (b"{not json", "invalid_json", "not JSON"),
        (b"\xff\xfe\x00garbage", "invalid_encoding", "not UTF-8"),
        (b"[1, 2]", "schema_violation", "JSON object"),
        (orjson.dumps({"event_id": "e", "stream_id": "s", "text": "x" * 65}), "oversized", "64-byte limit"),
        (b"x" * 5000, "oversized", "4096-byte limit"),
        (orjson.dumps({"schema_version": "7.1", "event_id": "e", "stream_id": "s", "text": "x"}), "unsupported_version", "7.1"),
        (orjson.dumps({"event_id": 5, "stream_id": "s", "text": "x"}), "schema_violation", "event_id"),
    ],
)
def test_bad_records_become_rejections(value: bytes | None, error_class: str, fragment: str) -> None:
    out = decode(value, 0, **LIMITS)
    assert isinstance(out, Rejection)
    assert out.error_class == error_class
    assert fragment in out.reason
