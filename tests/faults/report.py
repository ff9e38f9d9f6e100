"""Fault-suite figures, written into docs/RELIABILITY.md by the suite itself."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import orjson
from confluent_kafka import Message

from schemas import labels as L

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "faults.json"
DOC = ROOT / "docs" / "RELIABILITY.md"

HEADER = """# Reliability

Figures from `tests/faults/`, regenerated each time `make test` runs them (the table below is
rewritten by the suite; do not edit it by hand). Each row is one scenario on one broker.
"Duplicates identical" compares every field a duplicate result shares with its first copy
except `processed_at`, `latency_ms` and `cached` (when and how fast it was computed); floats
to 1e-5 relative / 2e-6 absolute, since a duplicate is recomputed in another micro-batch,
batched float reductions differ in the last bits, and results are written at 6 decimals (two
values a hair apart can round one unit apart; the suite prints how many were bitwise equal).
After a SIGKILL, duplicates are the results produced since the last commit (every 100 ms): the
kill test repeats a few sentences, so the result cache makes the worker fast and the count
swings between runs (6 to ~750) with where the kills land; exactly-once rows also count the
aborted transactions the embedded broker shows (docs/OPERATIONS.md, "Delivery guarantees").
The hostile-review rows (`tests/faults/test_poison.py`, `tests/unit/test_accept_fuzz.py`) check
the rule that no record stops a partition (docs/OPERATIONS.md, "Bad records never stop a
partition"): their notes say how each hostile record ended, and the fuzz row counts exceptions
that escaped the precise checks (`internal_error`), which must be 0.

| scenario | broker | delivery | events | kills / restarts | results missing | duplicates | duplicates identical | dead letters | notes |
|---|---|---|---:|---:|---:|---:|---|---:|---|
"""


def record(row: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    row["at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows[f"{row['scenario']}|{row['broker']}|{row['delivery']}"] = row
    RESULTS.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    lines = [
        f"| {r['scenario']} | {r['broker']} | {r['delivery']} | {r['events']} | {r['kills']} | {r['missing']} | "
        f"{r['duplicates']} | {r['identical']} | {r['dead_letters']} | {r.get('notes', '')} ({r['at']}) |"
        for r in sorted(rows.values(), key=lambda r: (r["scenario"], r["broker"], r["delivery"]))
    ]
    DOC.write_text(HEADER + "\n".join(lines) + "\n")


# When and how fast a result was computed differ between copies; nothing else may.
VOLATILE = ("processed_at", "latency_ms", "cached")


def comparable(value: bytes) -> bytes:
    obj = orjson.loads(value)
    for k in VOLATILE:
        obj.pop(k, None)
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


_ABS_TOL = 2 * 10.0**-L.DECIMALS  # one unit of the written precision, plus float noise


def delivery_figures(results: Iterable[Message], sent: int) -> tuple[int, int, bool]:
    """(events without a result, duplicate results, every duplicate identical to its first copy).

    Identical means: every field equal, floats to 1e-5 relative / 2e-6 absolute. A duplicate
    is recomputed in another micro-batch (or a first copy came from the result cache), and
    batched float reductions differ in the last bits with batch composition; written at 6
    decimals (labels.DECIMALS), two values a hair apart can round one unit (1e-6) apart.
    Anything that differs beyond that (a count, a label, a state that ran ahead) fails."""
    copies: dict[str, list[bytes]] = defaultdict(list)
    for m in results:
        copies[orjson.loads(m.value())["event_id"]].append(m.value())
    duplicates = sum(len(v) - 1 for v in copies.values())
    pairs = [(orjson.loads(comparable(v[0])), orjson.loads(comparable(x))) for v in copies.values() for x in v[1:]]
    differing = [(a, b) for a, b in pairs if _diff(a, b)]
    bitwise = sum(1 for a, b in pairs if a == b)
    print(f"[faults] duplicates bitwise identical: {bitwise} of {len(pairs)}; beyond float tolerance: {len(differing)}")
    for a, b in differing[:1]:  # say where, so a failure can be read
        print(f"[faults] duplicate of {a['event_id']} differs in: {sorted(_diff(a, b))[:10]}")
    return sent - len(copies), duplicates, not differing


def _diff(a: object, b: object, path: str = "") -> set[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: set[str] = set()
        for k in set(a) | set(b):
            out |= _diff(a.get(k), b.get(k), f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return {p for x, y in zip(a, b) for p in _diff(x, y, path + "[]")}
    if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-5, abs_tol=_ABS_TOL):
        return set()
    return set() if a == b else {f"{path}: {a!r:.40} != {b!r:.40}"}
