"""Kafka record bytes -> a validated `InputEvent`, or the precise reason it is a dead letter.

Decoding never raises for bad input: every failure becomes a `Rejection` that the loop
sends to the DLQ with the original bytes, so a poison record costs one DLQ write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

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
) -> InputEvent | Rejection:
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
    if event.ts is None and record_ts_ms is not None and record_ts_ms > 0:
        event.ts = datetime.fromtimestamp(record_ts_ms / 1000.0, tz=timezone.utc)
    elif event.ts is None:
        event.ts = datetime.now(tz=timezone.utc)
    return event
