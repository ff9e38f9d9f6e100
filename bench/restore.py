"""State restore time on the embedded broker: `python -m bench.restore`.

For each size (default 10k and 100k streams) it writes one changelog record per stream
(a `StreamState` with a `--window`-row window) to one partition of a fresh state topic on
a fresh embedded broker (Tansu, memory storage), then times `StateStore.restore` of that
partition (read to partition EOF, parse, keep what is below the committed offset, validate
the survivors). Writes bench/results/restore.json and prints a markdown table.
Bounded: each restore has a `--timeout` (default 300 s) and raises past it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.report import write_section
from schemas import labels as L
from schemas.state import StreamState
from worker.devbroker import DevBroker
from worker.state import StateStore, produce_changelog

RESULTS = Path(__file__).parent / "results" / "restore.json"


def make_state(i: int, window: int) -> StreamState:
    row = [round((i * 7 + k) % 100 / 100, 4) for k in range(len(L.STATE_VECTOR))]
    return StreamState(
        stream_id=f"stream-{i:07d}",
        input_partition=0,
        input_offset=i,
        last_ts=datetime(2026, 1, 1, tzinfo=UTC),
        events_seen=1 + i % 1000,
        mean=dict(zip(L.STATE_VECTOR, row)),
        variance={n: 0.01 for n in L.STATE_VECTOR},
        window=[row] * window,
    )


def run_one(streams: int, window: int, timeout_s: float) -> dict[str, Any]:
    with DevBroker() as broker:
        topic = "bench.state"
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
        producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                             "queue.buffering.max.messages": 1_000_000})
        writer = StateStore(topic)
        started = time.perf_counter()
        for i in range(streams):
            writer.put(make_state(i, window))
        records = writer.changelog_records()
        serialize_s = time.perf_counter() - started
        value_bytes = sum(len(v) for _, _, v in records if v is not None)
        started = time.perf_counter()
        produce_changelog(producer, topic, records)
        if producer.flush(timeout_s):
            raise RuntimeError("changelog not acknowledged")
        produce_s = time.perf_counter() - started
        del records, writer

        def factory(overrides: dict[str, Any]) -> Consumer:
            return Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench.restore",
                             "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760, **overrides})

        reader = StateStore(topic)
        stats = reader.restore(factory, 0, committed_offset=streams, timeout_s=timeout_s)
        if stats.restored != streams:
            raise RuntimeError(f"restored {stats.restored} of {streams} streams")
        return {
            "streams": streams,
            "window_rows": window,
            "changelog_mb": round(value_bytes / 1e6, 1),
            "serialize_s": round(serialize_s, 2),
            "produce_s": round(produce_s, 2),
            "restore_s": round(stats.seconds, 2),
            "restore_streams_per_s": round(streams / stats.seconds),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.restore", description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--window", type=int, default=8, help="window rows per stream (max 512)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    rows = [run_one(n, args.window, args.timeout) for n in args.streams]
    report = {
        "bench": "restore",
        "broker": "embedded Tansu (memory storage), 127.0.0.1",
        "what": "StateStore.restore of one state-topic partition holding one record per stream, read to "
        "partition EOF; restore_s includes consumer start, fetch, offset filtering and validation",
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "confluent_kafka": confluent_kafka.__version__, "librdkafka": confluent_kafka.libversion()[0]},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    table = ["| streams | window rows | changelog MB | restore s | streams/s |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        table.append(
            f"| {r['streams']:,} | {r['window_rows']} | {r['changelog_mb']} | {r['restore_s']} | {r['restore_streams_per_s']:,} |"
        )
    print("\n".join(table))
    m = report["machine"]
    write_section(
        "restore",
        "## State restore (`python -m bench.restore`)\n\n"
        f"{report['what']}. Broker: {report['broker']}. Device: CPU ({m['cpu']}, 2 cores), "
        f"Python {m['python']}, confluent-kafka {m['confluent_kafka']} / librdkafka {m['librdkafka']}.\n\n"
        + "\n".join(table),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
