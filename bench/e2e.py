"""End to end through the broker: `python -m bench.e2e`.

A fresh embedded broker (Tansu, memory storage), the real worker as a subprocess (`python
-m worker run --allow-untrained`, untrained small profile, cache off; with `--profile
production`, the real `Worker` around random-weight stand-in encoders, `--serve-stand-in`,
since the hub weights are not obtainable here), a producer and a read_committed reader (a
thread in this process) that records, per result, end-to-end latency = time the result was
consumed - the event's send time (the event's `ts` is set to that send time, epoch ms
precision; the same clock is used).

1. Closed loop: `--burst` events produced at once to a fresh worker (overlap on, then off):
   the saturation rate, and its ratio to the profile's encoders alone on the same texts at
   the same batch size.
2. Open loop: fixed rates (default 0.25-1.25 x the burst saturation): results/s, latency
   p50/p95/p99, and how many did not come back within `--drain` seconds (backlog).

On a GPU (the production target, docs/TARGETS.md): `python -m bench.e2e --profile production --device
cuda --tokens 128 --delivery at-least-once`.
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


PADDED: dict[str, list[str]] = {}  # set by `pad_texts`: each base sentence lengthened to ~N tokens


def pad_texts(tokens: int) -> None:
    """Lengthen every base sentence to about `tokens` tokens (MiniLM's WordPiece count; the
    production encoders' tokenizers land within a few percent) for `--tokens`."""
    from transformers import AutoTokenizer

    from bench._common import text_of_tokens
    from pipeline.config import get_profile
    from pipeline.encoders import resolve_location

    tok = AutoTokenizer.from_pretrained(resolve_location(get_profile("small").encoders[0]), local_files_only=True)
    count = lambda t: len(tok(t)["input_ids"])  # noqa: E731
    PADDED["en"] = [text_of_tokens(count, tokens - 6, s) for s in SENTENCES_EN]
    PADDED["ko"] = [text_of_tokens(count, tokens - 6, s) for s in SENTENCES_KO]


def make_text(i: int) -> tuple[str, str]:
    if i % 2:
        ko = PADDED.get("ko", SENTENCES_KO)
        return f"{ko[(i // 2) % len(ko)]} 오늘은 {i}번째 날이에요.", "ko"
    en = PADDED.get("en", SENTENCES_EN)
    return f"{en[(i // 2) % len(en)]} That was day {i}.", "en"


def send(producer: Any, topic: str, ev: dict[str, Any]) -> None:
    """Produce one event keyed by its stream, waiting out a full local queue."""
    from worker.kafka import produce

    produce(producer, topic, orjson.dumps(ev), ev["stream_id"].encode(), poll_s=0.01)


def wait_for(rd: Reader, ids: Any, timeout_s: float) -> dict[str, float]:
    """When each of `ids` was consumed (those that arrived within `timeout_s`)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with rd.lock:
            if all(e in rd.arrived for e in ids):
                break
        time.sleep(0.05)
    with rd.lock:
        return {e: rd.arrived[e] for e in ids if e in rd.arrived}


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
        send(producer, topic, {"event_id": eid, "stream_id": f"s{i % 50}", "ts": ts, "text": text})
        sent[eid] = round(now * 1000) / 1000.0  # what `ts` says (ms precision)
    send_s = time.time() - t0
    producer.flush(30)
    got = wait_for(rd, sent, drain_s)
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
        send(producer, topic, {"event_id": eid, "stream_id": f"s{i % 50}", "text": text})
    producer.flush(30)
    times = sorted(wait_for(rd, ids, timeout_s).values())
    if len(times) < n:
        raise RuntimeError(f"burst: {len(times)} of {n} results within {timeout_s}s")
    return {"events": n, "seconds": round(times[-1] - t0, 2), "results_per_s": round(n / (times[-1] - t0), 1)}


def encoders_alone(texts: list[str], batch: int, threads: int, profile: str, device: str) -> dict[str, Any]:
    """The same texts through the profile's encoders only (tokenize + forward, as
    `Encoder.encode` does), in batches of `batch`, with the worker's thread count."""
    import torch

    from bench.model import sync
    from bench.stand_ins import load_bench_pipeline

    pipe = load_bench_pipeline(profile, device, threads)
    torch.set_num_threads(threads)
    with torch.inference_mode():
        for encoder in pipe.encoders:  # warm-up
            encoder.encode(texts[:batch])
        sync(pipe.device)
        t0 = time.perf_counter()
        for s in range(0, len(texts), batch):
            for encoder in pipe.encoders:
                encoder.encode(texts[s: s + batch])
        sync(pipe.device)
    seconds = time.perf_counter() - t0
    return {"events": len(texts), "batch": batch, "seconds": round(seconds, 2),
            "events_per_s": round(len(texts) / seconds, 1)}


def serve_stand_in() -> int:
    """The real worker (`Driver`, settings from REDHEART_* as always) around a stand-in pipeline:
    how a bench runs the production profile without its hub weights. Never the worker CLI."""
    from worker import logs
    from worker.driver import Driver
    from worker.config import Settings

    settings = Settings()
    logs.setup(settings.log_level)
    from bench.stand_ins import stand_in_pipeline

    pipe = stand_in_pipeline(settings.profile, settings.device, settings.num_threads, settings.dtype)
    return Driver(settings, pipe).run()


def worker_process(bootstrap: str, prefix: str, port: int, delivery: str, profile: str, device: str,
                   log: Path, **extra: str) -> Any:
    env = worker_env(bootstrap, prefix, port, REDHEART_DELIVERY=delivery, REDHEART_DEVICE=device,
                     REDHEART_PROFILE=profile, **extra)
    args = ["-m", "worker", "run", "--allow-untrained"] if profile == "small" else ["-m", "bench.e2e", "--serve-stand-in"]
    return spawn(args, env, log)


def run_burst_worker(bootstrap: str, prefix: str, args: Any, overlap: bool, log_dir: Path) -> dict[str, Any]:
    """A fresh worker on fresh topics, one warm-up step, then `burst`."""
    from confluent_kafka import Producer

    names = create_topics(bootstrap, prefix, args.partitions)
    port = free_port()
    rd = Reader(bootstrap, names["results_topic"])
    rd.start()
    log = log_dir / f"{prefix}.log"
    proc = worker_process(bootstrap, prefix, port, args.delivery, args.profile, args.device, log,
                          REDHEART_OVERLAP="true" if overlap else "false")
    n = args.burst
    try:
        wait_ready(proc, port, 900, log)
        rd.assigned.wait(15)
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
        run_step(producer, names["input_topic"], rd, 20, 1.0, 20, 60, 20_000_000)  # warm-up
        return burst(producer, names["input_topic"], rd, n, 0, 600) | {"overlap": overlap}
    finally:
        stop(proc, 60)
        rd.stopping = True
        rd.join(10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="small", choices=["small", "production"],
                    help="production: random-weight stand-in encoders (bench/stand_ins.py), e.g. on a GPU")
    ap.add_argument("--device", default="cpu", help="the worker's REDHEART_DEVICE (cpu, cuda, cuda:N)")
    ap.add_argument("--tokens", type=int, default=None, help="lengthen texts to about this many tokens")
    ap.add_argument("--rates", type=float, nargs="*", default=None,
                    help="offered events/s; default: 0.25, 0.5, 0.75, 1.0 and 1.25 x the burst saturation")
    ap.add_argument("--seconds", type=float, default=8.0, help="sending time per rate")
    ap.add_argument("--max-events", type=int, default=50_000, help="cap per rate")
    ap.add_argument("--drain", type=float, default=25.0, help="wait for a step's results at most this long")
    ap.add_argument("--delivery", default="exactly-once", choices=["exactly-once", "at-least-once"])
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--burst", type=int, default=None,
                    help="events of the closed-loop saturation run (default 640 on CPU, 20000 on CUDA)")
    ap.add_argument("--threads", type=int, default=2, help="the worker's torch threads")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--serve-stand-in", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_stand_in:
        return serve_stand_in()
    if args.burst is None:
        args.burst = 20_000 if args.device.startswith("cuda") else 640
    if args.tokens:
        pad_texts(args.tokens)

    from confluent_kafka import Producer

    from bench.report import write_section
    from worker.devbroker import DevBroker

    log_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    rows: list[dict[str, Any]] = []
    with DevBroker(log_path=log_dir / "broker.log") as broker:
        # closed loop first: it sets the open-loop rates
        bursts = [run_burst_worker(broker.bootstrap, f"bench-burst-{int(overlap)}", args, overlap, log_dir)
                  for overlap in (True, False)]
        for b in bursts:
            print("burst", b, flush=True)
        top = max(b["results_per_s"] for b in bursts)
        rates = args.rates or [round(f * top, 1) for f in (0.25, 0.5, 0.75, 1.0, 1.25)]
        prefix = "bench-e2e"
        names = create_topics(broker.bootstrap, prefix, args.partitions)
        port = free_port()
        rd = Reader(broker.bootstrap, names["results_topic"])
        rd.start()
        worker_log = log_dir / "worker.log"
        proc = worker_process(broker.bootstrap, prefix, port, args.delivery, args.profile, args.device, worker_log)
        try:
            ready_s = wait_ready(proc, port, 900, worker_log)
            rd.assigned.wait(15)
            producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "acks": "all"})
            # warm-up: a few events, not measured
            run_step(producer, names["input_topic"], rd, 5, 1.0, 5, 30, 10_000_000)
            start = 0
            for rate in rates:
                r = run_step(producer, names["input_topic"], rd, rate, args.seconds, args.max_events, args.drain, start)
                r["fraction_of_burst_saturation"] = round(rate / top, 2)
                start += r["events"]
                rows.append(r)
                print(r, flush=True)
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited {proc.returncode}: {worker_log.read_text(errors='replace')[-2000:]}")
        finally:
            rc = stop(proc, 60)
            rd.stopping = True
            rd.join(10)
    texts = [make_text(i)[0] for i in range(min(args.burst, 5_000))]
    alone = encoders_alone(texts, 64, args.threads, args.profile, args.device)
    print("encoders alone", alone, flush=True)
    for b in bursts:
        b["ratio_to_encoders_alone"] = round(b["results_per_s"] / alone["events_per_s"], 3)
    saturation = max((r["results_per_s"] for r in rows), default=0.0)
    half = min(rows, key=lambda r: abs(r["fraction_of_burst_saturation"] - 0.5)) if rows else None
    on_gpu = args.device.startswith("cuda")
    gpu = None
    if on_gpu:
        import torch

        gpu = torch.cuda.get_device_name(torch.device(args.device))
    m = machine(args.device)
    m["device_name"] = gpu or "CPU"
    weights = ("untrained network, real encoder weights (--allow-untrained)" if args.profile == "small"
               else "untrained network, random-weight stand-in encoders (bench/stand_ins.py)")
    report = {
        "bench": "e2e",
        "date": now_iso(),
        "machine": m,
        "profile": args.profile,
        "weights": weights + "; throughput does not depend on weight values",
        "broker": "embedded Tansu (memory storage), 127.0.0.1",
        "config": vars(args) | {"cache_size": 0, "commit_interval_ms": 100, "max_batch_events": 64, "max_wait_ms": 20},
        "worker_ready_s": round(ready_s, 1),
        "worker_exit_code": rc,
        "saturation_results_per_s": saturation,
        "results": rows,
        "burst": bursts,
        "encoders_alone": alone,
        "at_half_saturation": half,
        "target": "CPU: burst >= 0.7 x encoders alone (same texts, batch 64); GPU production 128 tokens: "
                  ">= 5,000 events/s, p99 < 100 ms at half of saturation (docs/TARGETS.md)",
        "logs": str(log_dir),
    }
    name = "e2e" if (args.profile, on_gpu) == ("small", False) else f"e2e-{args.profile}-{'cuda' if on_gpu else 'cpu'}"
    path = write_json(name, report)
    table = md_table(["offered events/s", "× burst saturation", "events", "results/s", "missing after drain", "p50 ms",
                      "p95 ms", "p99 ms", "max ms"],
                     [[r["offered_rate"], r["fraction_of_burst_saturation"], r["events"], r["results_per_s"],
                       r["missing_after_drain"], r["latency_ms_p50"], r["latency_ms_p95"], r["latency_ms_p99"],
                       r["latency_ms_max"]] for r in rows])
    burst_table = md_table(
        ["worker", "events", "produce start→last result s", "results/s", "encoders alone events/s", "ratio"],
        [["overlap on (default)" if b["overlap"] else "overlap off", b["events"], b["seconds"],
          b["results_per_s"], alone["events_per_s"], b["ratio_to_encoders_alone"]] for b in bursts],
        "|---|---:|---:|---:|---:|---:|",
    )
    print(table)
    print(burst_table)
    print(f"saturation ≈ {saturation} results/s; wrote {path}")
    if not args.no_doc:
        where = (f"{gpu} (worker), with the broker, producer and reader on the host's {m['cores']} cores" if on_gpu
                 else f"CPU ({m['cpu']}, {m['cores']} cores shared by the broker, the worker, the producer and the reader)")
        length = f"texts lengthened to ≈{args.tokens} tokens" if args.tokens else "short varied KO/EN texts (≈15–30 tokens)"
        write_section(
            name,
            f"## End to end through the broker (`python -m bench.e2e --profile {args.profile} --device {args.device}`)\n\n"
            f"Device: {where}; worker with {args.threads} torch threads, profile `{args.profile}`, {weights} "
            f"(throughput does not depend on weight values), delivery {args.delivery}, commit interval 100 ms, cache "
            f"off, batches ≤ 64 events / 20 ms wait. Broker: {report['broker']}. {length}.\n\n"
            f"**Closed-loop saturation and the encoders-alone ratio.** A fresh worker per row, {args.burst} events "
            "produced at once (full 64-event batches back to back); results/s = n / (last result consumed − start of "
            "producing). `encoders alone` = the same texts through the profile's encoders only (`Encoder.encode`: "
            f"tokenize + forward), batches of 64, {args.threads} threads, in the bench process after the workers "
            "stopped (broker idle). CPU target (docs/TARGETS.md): the worker reaches ≥ 0.7× that. `overlap` = REDHEART_OVERLAP "
            "(the model on its own thread).\n\n" + burst_table
            + "\n\n**Open loop.** A producer at fixed rates (fractions of the burst saturation), each for ≤ "
            f"{args.seconds:g} s (≤ {args.max_events} events); latency = result consumed (read_committed) − event "
            "`ts` (send time). With exactly-once, results become visible only at the ~100 ms transaction commit, "
            "which is part of every latency here (measure the latency target with `--delivery at-least-once`). "
            f"`missing after drain` = results not back {args.drain:g} s after the step ended (backlog at overload). "
            f"Highest open-loop rate ≈ **{saturation} results/s**"
            + (f"; at {half['fraction_of_burst_saturation']}× saturation p99 = **{half['latency_ms_p99']} ms**" if half else "")
            + ".\n\n" + table,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
