"""Worker overhead: `python -m bench.overhead`.

The real worker (`Driver` + `Engine`: decode, validation, batcher, temporal state, result building, changelog,
checkpoints) with a no-op model, against a bare confluent-kafka consume->produce loop, on
the same embedded broker (Tansu, memory storage) and the same pre-loaded messages.

Method (produce-all-then-process): each run gets its own topics, pre-loaded with the same
N events; a read_committed reader subscribes to the output topic, then the processor
process starts (`python -m bench.overhead --serve-noop|--serve-bare`, its own process, so
the reader and the processor do not share a GIL). Rate = (N-1) / (time of the N-th output
record - time of the first), as seen by the reader.

`NoOpAnalyzer` is a benchmark stub (never used by the worker itself): its `run` returns one
constant `Analyzed` per event, computed ONCE by the real small pipeline (untrained) on one
text, so everything but the model is the real worker.

The bare loop uses the worker's librdkafka defaults (`worker.kafka.consumer_config` /
`producer_config`: read_committed, idempotent producer, acks=all, lz4, linger 5 ms), no
validation, echoes each value to the output topic, and commits offsets synchronously after
a producer flush every 100 ms (at-least-once semantics, no transactions).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench._common import (
    SENTENCES_EN, SENTENCES_KO, create_topics, machine, md_table, now_iso, reader, spawn, time_outputs, worker_env,
    write_json,
)


class NoOpAnalyzer:
    """Benchmark stub with the engine's `Backend` protocol: a constant analysis per event."""

    def __init__(self, constant: Any, profile: str = "small") -> None:
        self.constant = constant
        self.profile = profile
        self.trained = False
        self.checkpoint_id: str | None = None
        self.device = "cpu"

    def count_tokens(self, text: str) -> int:
        return 1 + len(text) // 4

    def reject_reason(self, event: Any) -> str | None:
        return None if event.text is not None and not event.modalities() else "no-op analyzer: text only"

    def extract(self, event: Any) -> None:
        return None

    def prepare(self, events: list[Any], parts: list[Any] | None = None) -> list[Any]:
        return events

    def run(self, prepared: list[Any]) -> list[Any]:
        return [self.constant] * len(prepared)

    def status(self) -> dict[str, Any]:
        return {"profile": self.profile, "device": self.device, "trained": False, "noop": True}


def constant_analysis_json() -> bytes:
    """One real analysis from the small pipeline (untrained), computed once: its
    `EventAnalysis` and observation as JSON."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from pipeline.api import Pipeline
    from schemas.input import InputEvent

    pipe = Pipeline.load("small", checkpoint=None, allow_untrained=True, device="cpu", num_threads=2)
    [a] = pipe.run(pipe.prepare([InputEvent(event_id="c", stream_id="c", text=SENTENCES_EN[0])]))
    return orjson.dumps({"result": a.result.model_dump(mode="json"), "observation": a.observation.tolist()})


def constant_analysis(path: str) -> Any:
    """`constant_analysis_json`'s file back as an `Analyzed`."""
    import numpy as np

    from pipeline.analysis import Analyzed
    from schemas.result import EventAnalysis

    data = orjson.loads(Path(path).read_bytes())
    return Analyzed(EventAnalysis.model_validate(data["result"]), np.asarray(data["observation"], dtype=np.float64))


# ---- the two processors (run in their own process) -------------------------------------

def serve_noop(constant_path: str) -> int:
    from worker import logs
    from worker.config import Settings
    from worker.driver import Driver

    settings = Settings()
    logs.setup(settings.log_level)
    return Driver(settings, NoOpAnalyzer(constant_analysis(constant_path))).run()


def serve_bare(value_path: str | None = None) -> int:
    """Echo each input value, or (`value_path`) write that file's bytes instead: one of the
    worker's own results, so both sides move the same bytes through the broker."""
    from confluent_kafka import Consumer, Producer

    from worker import kafka
    from worker.config import Settings

    s = Settings()
    fixed = Path(value_path).read_bytes() if value_path else None
    consumer = Consumer(kafka.consumer_config(s))
    producer = Producer(kafka.producer_config(s))
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    consumer.subscribe([s.input_topic])
    last_commit = time.monotonic()
    pending = False
    try:
        while not stopping:
            for msg in consumer.consume(num_messages=s.max_batch_events, timeout=0.1):
                if msg.error() is not None:
                    continue
                while True:
                    try:
                        producer.produce(s.results_topic, value=fixed or msg.value(), key=msg.key())
                        break
                    except BufferError:
                        producer.poll(0.05)
                consumer.store_offsets(msg)
                pending = True
            producer.poll(0)
            if pending and time.monotonic() - last_commit >= s.commit_interval_ms / 1000.0:
                producer.flush(30)
                consumer.commit(asynchronous=False)
                last_commit, pending = time.monotonic(), False
    finally:
        producer.flush(30)
        if pending:
            consumer.commit(asynchronous=False)
        consumer.close()
    return 0


# ---- the driver --------------------------------------------------------------------------

def make_events(n: int, streams: int) -> list[tuple[bytes, bytes]]:
    texts = SENTENCES_EN + SENTENCES_KO
    out = []
    for i in range(n):
        sid = f"s{i % streams}"
        ev = {"event_id": f"e{i}", "stream_id": sid, "ts": "2026-01-01T00:00:00Z", "text": texts[i % len(texts)]}
        out.append((sid.encode(), orjson.dumps(ev)))
    return out


def preload(bootstrap: str, topic: str, events: list[tuple[bytes, bytes]]) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    from worker.kafka import produce

    for key, value in events:
        produce(p, topic, value, key)
    if p.flush(60):
        raise RuntimeError("pre-load not acknowledged")


def run_one(bootstrap: str, kind: str, delivery: str, events: list[tuple[bytes, bytes]], partitions: int,
            constant_path: Path, timeout_s: float, log_dir: Path, value_path: Path | None = None) -> dict[str, Any]:
    prefix = f"bench-{kind}-{delivery}-{time.monotonic_ns() % 10**8}"
    names = create_topics(bootstrap, prefix, partitions)
    preload(bootstrap, names["input_topic"], events)
    n = len(events)
    env = worker_env(bootstrap, prefix, 0, REDHEART_DELIVERY=delivery, REDHEART_LOG_LEVEL="WARNING")
    rd = reader(bootstrap, names["results_topic"])
    t_wait = time.monotonic() + 15
    while not rd.assignment() and time.monotonic() < t_wait:
        rd.poll(0.1)
    args = ["-m", "bench.overhead", "--serve-noop", str(constant_path)] if kind == "worker" else \
        ["-m", "bench.overhead", "--serve-bare"] + (["--bare-value", str(value_path)] if value_path else [])
    log_path = log_dir / f"{prefix}.log"
    started = time.monotonic()
    proc = spawn(args, env, log_path)
    seen = {"bytes": 0, "sample": b""}

    def keep(value: bytes) -> None:
        seen["bytes"] += len(value)  # type: ignore[operator]
        seen["sample"] = value

    count, t_first, t_last, rc = time_outputs(proc, rd, n, started, timeout_s, log_path, f"{kind}/{delivery}", keep)
    out_bytes, sample = seen["bytes"], seen["sample"]
    return {
        "processor": kind,
        "delivery": delivery if kind == "worker" else "at-least-once (flush+commit every 100 ms)",
        "events": n,
        "results_read": count,
        "first_to_last_s": round(t_last - t_first, 3),
        "start_to_last_s": round(t_last - started, 3),
        "events_per_s": round((n - 1) / (t_last - t_first), 1),
        "events_per_s_incl_start": round(n / (t_last - started), 1),
        "avg_output_bytes": round(out_bytes / count),
        "exit_code": rc,
        "_sample": sample,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.overhead", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--streams", type=int, default=100, help="distinct stream_ids (worker temporal state)")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--deliveries", nargs="+", default=["at-least-once", "exactly-once"],
                    choices=["at-least-once", "exactly-once"])
    ap.add_argument("--timeout", type=float, default=120.0, help="per run")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--serve-noop", metavar="CONSTANT_JSON", help=argparse.SUPPRESS)
    ap.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bare-value", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_noop:
        return serve_noop(args.serve_noop)
    if args.serve_bare:
        return serve_bare(args.bare_value)

    from bench.report import write_section
    from worker.devbroker import DevBroker

    log_dir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    constant_path = log_dir / "constant.json"
    constant_path.write_bytes(constant_analysis_json())
    events = make_events(args.events, args.streams)
    rows: list[dict[str, Any]] = []
    with DevBroker(log_path=log_dir / "broker.log") as broker:
        rows.append(run_one(broker.bootstrap, "bare", "at-least-once", events, args.partitions, constant_path, args.timeout, log_dir))
        print({k: v for k, v in rows[-1].items() if k != "_sample"}, flush=True)
        for delivery in args.deliveries:
            rows.append(run_one(broker.bootstrap, "worker", delivery, events, args.partitions, constant_path,
                                args.timeout, log_dir))
            print({k: v for k, v in rows[-1].items() if k != "_sample"}, flush=True)
        value_path = log_dir / "result-sample.json"
        value_path.write_bytes(rows[-1]["_sample"])
        rows.append(run_one(broker.bootstrap, "bare-sized", "at-least-once", events, args.partitions,
                            constant_path, args.timeout, log_dir, value_path))
        print({k: v for k, v in rows[-1].items() if k != "_sample"}, flush=True)
    bare, sized = rows[0], rows[-1]
    for r in rows:
        r.pop("_sample", None)
        r["ratio_to_bare"] = round(r["events_per_s"] / bare["events_per_s"], 3)
        r["ratio_to_bare_incl_start"] = round(r["events_per_s_incl_start"] / bare["events_per_s_incl_start"], 3)
        r["ratio_to_result_sized_bare"] = round(r["events_per_s"] / sized["events_per_s"], 3)
    report = {
        "bench": "overhead",
        "date": now_iso(),
        "machine": machine("cpu"),
        "profile": "small (no-op model: constant EventAnalysis from the untrained small pipeline)",
        "broker": "embedded Tansu (memory storage), 127.0.0.1",
        "config": {k: v for k, v in vars(args).items() if not k.startswith("serve")},
        "worker_env": {"commit_interval_ms": 100, "cache_size": 0, "max_batch_events": 64, "max_wait_ms": 20,
                       "consumer_config": {"session.timeout.ms": 2000, "heartbeat.interval.ms": 300}},
        "target": "worker rate >= 0.8 x bare loop (docs/TARGETS.md)",
        "results": rows,
        "logs": str(log_dir),
    }
    path = write_json("overhead", report)
    label = {"bare": "bare loop, echo", "bare-sized": "bare loop, result-sized values", "worker": "worker (no-op model)"}
    table = md_table(["processor", "delivery", "events", "first→last s", "events/s", "µs/event", "ratio to echo loop",
                      "ratio to result-sized loop", "events/s incl. process start", "avg output bytes"],
                     [[label[r["processor"]], r["delivery"], r["events"], r["first_to_last_s"], r["events_per_s"],
                       round(1e6 / r["events_per_s"], 1), r["ratio_to_bare"], r["ratio_to_result_sized_bare"],
                       r["events_per_s_incl_start"], r["avg_output_bytes"]] for r in rows],
                     "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(table)
    print(f"wrote {path}")
    m = report["machine"]
    if not args.no_doc:
        write_section(
            "overhead",
            "## Worker overhead (`python -m bench.overhead`)\n\n"
            f"Target (docs/TARGETS.md): the worker with a no-op model reaches ≥ 0.8× a bare confluent-kafka consume→produce "
            f"loop. Device: CPU ({m['cpu']}, {m['cores']} cores, shared with the broker and the reader), "
            f"confluent-kafka {m['confluent_kafka']} / librdkafka {m['librdkafka']}, broker {report['broker']}. "
            f"{args.events:,} pre-loaded small KO/EN events ({args.streams} streams, {args.partitions} partitions); "
            "each processor runs as its own process and a read_committed reader times first→last output record. "
            "Worker: the real `Driver` and `Engine` with `NoOpAnalyzer` (a benchmark stub returning one constant analysis, "
            "computed once by the untrained small pipeline), commit interval 100 ms, cache 0. Bare loop: the "
            "worker's librdkafka defaults, flush+sync commit every 100 ms, run twice: echoing each input value "
            "(139 bytes), and writing one of the worker's own results (captured from its run) for every input, "
            "so that both sides move the same bytes through the broker. The worker also writes state changelog "
            "records and runs every stream's Kalman step, SURD and spectra. The echo loop's first→last window is "
            "a fraction of a second (noisy); `incl. process start` (N / time from spawning the processor to its "
            "last record) is a conservative lower bound for all.\n\n"
            + table,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
