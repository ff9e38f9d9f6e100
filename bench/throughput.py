"""Worker throughput against an earlier commit: `python -m bench.throughput [--base REV]`.

The workload is result-cache-heavy: N events (default 20,000) over S streams (300) whose
texts come from a dozen sentences, so after the first batches every analysis is a cache
hit and what is measured is the worker's own bookkeeping per event: consume, decode, cache
lookup, the stream's temporal state (Kalman, window, SURD, spectra), the result and its
JSON, produce, changelog, checkpoints.

Both workers run as `python -m worker run` with default settings (exactly-once, cache 1000,
full result detail), one after the other, on the same embedded broker, each on its own
pre-loaded topics: the base revision from a `git worktree` of it (`--allow-untrained`:
its code cannot read this checkpoint; with a warm cache the model is not what is timed),
HEAD as it ships. Rounds alternate base and HEAD. Rate = (N - 1) / (time of the N-th
result - time of the first), as a read_committed reader sees it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench import _common
from bench._common import (
    ROOT, SENTENCES_EN, SENTENCES_KO, create_topics, machine, md_table, now_iso, reader, time_outputs, write_json,
)
from bench.overhead import preload

BASE = "4052777"


def make_events(n: int, streams: int) -> list[tuple[bytes, bytes]]:
    texts = (SENTENCES_EN[:6] + SENTENCES_KO[:6])
    out = []
    for i in range(n):
        sid = f"s{i % streams}"
        ev = {"event_id": f"e{i}", "stream_id": sid, "ts": f"2026-01-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:"
              f"{i % 60:02d}Z", "text": texts[(i * 7) % len(texts)]}
        out.append((sid.encode(), orjson.dumps(ev)))
    return out


def worker_env(bootstrap: str, prefix: str, port: int) -> dict[str, str]:
    """The benches' worker environment (topics, group, port, quick rebalances), but with the
    worker's own defaults where the other benches pin values (cache, threads)."""
    env = _common.worker_env(bootstrap, prefix, port)
    for name in ("REDHEART_CACHE_SIZE", "REDHEART_NUM_THREADS"):
        del env[name]
    return env


def run_one(bootstrap: str, name: str, cwd: Path, args: list[str], events: list[tuple[bytes, bytes]],
            partitions: int, timeout_s: float, log_dir: Path) -> dict[str, Any]:
    prefix = f"thr-{name}-{time.monotonic_ns() % 10**8}"
    names = create_topics(bootstrap, prefix, partitions)
    preload(bootstrap, names["input_topic"], events)
    rd = reader(bootstrap, names["results_topic"])
    t_wait = time.monotonic() + 15
    while not rd.assignment() and time.monotonic() < t_wait:
        rd.poll(0.1)
    log_path = log_dir / f"{prefix}.log"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "worker", "run", *args], env=worker_env(bootstrap, prefix, 0),
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"))
    n, cached = len(events), [0]

    def count_cached(value: bytes) -> None:
        cached[0] += b'"cached":true' in value

    _, t_first, t_last, rc = time_outputs(proc, rd, n, started, timeout_s, log_path, name, count_cached)
    return {"worker": name, "events": n, "cached_results": cached[0], "first_to_last_s": round(t_last - t_first, 3),
            "results_per_s": round((n - 1) / (t_last - t_first), 1),
            "us_per_event": round((t_last - t_first) / (n - 1) * 1e6, 1),
            "start_to_last_s": round(t_last - started, 1), "exit_code": rc}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=BASE, help="git revision to compare with")
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--streams", type=int, default=300)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600.0, help="per run")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)

    from bench.report import write_section
    from worker.devbroker import DevBroker

    log_dir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    base_dir = log_dir / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_dir), args.base],
                   check=True, capture_output=True)
    base_rev = subprocess.run(["git", "-C", str(base_dir), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    head_rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True).stdout.strip())
    events = make_events(args.events, args.streams)
    rows: list[dict[str, Any]] = []
    try:
        with DevBroker(log_path=log_dir / "broker.log") as broker:
            for r in range(args.rounds):
                for name, cwd, extra in (("base", base_dir, ["--allow-untrained"]), ("head", ROOT, [])):
                    row = run_one(broker.bootstrap, name, cwd, extra, events, args.partitions, args.timeout, log_dir)
                    row["round"] = r + 1
                    rows.append(row)
                    print(row, flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_dir)], capture_output=True)
    best = {name: max(r["results_per_s"] for r in rows if r["worker"] == name) for name in ("base", "head")}
    ratios = [h["results_per_s"] / b["results_per_s"] for b, h in zip(rows[0::2], rows[1::2])]
    report = {
        "bench": "throughput", "date": now_iso(), "machine": machine("cpu"),
        "base": base_rev, "head": head_rev + ("+changes" if dirty else ""),
        "workload": {"events": args.events, "streams": args.streams, "partitions": args.partitions,
                     "sentences": 12, "settings": "defaults (exactly-once, cache 1000, full detail)"},
        "results": rows, "best_results_per_s": best, "ratio_per_round": [round(x, 2) for x in ratios],
        "logs": str(log_dir),
    }
    path = write_json("throughput", report)
    label = {"base": f"base {base_rev}", "head": f"HEAD {report['head']}"}
    table = md_table(["round", "worker", "events", "cached results", "first→last s", "results/s", "µs/event"],
                     [[r["round"], label[r["worker"]], r["events"], r["cached_results"], r["first_to_last_s"],
                       r["results_per_s"], r["us_per_event"]] for r in rows],
                     "|---:|---|---:|---:|---:|---:|---:|")
    print(table)
    print(f"HEAD / base per round: {report['ratio_per_round']}; wrote {path}")
    if not args.no_doc:
        m = report["machine"]
        write_section(
            "throughput",
            "## Throughput against an earlier commit (`python -m bench.throughput`)\n\n"
            f"Result-cache-heavy workload: {args.events:,} events over {args.streams} streams whose texts come from "
            f"12 sentences ({args.partitions} partitions), pre-loaded; `python -m worker run` with default settings "
            f"(exactly-once, cache 1000, full result detail) at base {base_rev} (a git worktree, "
            "`--allow-untrained`: its code cannot read this checkpoint; with a warm cache the model is not what is "
            f"timed) and at HEAD {report['head']} (the shipped checkpoint), one after the other on the same embedded "
            f"broker, rounds alternating. Device: CPU ({m['cpu']}, {m['cores']} cores shared with the broker and "
            "the reader). Rate = results / first→last result as a read_committed reader sees them.\n\n"
            + table
            + f"\n\n**HEAD / base: {', '.join(f'{x:.2f}×' for x in ratios)}** (per round).",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
