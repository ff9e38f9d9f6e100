"""Structured logs: one JSON object per line, one line per lifecycle event."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get(name: str) -> logging.Logger:
    return logging.getLogger(name)


class RateLimited:
    """At most one line per kind of repeated event per `every_s` (evictions, internal errors),
    with how many were suppressed since the last: bugs to hear about, never a log flood."""

    def __init__(self, logger: logging.Logger, every_s: float = 60.0) -> None:
        self.logger = logger
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, extra: dict[str, Any], exc_info: Any = None) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.every_s) < self.every_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        self.logger.warning(message, extra={**extra, "suppressed_since_last": self._suppressed.pop(kind, 0)},
                            exc_info=exc_info)

    def internal(self, stage: str, exc: BaseException) -> None:
        """An exception that dead-lettered a record (or cost it its rationale)."""
        self.warning("internal_error", "record dead-lettered: internal error",
                     {"stage": stage, "error": f"{type(exc).__name__}: {exc}"[:500]}, exc_info=exc)
