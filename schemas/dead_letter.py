"""`DeadLetter`: why an input record went to `redheart.dlq` (docs/CONTRACT.md, "Dead letters").

The DLQ record's value is the original bytes, unchanged, and its key the original key;
this model describes the headers added beside them, so a consumer of the DLQ can
parse them with the same schema the worker writes them with.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas._base import Strict

ErrorClass = Literal[
    "invalid_json",
    "invalid_encoding",
    "schema_violation",
    "unsupported_version",
    "oversized",
    "unsupported_modality",
    "invalid_modality",
    "model_rejected",
    "invalid_timestamp",  # event time outside the window the worker accepts (see worker/decode.py)
    "internal_error",  # any other exception while handling this one record (the worker goes on)
]

HEADER_ERROR_CLASS = "error.class"
HEADER_ERROR_REASON = "error.reason"
HEADER_SOURCE_TOPIC = "source.topic"
HEADER_SOURCE_PARTITION = "source.partition"
HEADER_SOURCE_OFFSET = "source.offset"
HEADER_WORKER_VERSION = "worker.version"
MAX_REASON_CHARS = 2000


class DeadLetter(Strict):
    error_class: ErrorClass = Field(description="machine-readable kind of failure")
    reason: str = Field(max_length=MAX_REASON_CHARS, description="human-readable, precise")
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    worker_version: str

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers, in a fixed order, appended after the record's own headers."""
        return [
            (HEADER_ERROR_CLASS, self.error_class.encode()),
            (HEADER_ERROR_REASON, self.reason.encode("utf-8")),
            (HEADER_SOURCE_TOPIC, self.source_topic.encode("utf-8")),
            (HEADER_SOURCE_PARTITION, str(self.source_partition).encode()),
            (HEADER_SOURCE_OFFSET, str(self.source_offset).encode()),
            (HEADER_WORKER_VERSION, self.worker_version.encode()),
        ]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | None) -> "DeadLetter":
        """Parse the worker's headers back (the last value of each name wins)."""
        h = {k: v.decode("utf-8") for k, v in (headers or []) if v is not None}
        return cls(
            error_class=h[HEADER_ERROR_CLASS],  # type: ignore[arg-type]
            reason=h[HEADER_ERROR_REASON],
            source_topic=h[HEADER_SOURCE_TOPIC],
            source_partition=int(h[HEADER_SOURCE_PARTITION]),
            source_offset=int(h[HEADER_SOURCE_OFFSET]),
            worker_version=h[HEADER_WORKER_VERSION],
        )
