"""End to end through the broker with the real small pipeline: `python -m bench.e2e`.

A fresh embedded broker (Tansu, memory storage), the real worker as a subprocess
(`python -m worker run --allow-untrained`, untrained small profile, cache off), an
open-loop producer sending short varied KO/EN events at fixed rates (each step bounded by
`--seconds`), and a read_committed reader (a thread in this process) that records, per
result, end-to-end latency = time the result was consumed - the event's send time (the
event's `ts` is set to that send time, epoch ms precision; the same clock is used).

Per rate: results/s (step's results / time from step start to its last result), latency
p50/p95/p99 of the step's results, and how many did not come back within `--drain`
seconds after the step (backlog). The saturation rate is the highest results/s seen.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench._common import (
    SENTENCES_EN, SENTENCES_KO, create_topics, machine, md_table, now_iso, pct, reader, spawn, stop, wait_ready,
    worker_env, write_json,
)
from worker.devbroker import free_port


class Reader(threading.Thread):
    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.consumer = reader(bootstrap, topic)
        self.arrived: dict[str, float] = {}  # event_id -> wall time consumed (s)
        self.lock = threading.Lock()
        self.stopping = False
        self.assigned = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping:
                msgs = self.consumer.consume(500, 0.05)
                now = time.time()
                if self.consumer.assignment():
                    self.assigned.set()
                with self.lock:
                    for m in msgs:
                        if m.error() is None:
                            eid = orjson.loads(m.value())["event_id"]
                            self.arrived.setdefault(eid, now)
        finally:
            self.consumer.close()


def make_text(i: int) -> tuple[str, str]:
    if i % 2:
        s = SENTENCES_KO[(i // 2) % len(SENTENCES_KO)]
        return f"{s} 오늘은 {i}번째 날이에요.", "ko"
    s = SENTENCES_EN[(i // 2) % len(SENTENCES_EN)]
    return f"{s} That was day {i}.", "en"


def run_step(producer: Any, topic: str, rd: Reader, rate: float, seconds: float, max_events: int, drain_s: float,
             start_id: int) -> dict[str, Any]:
    n = min(max_events, max(1, int(rate * seconds)))
    sent: dict[str, float] = {}
    t0 = time.time()
    for k in range(n):
        due = t0 + k / rate
        while (delay := due - time.time()) > 0:
            producer.poll(min(delay, 0.01))
        i = start_id + k
        text, _ = make_text(i)
        now = time.time()
        ts = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        eid = f"r{rate:g}-{i}"
        ev = {"event_id": eid, "stream_id": f"s{i % 50}", "ts": ts, "text": text}
        while True:
            try:
                producer.produce(topic, value=orjson.dumps(ev), key=f"s{i % 50}".encode())
                break
            except BufferError:
                producer.poll(0.01)
        sent[eid] = round(now * 1000) / 1000.0  # what `ts` says (ms precision)
    send_s = time.time() - t0
    producer.flush(30)
    deadline = time.time() + drain_s
    while time.time() < deadline:
        with rd.lock:
            if all(e in rd.arrived for e in sent):
                break
        time.sleep(0.05)
    with rd.lock:
        got = {e: rd.arrived[e] for e in sent if e in rd.arrived}
    lat = [(got[e] - sent[e]) * 1000.0 for e in got]
    last = max(got.values()) if got else t0
    return {
        "offered_rate": rate,
        "events": n,
        "send_s": round(send_s, 2),
        "achieved_send_rate": round(n / send_s, 1) if send_s > 0 else None,
        "results": len(got),
        "missing_after_drain": n - len(got),
        "results_per_s": round(len(got) / (last - t0), 1) if got and last > t0 else 0.0,
        "latency_ms_p50": round(pct(lat, 50), 1),
        "latency_ms_p95": round(pct(lat, 95), 1),
        "latency_ms_p99": round(pct(lat, 99), 1),
        "latency_ms_max": round(max(lat), 1) if lat else None,
    }


def burst(producer: Any, topic: str, rd: Reader, n: int, start_id: int, timeout_s: float) -> dict[str, Any]:
    """Closed-loop saturation: `n` events produced at once, the worker's rate = n / (last
    result consumed - start of producing): full micro-batches back to back, the first
    batch's forward included (first-to-last result would leave it out and overstate)."""
    ids = []
    t0 = time.time()
    for k in range(n):
        i = start_id + k
        text, _ = make_text(i)
        eid = f"burst-{i}"
        ids.append(eid)
        ev = {"event_id": eid, "stream_id": f"s{i % 50}", "text": text}
        while True:
            try:
                producer.produce(topic, value=orjson.dumps(ev), key=f"s{i % 50}".encode())
                break
            except BufferError:
                producer.poll(0.01)
    producer.flush(30)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with rd.lock:
            if all(e in rd.arrived for e in ids):
                break
        time.sleep(0.05)
    with rd.lock:
        times = sorted(rd.arrived[e] for e in ids if e in rd.arrived)
    if len(times) < n:
        raise RuntimeError(f"burst: {len(times)} of {n} results within {timeout_s}s")
    return {"events": n, "seconds": round(times[-1] - t0, 2), "results_per_s": round(n / (times[-1] - t0), 1)}


def encoders_alone(texts: list[str], batch: int, threads: int) -> dict[str, Any]:
    """The same texts through the small profile's two encoders only (tokenize + forward,
    as `Encoder.encode` does), in batches of `batch`, with the worker's thread count."""
    import torch

    from pipeline.api import Pipeline

    pipe = Pipeline.load("small", checkpoint=None, allow_untrained=True, device="cpu", num_threads=threads)
    torch.set_num_threads(threads)
    for encoder in pipe.encoders:  # warm-up
        encoder.encode(texts[:batch])
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(texts), batch):
            for encoder in pipe.encoders:
                encoder.encode(texts[s: s + batch])
    seconds = time.perf_counter() - t0
    return {"events": len(texts), "batch": batch, "seconds": round(seconds, 2),
            "events_per_s": round(len(texts) / seconds, 1)}


def run_burst_worker(bootstrap: str, prefix: str, delivery: str, partitions: int, n: int, overlap: bool,
                     log_dir: Path) -> dict[str, Any]:
    """A fresh worker on fresh topics, one warm-up batch, then `burst`."""
    from confluent_kafka import Producer

    names = create_topics(bootstrap, prefix, partitions)
    port = free_port()
    env = worker_env(bootstrap, prefix, port, REDHEART_DELIVERY=delivery, REDHEART_DEVICE="cpu",
                     REDHEART_OVERLAP="true" if overlap else "false")
    rd = Reader(bootstrap, names["results_topic"])
    rd.start()
    log = log_dir / f"{prefix}.log"
    proc = spawn(["-m", "worker", "run", "--allow-untrained"], env, log)
    try:
        wait_ready(proc, port, 180, log)
        rd.assigned.wait(15)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
        run_step(producer, names["input_topic"], rd, 20, 1.0, 20, 60, 20_000_000)  # warm-up
        return burst(producer, names["input_topic"], rd, n, 0, 300) | {"overlap": overlap}
    finally:
        stop(proc, 60)
        rd.stopping = True
        rd.join(10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[10, 25, 50, 100], help="events/s; last above saturation")
    ap.add_argument("--seconds", type=float, default=12.0, help="sending time per rate")
    ap.add_argument("--max-events", type=int, default=1500, help="cap per rate")
    ap.add_argument("--drain", type=float, default=25.0, help="wait for a step's results at most this long")
    ap.add_argument("--delivery", default="exactly-once", choices=["exactly-once", "at-least-once"])
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--burst", type=int, default=640, help="events of the closed-loop saturation run (0: skip)")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)

    from confluent_kafka import Producer

    from bench.report import write_section
    from worker.devbroker import DevBroker

    log_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    rows: list[dict[str, Any]] = []
    with DevBroker(log_path=log_dir / "broker.log") as broker:
        prefix = "bench-e2e"
        names = create_topics(broker.bootstrap, prefix, args.partitions)
        port = free_port()
        env = worker_env(broker.bootstrap, prefix, port, REDHEART_DELIVERY=args.delivery, REDHEART_DEVICE="cpu")
        rd = Reader(broker.bootstrap, names["results_topic"])
        rd.start()
        worker_log = log_dir / "worker.log"
        proc = spawn(["-m", "worker", "run", "--allow-untrained"], env, worker_log)
        try:
            ready_s = wait_ready(proc, port, 180, worker_log)
            rd.assigned.wait(15)
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": "all"})
            # warm-up: a few events, not measured
            run_step(producer, names["input_topic"], rd, 5, 1.0, 5, 30, 10_000_000)
            start = 0
            for rate in args.rates:
                r = run_step(producer, names["input_topic"], rd, rate, args.seconds, args.max_events, args.drain, start)
                start += r["events"]
                rows.append(r)
                print(r, flush=True)
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited {proc.returncode}: {worker_log.read_text(errors='replace')[-2000:]}")
        finally:
            rc = stop(proc, 60)
            rd.stopping = True
            rd.join(10)
        bursts = [
            run_burst_worker(broker.bootstrap, f"bench-burst-{int(overlap)}", args.delivery, args.partitions,
                             args.burst, overlap, log_dir)
            for overlap in (True, False)
        ] if args.burst else []
        for b in bursts:
            print("burst", b, flush=True)
    alone = encoders_alone([make_text(i)[0] for i in range(args.burst)], 64, 2) if args.burst else None
    if alone is not None:
        print("encoders alone", alone, flush=True)
        for b in bursts:
            b["ratio_to_encoders_alone"] = round(b["results_per_s"] / alone["events_per_s"], 3)
    saturation = max((r["results_per_s"] for r in rows), default=0.0)
    report = {
        "bench": "e2e",
        "date": now_iso(),
        "machine": machine("cpu"),
        "profile": "small",
        "weights": "untrained (--allow-untrained); throughput does not depend on weight values",
        "broker": "embedded Tansu (memory storage), 127.0.0.1",
        "config": vars(args) | {"cache_size": 0, "commit_interval_ms": 100, "num_threads": 2,
                                "max_batch_events": 64, "max_wait_ms": 20},
        "worker_ready_s": round(ready_s, 1),
        "worker_exit_code": rc,
        "saturation_results_per_s": saturation,
        "results": rows,
        "burst": bursts,
        "encoders_alone": alone,
        "target": "burst results/s >= 0.7 x encoders alone on the same texts at the same batch size (#8)",
        "logs": str(log_dir),
    }
    path = write_json("e2e", report)
    table = md_table(["offered events/s", "events", "results/s", "missing after drain", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                     [[r["offered_rate"], r["events"], r["results_per_s"], r["missing_after_drain"], r["latency_ms_p50"],
                       r["latency_ms_p95"], r["latency_ms_p99"], r["latency_ms_max"]] for r in rows])
    burst_table = md_table(
        ["worker", "events", "produce start→last result s", "results/s", "encoders alone events/s", "ratio"],
        [["overlap on (default)" if b["overlap"] else "overlap off", b["events"], b["seconds"],
          b["results_per_s"], alone["events_per_s"] if alone else "", b.get("ratio_to_encoders_alone", "")]
         for b in bursts],
        "|---|---:|---:|---:|---:|---:|",
    ) if bursts else ""
    print(table)
    print(burst_table)
    print(f"saturation ≈ {saturation} results/s; wrote {path}")
    m = report["machine"]
    if not args.no_doc:
        write_section(
            "e2e",
            "## End to end through the broker (`python -m bench.e2e`)\n\n"
            f"Device: CPU ({m['cpu']}, {m['cores']} cores shared by the broker, the worker, the producer and the "
            f"reader), worker with 2 torch threads, profile `small`, **untrained weights** (throughput does not "
            f"depend on weight values), delivery {args.delivery}, commit interval 100 ms, cache off, batches ≤ 64 "
            f"events / 20 ms wait. Broker: {report['broker']}. Open-loop producer of short varied KO/EN texts "
            f"(≈15–30 tokens), each rate for ≤ {args.seconds:g} s (≤ {args.max_events} events); latency = result "
            "consumed (read_committed) − event `ts` (send time). With exactly-once, results become visible only at "
            "the ~100 ms transaction commit, which is part of every latency here. `missing after drain` = results "
            f"not back {args.drain:g} s after the step ended (backlog at overload). "
            f"Saturation ≈ **{saturation} results/s**.\n\n" + table
            + ("\n\n**Closed-loop saturation and the encoders-alone ratio.** A fresh worker per row, "
               f"{args.burst} events produced at once (full 64-event batches back to back); results/s = n / "
               "(last result consumed − start of producing). `encoders alone` = the same texts through the small profile's two "
               "encoders only (`Encoder.encode`: tokenize + forward), batches of 64, 2 threads, in the bench "
               "process after the workers stopped (broker idle). Target (#8): the worker reaches ≥ 0.7× that. "
               "`overlap` = REDHEART_OVERLAP (the model on its own thread).\n\n" + burst_table if bursts else ""),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
