"""Reading the human-labeled data files strictly: where they are, their bytes, their lines.

Every problem is a `HumanDataError` naming the file and, where there is one, the line
(1-based, counted in the file as it is on disk, header included): a missing file,
bytes that are not UTF-8, CRLF line endings, an empty line, a wrong number of
tab-separated columns, an unexpected label list, a sha256 that differs from
`SHA256SUMS`. Nothing is skipped silently. The layout is described in docs/DATA.md.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

DATA_DIR_ENV = "REDHEART_DATA_DIR"
CHECKSUMS = "SHA256SUMS"


class HumanDataError(ValueError):
    """A human-labeled data file is missing or malformed; the message names the file
    (and the line when there is one)."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{path} line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")


class MissingDataFile(HumanDataError, FileNotFoundError):
    """A file the loader needs does not exist."""


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory: `data_dir` when given, else `$REDHEART_DATA_DIR`."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        raise HumanDataError(
            "<data dir>", f"no data directory: pass --data-dir or set {DATA_DIR_ENV} (layout: docs/DATA.md)"
        )
    path = Path(chosen)
    if not path.is_dir():
        raise MissingDataFile(path, "data directory does not exist (layout: docs/DATA.md)")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise MissingDataFile(path, f"missing ({what}; layout: docs/DATA.md)")
    return path


def read_lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a UTF-8, LF-terminated text file. The final
    line may lack its LF; every other irregularity is an error naming the line."""
    data = require_file(path, what).read_bytes()
    if not data:
        raise HumanDataError(path, "empty file")
    if data.startswith(b"\xef\xbb\xbf"):
        raise HumanDataError(path, "starts with a UTF-8 byte-order mark; expected plain UTF-8", 1)
    chunks = data.split(b"\n")
    if chunks[-1] == b"":
        chunks.pop()
    for number, raw in enumerate(chunks, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HumanDataError(path, f"not valid UTF-8 (byte {exc.start} of the line: {raw[exc.start:exc.start + 4]!r})",
                                 number) from None
        if line.endswith("\r"):
            raise HumanDataError(path, "CRLF line ending; the format is LF only", number)
        if not line.strip():
            raise HumanDataError(path, "empty line", number)
        yield number, line


def read_tsv(path: Path, columns: tuple[str, ...], what: str, header: bool = False) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) per row of a tab-separated file with exactly `columns`. With
    `header`, the first line must be exactly the column names and is not returned."""
    lines = read_lines(path, what)
    if header:
        first = next(lines, None)
        if first is None:
            raise HumanDataError(path, f"no header line; expected {'<TAB>'.join(columns)}")
        if first[1].split("\t") != list(columns):
            raise HumanDataError(path, f"header {first[1]!r}; expected {'<TAB>'.join(columns)}", first[0])
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise HumanDataError(
                path, f"{len(fields)} tab-separated columns, expected {len(columns)} ({', '.join(columns)})", number
            )
        yield number, fields


def read_label_list(path: Path, expected: tuple[str, ...], what: str) -> tuple[str, ...]:
    """The label names of a one-label-per-line file (label id = line number - 1), which
    must be exactly `expected`: the mapping onto our emotions is written for that list."""
    labels = [line.strip() for _, line in read_lines(path, what)]
    for i, (got, want) in enumerate(zip(labels, expected)):
        if got != want:
            raise HumanDataError(path, f"label {got!r} where the published list has {want!r} (id {i})", i + 1)
    if len(labels) != len(expected):
        raise HumanDataError(path, f"{len(labels)} labels, the published list has {len(expected)}")
    return tuple(labels)


def parse_label_ids(path: Path, number: int, field: str, labels: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated label ids (`"2,17"`) -> label names; at least one, no repeats."""
    if not field:
        raise HumanDataError(path, "no label id", number)
    names: list[str] = []
    for token in field.split(","):
        if not re.fullmatch(r"[0-9]+", token):
            raise HumanDataError(path, f"label id {token!r} is not a non-negative integer (field {field!r})", number)
        index = int(token)
        if index >= len(labels):
            raise HumanDataError(path, f"unknown label id {index} (ids are 0-{len(labels) - 1})", number)
        if labels[index] in names:
            raise HumanDataError(path, f"label id {index} listed twice (field {field!r})", number)
        names.append(labels[index])
    return tuple(names)


def text_field(path: Path, number: int, value: str) -> str:
    """The text, stripped of surrounding whitespace; empty is an error."""
    text = value.strip()
    if not text:
        raise HumanDataError(path, "empty text", number)
    return text


def unique_id(path: Path, number: int, value: str, seen: dict[str, int]) -> str:
    if not value.strip() or value != value.strip():
        raise HumanDataError(path, f"id {value!r} is empty or has surrounding whitespace", number)
    if value in seen:
        raise HumanDataError(path, f"id {value!r} already on line {seen[value]}", number)
    seen[value] = number
    return value


def verify_checksums(data_dir: Path, relpaths: Iterable[str]) -> list[str]:
    """Check `relpaths` (relative to `data_dir`, `/`-separated) against `SHA256SUMS` in
    `data_dir` when that file exists; returns the paths verified. A path not listed there
    is not verified; a listed one that differs is an error naming the file."""
    sums_path = data_dir / CHECKSUMS
    if not sums_path.is_file():
        return []
    listed: dict[str, tuple[str, int]] = {}
    for number, line in read_lines(sums_path, "checksums"):
        match = re.fullmatch(r"([0-9a-fA-F]{64}) [ *](.+)", line)
        if not match:
            raise HumanDataError(sums_path, f"not a sha256sum line: {line[:80]!r}", number)
        listed[match.group(2).removeprefix("./")] = (match.group(1).lower(), number)
    verified = []
    for rel in relpaths:
        if rel not in listed:
            continue
        want, number = listed[rel]
        path = require_file(data_dir / rel, f"listed in {CHECKSUMS} line {number}")
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != want:
            raise HumanDataError(path, f"sha256 {digest.hexdigest()} differs from {CHECKSUMS} line {number} ({want})")
        verified.append(rel)
    return verified
