"""Kafka record bytes -> a validated `InputEvent`, or the precise reason it is a dead letter.

Decoding never raises for bad input: every failure becomes a `Rejection` that the loop
sends to the DLQ with the original bytes, so a poison record costs one DLQ write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson
from pydantic import ValidationError

from schemas.dead_letter import MAX_REASON_CHARS, ErrorClass
from schemas.input import SUPPORTED_MAJOR, InputEvent


@dataclass(frozen=True, slots=True)
class Rejection:
    error_class: ErrorClass
    reason: str


def _summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:MAX_REASON_CHARS]


def decode(
    value: bytes | None,
    record_ts_ms: int | None,
    *,
    max_text_bytes: int,
    max_message_bytes: int,
    max_future_skew_s: float = 3600.0,
    max_past_skew_s: float = 0.0,
    now: datetime | None = None,
) -> InputEvent | Rejection:
    """`max_future_skew_s` / `max_past_skew_s` bound the event time (its `ts`, or the record's
    timestamp when it has none) against the worker's clock `now`, like Kafka's
    `message.timestamp.after/before.max.ms`: event time drives the Kalman filter and the
    idle-stream eviction, and one producer's clock must not be able to move either. 0 turns a
    bound off."""
    if value is None:
        return Rejection("schema_violation", "record has no value (null / tombstone)")
    if len(value) > max_message_bytes:
        return Rejection("oversized", f"record is {len(value)} bytes, over the {max_message_bytes}-byte limit")
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("invalid_encoding", f"value is not UTF-8: {exc}"[:MAX_REASON_CHARS])
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejection("invalid_json", f"value is not JSON: {exc}"[:MAX_REASON_CHARS])
    if not isinstance(obj, dict):
        return Rejection("schema_violation", f"value must be a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version")
    if isinstance(version, str) and version.split(".")[0] != SUPPORTED_MAJOR:
        return Rejection(
            "unsupported_version",
            f"schema_version {version[:32]!r} is not supported (this worker reads major {SUPPORTED_MAJOR})",
        )
    try:
        event = InputEvent.model_validate(obj, context={"max_text_bytes": max_text_bytes})
    except ValidationError as exc:
        summary = _summarize(exc)
        kind: ErrorClass = "oversized" if "limit" in summary and "text" in summary else "schema_violation"
        return Rejection(kind, summary)
    now = now or datetime.now(tz=timezone.utc)
    source = "ts"
    if event.ts is None and record_ts_ms is not None and record_ts_ms > 0:
        source = "the record timestamp"
        try:
            event.ts = datetime.fromtimestamp(record_ts_ms / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return Rejection("invalid_timestamp", f"the record timestamp {record_ts_ms} ms is out of range")
    elif event.ts is None:
        event.ts = now
    why = _outside_window(event.ts, now, max_future_skew_s, max_past_skew_s)
    if why is not None:
        return Rejection("invalid_timestamp", f"{source} {event.ts.isoformat()} is {why}")
    return event


def _outside_window(ts: datetime, now: datetime, future_s: float, past_s: float) -> str | None:
    try:
        if future_s and ts > now + timedelta(seconds=future_s):
            return f"more than {future_s:g} s ahead of the worker's clock (REDHEART_MAX_FUTURE_SKEW_S)"
        if past_s and ts < now - timedelta(seconds=past_s):
            return f"more than {past_s:g} s behind the worker's clock (REDHEART_MAX_PAST_SKEW_S)"
    except OverflowError:  # now +/- the bound leaves datetime's range: nothing can lie beyond it
        return None
    return None
