"""Fault-suite figures, written into docs/RELIABILITY.md by the suite itself."""

from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "faults.json"
DOC = ROOT / "docs" / "RELIABILITY.md"

HEADER = """# Reliability

Figures from `tests/faults/`, regenerated each time `make test` runs them (the table below is
rewritten by the suite; do not edit it by hand). Each row is one scenario on one broker.
"Duplicates identical" compares every field a duplicate result shares with its first copy
except `processed_at`, `latency_ms` and `cached` (when and how fast it was computed).

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
