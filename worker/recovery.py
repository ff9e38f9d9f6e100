"""Recognising, after a hard crash, the record that caused it.

Every exception a record's content can raise is caught where it is handled and turns into a
dead letter. What cannot be caught — a segfault in a native decoder, the kernel's OOM killer,
an `os.abort` in a C extension — kills the process before the offset commits, and without
help every restart would die on the same record. So the worker keeps a small marker file
(one per instance, under `REDHEART_RECOVERY_DIR`, which must outlive the container: an
emptyDir in Kubernetes):

  - `consumed`: per input partition, the highest offset handed to the worker. After a crash,
    every re-delivered record up to it (the uncommitted tail) is a *suspect*: it is handled
    alone, one record at a time, never in a batch with others;
  - `alone`: the one suspect being handled right now, with the number of earlier deaths
    while it was alone. A process that dies during it leaves it in the file, and the next
    start decides:
      * the death left a native-crash report (Python's `faulthandler` writes one to
        `crash.<instance>.log` beside the marker on SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL):
        the record crashed the process by itself — it is dead-lettered (`internal_error`,
        the report's first line in the reason) instead of being handled again;
      * no report (SIGKILL: the OOM killer, or a kill that had nothing to do with the
        record, such as a node drain): one more death is counted, and the record is
        dead-lettered once it has died alone `poison_after` times (default 3), so an
        unrelated kill during recovery never dead-letters a good record.

A clean stop removes the file. A crash that has nothing to do with a record (a lost broker)
only costs the next start a slower, one-by-one pass over the uncommitted tail. The file is
written with write-to-temp + rename, so a crash mid-write leaves the previous marker.

Known limit: the marker is local to the instance. A suspect re-delivered to another worker
after a rebalance is handled there in a batch again (a second crash, there, starts the same
recognition).
"""

from __future__ import annotations

import faulthandler
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

Verdict = Literal["normal", "alone", "poison"]
_ONE_PAGE = 4096
TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Alone:
    topic: str
    partition: int
    offset: int
    crashes: int  # deaths so far while this record was handled alone


def _key(topic: str, partition: int) -> str:
    return f"{partition}:{topic}"


class CrashMarker:
    def __init__(self, path: Path, poison_after: int = 3) -> None:
        self.path = path
        self.crash_log = path.with_name(path.name.replace("inflight.", "crash.", 1).removesuffix(".json") + ".log")
        self.poison_after = poison_after
        self._fd: int | None = None  # the marker file, open from the first write until `clear`
        self._written = 0
        previous = self._read()
        self._suspect_upto: dict[str, int] = dict(previous.get("consumed", {}))
        alone = previous.get("alone")
        self.crashed = bool(previous)  # a marker left behind: the last process did not stop cleanly
        # what the last process's faulthandler wrote when it died of a fatal signal ("" if nothing)
        self.native_crash = self._native_report() if self.crashed else ""
        # a record that was alone when the process died: one more death on its count
        self._died_alone: Alone | None = (
            Alone(alone["topic"], alone["partition"], alone["offset"], alone["crashes"] + 1) if alone else None
        )
        self._log_file: Any = None
        self._consumed: dict[str, int] = dict(self._suspect_upto)  # carried until the suspects are re-read
        self._alone: Alone | None = None
        self._dirty = False

    # -- what the last process left ---------------------------------------------------------
    def _read(self) -> dict:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError):
            return {}  # unreadable marker: treat as none (it only ever speeds a restart up)
        if not isinstance(data, dict):
            return {}
        consumed = data.get("consumed")
        alone = data.get("alone")
        ok_consumed = isinstance(consumed, dict) and all(isinstance(v, int) for v in consumed.values())
        ok_alone = alone is None or (
            isinstance(alone, dict)
            and isinstance(alone.get("topic"), str)
            and all(isinstance(alone.get(k), int) for k in ("partition", "offset", "crashes"))
        )
        if not (ok_consumed and ok_alone):
            return {}
        return data

    def _native_report(self) -> str:
        try:
            return self.crash_log.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""

    def arm(self) -> None:
        """Have a fatal signal in this process leave a report for the next start (faulthandler
        writes it from the signal handler; the file is truncated now, after the last
        process's report was read)."""
        self.crash_log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.crash_log, "w", encoding="utf-8")  # noqa: SIM115 - open for the process's life
        faulthandler.enable(file=self._log_file, all_threads=True)

    def verdict(self, topic: str, partition: int, offset: int) -> tuple[Verdict, int]:
        """How to handle a record: in a batch (`normal`), by itself (`alone`: it was in flight
        when the last process died), or not at all (`poison`: the process died of a native
        crash while it was alone, or was killed while it was alone `poison_after` times).
        Also returns the deaths it carries."""
        d = self._died_alone
        if d is not None and (d.topic, d.partition, d.offset) == (topic, partition, offset):
            poison = bool(self.native_crash) or d.crashes >= self.poison_after
            return ("poison" if poison else "alone"), d.crashes
        upto = self._suspect_upto.get(_key(topic, partition))
        if upto is not None and offset <= upto:
            return "alone", 0
        return "normal", 0

    # -- what this process records ----------------------------------------------------------
    def consumed(self, topic: str, partition: int, offset: int) -> None:
        k = _key(topic, partition)
        if offset > self._consumed.get(k, -1):
            self._consumed[k] = offset
            self._dirty = True

    def flush(self) -> None:
        """Write the consumed offsets if they moved (once per poll, not per record)."""
        if self._dirty:
            self._write()

    def begin_alone(self, topic: str, partition: int, offset: int, crashes: int) -> None:
        self._alone = Alone(topic, partition, offset, crashes)
        self._write()

    def end_alone(self) -> None:
        self._alone = None
        self._write()

    def clear(self) -> None:
        """A clean stop: nothing is suspect at the next start."""
        if self._log_file is not None:
            faulthandler.disable()
            self._log_file.close()
            self._log_file = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for path in (self.path, self.crash_log):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def _write(self) -> None:
        """One `pwrite` at offset 0 of a descriptor kept open (this runs before every batch of
        consumed records, so it is one system call, not a create-and-rename). A write of less
        than a page is never cut short by the process dying, so the file always holds one
        whole marker; a shorter marker is padded with spaces over the longer one before it
        (JSON allows trailing whitespace)."""
        a = self._alone
        data = orjson.dumps({
            "consumed": self._consumed,
            "alone": None if a is None else {"topic": a.topic, "partition": a.partition, "offset": a.offset,
                                              "crashes": a.crashes},
        })
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
            self._written = 0
        padded = data + b" " * (self._written - len(data)) if len(data) < self._written else data
        if len(padded) <= _ONE_PAGE:
            os.pwrite(self._fd, padded, 0)
            self._written = len(padded)
        else:  # (hundreds of partitions) too long for one page: a new file, renamed over the old
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_RDWR)
            self._written = len(data)
        self._dirty = False


def marker_path(recovery_dir: Path, group_id: str, instance: str) -> Path:
    """One file per (group, instance): two workers on one host never share a marker."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{group_id}.{instance}")
    return recovery_dir / f"inflight.{safe}.json"
