"""`InputEvent` (v1): what users' services produce to `redheart.input` (docs/CONTRACT.md).

Validation is strict and bounded: every string, list and payload has a limit, so a
hostile or buggy producer costs at most one dead letter, never the worker's memory.
Limits that operators tune (text size) come in through the validation context.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas import labels as L
from schemas._base import Strict

DEFAULT_MAX_TEXT_BYTES = 8 * 1024
MAX_IMAGE_BYTES = 4 * 1024 * 1024
MAX_AUDIO_BYTES = 8 * 1024 * 1024
MAX_SIGNAL_SAMPLES = 200_000
MAX_METADATA_KEYS = 64
MAX_METADATA_DEPTH = 16
MAX_METADATA_BYTES = 16 * 1024
SUPPORTED_MAJOR = "1"
# RFC 3339 date-time: a date, a time and an explicit offset. Anything looser (a bare number
# such as "-1", a date alone) is refused rather than guessed at.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _b64(value: str, limit: int, what: str) -> str:
    if len(value) > (limit * 4) // 3 + 4:
        raise ValueError(f"{what} data exceeds {limit} bytes")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} data is not valid base64: {exc}") from None
    return value


def _metadata_bounds(value: Any, max_depth: int, max_bytes: int) -> str | None:
    """Why `value` is too deep or too large for metadata, or None; walks iteratively (no
    recursion to exhaust) and stops at the first bound crossed, so a 16 MiB value costs a
    few thousand steps, not a full walk and a full serialization. Sizes are a lower bound
    of the JSON text (strings and keys by length, 1 byte per punctuation and number digit
    beyond); the exact check on the serialized text follows for what passes."""
    size, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            if level > max_depth:
                return f"metadata is nested more than {max_depth} levels deep"
            size += 2
            if isinstance(node, dict):
                for key, child in node.items():
                    size += len(key) + 3
                    stack.append((child, level + 1))
            else:
                size += len(node)
                stack.extend((child, level + 1) for child in node)
        elif isinstance(node, str):
            size += len(node) + 2
        else:
            size += 1
        if size > max_bytes:
            return f"metadata is over the {max_bytes}-byte limit as JSON"
    return None


def _timestamp(v: Any) -> datetime:
    """`ts` from epoch milliseconds or RFC 3339 text. Out-of-range numbers (1e20 ms lies past
    year 9999) raise OverflowError/OSError in the C library: they become validation errors
    here, so a hostile `ts` is a dead letter, never an exception that escapes."""
    if isinstance(v, datetime):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError("ts must be RFC 3339 text or epoch milliseconds")
    if isinstance(v, str):
        if not _RFC3339.fullmatch(v):
            raise ValueError("ts text must be an RFC 3339 date-time with a timezone offset, e.g. 2026-01-01T00:00:00Z")
        try:
            return datetime.fromisoformat(v.upper().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"ts is not a valid date-time: {exc}") from None
    try:
        return datetime.fromtimestamp(v / 1000.0, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError("ts in epoch milliseconds is out of range") from None


class StrictInput(Strict):
    """Input is read strictly: no coercion of types (a boolean is not a number, "-1" is not a
    timestamp), because a producer's type error should be a dead letter with the field named,
    not a silently different event."""

    model_config = ConfigDict(strict=True)


class ImagePart(StrictInput):
    format: Literal["jpeg", "png"]
    data: str = Field(description=f"base64, at most {MAX_IMAGE_BYTES} bytes decoded")

    @field_validator("data")
    @classmethod
    def _data(cls, v: str) -> str:
        return _b64(v, MAX_IMAGE_BYTES, "image")


class AudioPart(StrictInput):
    format: Literal["wav", "pcm_s16le"]
    data: str = Field(description=f"base64, at most {MAX_AUDIO_BYTES} bytes decoded")
    sample_rate: Annotated[int, Field(ge=4000, le=192_000)] | None = Field(
        default=None, description="Hz; required for pcm_s16le"
    )

    @field_validator("data")
    @classmethod
    def _data(cls, v: str) -> str:
        return _b64(v, MAX_AUDIO_BYTES, "audio")

    @model_validator(mode="after")
    def _rate(self) -> "AudioPart":
        if self.format == "pcm_s16le" and self.sample_rate is None:
            raise ValueError("audio.sample_rate is required for pcm_s16le")
        return self


class Signal(StrictInput):
    sample_rate: Annotated[float, Field(gt=0.0, le=100_000.0)]
    values: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(
        min_length=1, max_length=MAX_SIGNAL_SAMPLES
    )


class Biosignals(StrictInput):
    eeg: Signal | None = None
    ecg: Signal | None = None
    gsr: Signal | None = None

    @model_validator(mode="after")
    def _some(self) -> "Biosignals":
        if self.eeg is None and self.ecg is None and self.gsr is None:
            raise ValueError("biosignals needs at least one of eeg, ecg, gsr")
        return self


class InputEvent(StrictInput):
    schema_version: str = Field(
        default=L.SCHEMA_VERSION, pattern=r"^\d+(\.\d+)?$", description="major.minor; major must be 1"
    )
    event_id: str = Field(min_length=1, max_length=128)
    stream_id: str = Field(min_length=1, max_length=256)
    ts: datetime | None = Field(
        default=None, description="RFC 3339 or epoch milliseconds; default: the record's timestamp"
    )
    text: str | None = Field(
        default=None, description=f"UTF-8, at most the configured limit (default {DEFAULT_MAX_TEXT_BYTES} bytes)"
    )
    lang: str | None = Field(
        default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", description="detected when absent"
    )
    image: ImagePart | None = None
    audio: AudioPart | None = None
    biosignals: Biosignals | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"free, echoed into the result; at most {MAX_METADATA_KEYS} keys, "
        f"{MAX_METADATA_DEPTH} levels, {MAX_METADATA_BYTES} bytes as JSON",
    )

    @field_validator("schema_version")
    @classmethod
    def _major(cls, v: str) -> str:
        if v.split(".")[0] != SUPPORTED_MAJOR:
            raise ValueError(f"unsupported schema_version {v!r}: this worker reads major {SUPPORTED_MAJOR}")
        return v

    @field_validator("ts", mode="before")
    @classmethod
    def _epoch_ms(cls, v: Any) -> Any:
        return None if v is None else _timestamp(v)

    @field_validator("ts")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("ts must carry a timezone (e.g. 2026-01-01T00:00:00Z)")
        return v

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        limit = (info.context or {}).get("max_text_bytes", DEFAULT_MAX_TEXT_BYTES)
        size = len(v.encode("utf-8", errors="surrogatepass"))
        if size > limit:
            raise ValueError(f"text is {size} bytes, over the {limit}-byte limit")
        if not v.strip():
            raise ValueError("text is empty or whitespace only")
        return v

    @field_validator("metadata")
    @classmethod
    def _meta(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Metadata is echoed into the result, so it must stay small and shallow enough to
        serialize there: a nesting bomb must fail here, as a dead letter, not at produce time."""
        if len(v) > MAX_METADATA_KEYS:
            raise ValueError(f"metadata has {len(v)} keys, over the {MAX_METADATA_KEYS}-key limit")
        why = _metadata_bounds(v, MAX_METADATA_DEPTH, MAX_METADATA_BYTES)
        if why is not None:
            raise ValueError(why)
        size = len(json.dumps(v, ensure_ascii=False, default=str).encode("utf-8"))
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is {size} bytes as JSON, over the {MAX_METADATA_BYTES}-byte limit")
        return v

    @model_validator(mode="after")
    def _something(self) -> "InputEvent":
        if self.text is None and self.image is None and self.audio is None and self.biosignals is None:
            raise ValueError("at least one of text, image, audio, biosignals is required")
        return self

    def modalities(self) -> tuple[str, ...]:
        """Non-text parts present, in `labels.MODALITIES` order."""
        return tuple(m for m in L.MODALITIES if getattr(self, m) is not None)
