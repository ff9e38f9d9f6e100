"""Record bytes -> event or a precise dead-letter reason; never an exception."""

from __future__ import annotations

from datetime import datetime, timezone

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


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


def _event(**extra: object) -> bytes:
    return orjson.dumps({"event_id": "e", "stream_id": "s", "text": "hi", **extra})


@pytest.mark.parametrize(
    "value, record_ts_ms, error_class, fragment",
    [
        (_event(ts=1e20), NOW_MS, "schema_violation", "out of range"),  # OverflowError/OSError in the C library
        (_event(ts=-1e20), NOW_MS, "schema_violation", "out of range"),
        (_event(ts=1.7e308), NOW_MS, "schema_violation", "out of range"),
        (_event(ts="-1"), NOW_MS, "schema_violation", "RFC 3339"),  # not read as an epoch
        (_event(ts="2026-01-01"), NOW_MS, "schema_violation", "RFC 3339"),
        (_event(ts=True), NOW_MS, "schema_violation", "ts"),
        (_event(ts="9999-12-31T23:59:59Z"), NOW_MS, "invalid_timestamp", "ahead of the worker's clock"),
        (_event(ts=NOW_MS + 2 * 3600 * 1000), NOW_MS, "invalid_timestamp", "REDHEART_MAX_FUTURE_SKEW_S"),
        (_event(), 253_402_300_800_000, "invalid_timestamp", "record timestamp"),  # year 10000, no ts
        (_event(), 2**62, "invalid_timestamp", "record timestamp"),
    ],
)
def test_event_time_outside_the_window_is_a_dead_letter(
    value: bytes, record_ts_ms: int, error_class: str, fragment: str
) -> None:
    out = decode(value, record_ts_ms, now=NOW, **LIMITS)
    assert isinstance(out, Rejection), out
    assert out.error_class == error_class and fragment in out.reason, out


def test_event_time_within_the_window_is_kept() -> None:
    ahead = decode(_event(ts=NOW_MS + 30 * 60 * 1000), NOW_MS, now=NOW, **LIMITS)
    old = decode(_event(ts="1999-01-01T00:00:00+09:00"), NOW_MS, now=NOW, **LIMITS)
    assert isinstance(ahead, InputEvent) and isinstance(old, InputEvent)
    assert old.ts == datetime(1998, 12, 31, 15, tzinfo=timezone.utc)
    bounded = decode(_event(ts="1999-01-01T00:00:00Z"), NOW_MS, now=NOW, max_past_skew_s=86_400.0, **LIMITS)
    assert isinstance(bounded, Rejection) and bounded.error_class == "invalid_timestamp"
    no_bound = decode(_event(ts="9999-12-31T23:59:59Z"), NOW_MS, now=NOW, max_future_skew_s=0, **LIMITS)
    assert isinstance(no_bound, InputEvent)


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"biosignals": {"gsr": {"sample_rate": 10, "values": [True, False, 1.0]}}}, "values"),
        ({"biosignals": {"gsr": {"sample_rate": "10", "values": [1.0]}}}, "sample_rate"),
        ({"text": 5}, "text"),
        ({"audio": {"format": "pcm_s16le", "data": "AAAA", "sample_rate": 16000.5}}, "sample_rate"),
    ],
)
def test_input_types_are_not_coerced(extra: dict, field: str) -> None:
    out = decode(orjson.dumps({"event_id": "e", "stream_id": "s", "text": "hi", **extra}), NOW_MS, now=NOW, **LIMITS)
    assert isinstance(out, Rejection) and out.error_class == "schema_violation" and field in out.reason, out


def test_a_huge_metadata_value_is_refused() -> None:
    wide = {"k": [[{"a": "x" * 10}] * 10 for _ in range(200_000)]}  # ~40 MB if serialized
    with pytest.raises(ValueError, match="byte limit"):
        InputEvent.model_validate({"event_id": "e", "stream_id": "s", "text": "x", "metadata": wide})
