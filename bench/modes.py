"""What each mode and each kind of part costs: `python -m bench.modes`.

Pipeline level (no Kafka), one batch of `--batch` short English texts, iterations
interleaved so machine noise hits every variant alike:

- `production`: `analyze(events)` — the baseline of every ratio;
- `production-advanced`: the same with MC dropout (`--passes`, one batched forward) and
  gradient x input explanations (MiniLM) — point values unchanged;
- the same texts with an audio part (2 s voice, 16 kHz WAV), an image part (96x64 PNG),
  biosignals (EEG 4 s at 256 Hz, ECG 10 s at 250 Hz, GSR 60 s at 10 Hz), and image-only events:
  `extract` per event (decode + measure, as the worker does when it accepts a record) + `analyze`.

`production-oss` adds no model work; its cost is waiting for the helper LLM. Measured on the
client the worker uses (`worker.rationale.HelperLLM`) against the local OpenAI-protocol server
of the tests (`tests/llm_server.py`) answering after 0 ms and 50 ms, one that is too slow
(answers after 5 s, deadline `--llm-timeout-ms`), and with the circuit breaker open: the time
from the batch's submits to its last collected rationale, i.e. what a batch waits.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bench._common import SENTENCES_EN, machine, md_table, now_iso, pct, write_json
from bench.report import write_section


def _events(batch: int, parts: dict[str, Any] | None, text: bool = True) -> list[Any]:
    from schemas.input import InputEvent

    return [
        InputEvent(event_id=f"e{i}", stream_id=f"s{i % 7}", **({"text": SENTENCES_EN[i % len(SENTENCES_EN)]} if text else {}),
                   **(parts or {}))
        for i in range(batch)
    ]


def pipeline_costs(batch: int, passes: int, seconds: float, threads: int) -> dict[str, Any]:
    from pipeline import Pipeline
    from pipeline.api import Advanced
    from worker import samples

    pipe = Pipeline.load("small", None, allow_untrained=True, device="cpu", num_threads=threads)
    variants: dict[str, tuple[list[Any], bool]] = {
        "production": (_events(batch, None), False),
        "production-advanced": (_events(batch, None), True),
        "text + audio": (_events(batch, {"audio": samples.voice_wav(seconds=2.0)}), False),
        "text + image": (_events(batch, {"image": samples.image_png()}), False),
        "text + biosignals": (
            _events(batch, {"biosignals": {"eeg": samples.eeg(), "ecg": samples.ecg(), "gsr": samples.gsr()}}), False),
        "image only": (_events(batch, {"image": samples.image_png()}, text=False), False),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}

    def once(name: str) -> None:
        events, advanced = variants[name]
        pipe.advanced = Advanced(passes=passes, top_k=5) if advanced else None
        t0 = time.perf_counter()
        parts = [pipe.extract(e) for e in events]
        out = pipe.run(pipe.prepare(events, parts))
        times[name].append(time.perf_counter() - t0)
        assert len(out) == len(events)

    for name in variants:  # warm-up
        once(name)
    for k in times:
        times[k].clear()
    t_start = time.perf_counter()
    while min(len(v) for v in times.values()) < 3 or time.perf_counter() - t_start < seconds:
        for name in variants:
            once(name)
    pipe.advanced = None
    base = pct(times["production"], 50)
    return {
        name: {"p50_s": pct(v, 50), "events_per_s": batch / pct(v, 50), "cost_vs_production": pct(v, 50) / base,
               "iters": len(v)}
        for name, v in times.items()
    }


def helper_llm_costs(batch: int, timeout_ms: int, rounds: int) -> dict[str, Any]:
    from tests.llm_server import FakeOpenAIServer
    from worker.rationale import HelperLLM, build_prompt

    out: dict[str, Any] = {}
    summary = {"dominant_emotion": "joy", "overall_sentiment": 0.8, "ethical_score": 0.4, "regret_potential": 0.1}
    with FakeOpenAIServer() as server:
        cases = [("answers after 0 ms", "ok", 0.0), ("answers after 50 ms", "slow", 50.0),
                 (f"too slow (5 s; deadline {timeout_ms} ms)", "slow", 5000.0), ("breaker open", "error", 0.0)]
        for label, mode, delay in cases:
            server.behave(mode, delay_ms=delay) if mode != "ok" else server.reset()
            client = HelperLLM(server.base_url, "fake-oss", None, timeout_ms, concurrency=batch, max_tokens=64,
                               breaker_failures=batch if mode != "error" else 1, breaker_reset_s=3600)
            try:
                if mode == "error":  # open the breaker first
                    client.submit("warm", build_prompt("x", summary))
                    client.collect(["warm"])
                waits, statuses = [], []
                for r in range(rounds):
                    keys = [f"{r}-{i}" for i in range(batch)]
                    t0 = time.perf_counter()
                    for k in keys:
                        client.submit(k, build_prompt(SENTENCES_EN[0], summary))
                    got = client.collect(keys)
                    waits.append(time.perf_counter() - t0)
                    statuses += [g.status if g.status == "ok" else g.reason for g in got.values()]
                out[label] = {"batch_wait_p50_ms": pct(waits, 50) * 1e3, "batch_wait_p95_ms": pct(waits, 95) * 1e3,
                              "outcomes": {s: statuses.count(s) for s in sorted(set(statuses))}}
            finally:
                client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.modes", description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--passes", type=int, default=8, help="MC-dropout passes (REDHEART_MC_DROPOUT_PASSES)")
    ap.add_argument("--seconds", type=float, default=20.0, help="time budget of the pipeline part (soft)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llm-timeout-ms", type=int, default=2000)
    ap.add_argument("--llm-rounds", type=int, default=5)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)

    pipe_costs = pipeline_costs(args.batch, args.passes, args.seconds, args.threads)
    llm_costs = helper_llm_costs(args.batch, args.llm_timeout_ms, args.llm_rounds)
    report = {"bench": "modes", "date": now_iso(), "machine": machine("cpu"), "profile": "small (untrained weights: "
              "cost does not depend on weight values)", "config": vars(args), "pipeline": pipe_costs,
              "helper_llm": llm_costs}
    path = write_json("modes", report)
    rows = [[k, f"{v['events_per_s']:.1f}", f"{v['p50_s'] * 1e3:.0f}", f"{v['cost_vs_production']:.2f}x"]
            for k, v in pipe_costs.items()]
    llm_rows = [[k, f"{v['batch_wait_p50_ms']:.1f}", f"{v['batch_wait_p95_ms']:.1f}",
                 ", ".join(f"{s} {n}" for s, n in v["outcomes"].items())] for k, v in llm_costs.items()]
    body = (
        f"## Modes and parts (`python -m bench.modes`)\n\n"
        f"{report['date']}, {report['machine']['cpu']} x{report['machine']['cores']} (CPU, {args.threads} threads), "
        f"profile small, batch {args.batch}, MC passes {args.passes}. Pipeline only (no Kafka); parts are decoded and "
        f"measured per event (`extract`) as the worker does on accept.\n\n"
        + md_table(["variant", "events/s", "batch p50 ms", "time vs production"], rows, "|---|---:|---:|---:|")
        + f"\n\n`production-oss`: what one batch of {args.batch} waits for its rationales (client + local "
        f"OpenAI-protocol server, deadline {args.llm_timeout_ms} ms):\n\n"
        + md_table(["helper LLM", "wait p50 ms", "wait p95 ms", "outcomes"], llm_rows, "|---|---:|---:|---|")
    )
    if not args.no_doc:
        write_section("modes", body)
    print(body)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
