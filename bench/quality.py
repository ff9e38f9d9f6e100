"""`python -m bench.quality --checkpoint DIR [--data-dir D]`: what users get, measured through the worker.

The same figures the model card computes from cached encodings, taken instead from results the
real worker publishes: an embedded broker, `python -m worker run` with the checkpoint, and the
texts sent through `worker.client` (request/reply by event id). What is scored is exactly what
a consumer of `redheart.results` reads: the sign of `integrated.overall_sentiment` and the
dominant emotion of `analysis.emotion.emotions`.

- NSMC-style test reviews (`--nsmc N` rows, chosen by row-id hash as training's test subset):
  sentiment-sign accuracy;
- GoEmotions test comments whose single label maps to one of our seven: dominant-emotion
  accuracy (`--goemotions N` rows considered);
- KOTE test comments with one dominant emotion of ours: dominant-emotion accuracy;
- the hand-labeled sentences of tests/data/emotion_eval.jsonl (never trained on): dominant
  emotion per language, and sentiment sign against the valence of the labeled emotion.
Writes bench/results/quality.json and the `quality` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import ROOT, create_topics, machine, md_table, now_iso, spawn, stop, wait_ready, worker_env, write_json
from schemas import labels as L

EVAL_SET = ROOT / "tests" / "data" / "emotion_eval.jsonl"
CHUNK = 64


def _rows(data_dir: Path, n_nsmc: int, n_go: int, n_kote: int) -> dict[str, list[dict[str, Any]]]:
    """Per set: {text, lang, emotion (index or None), positive (bool or None)}."""
    from training.data.dataset import human_subset
    from training.data.human.splits import splits
    from training.data.metrics import scored_dominant, single_label_seven

    out: dict[str, list[dict[str, Any]]] = {}
    nsmc = human_subset(splits("nsmc", data_dir).test, "nsmc", "test", n_nsmc)
    out["nsmc"] = [{"text": r.text, "lang": "ko", "emotion": None, "positive": r.sentiment == "positive"}
                   for r in nsmc if r.sentiment in ("positive", "negative")]
    go = human_subset(splits("goemotions", data_dir).test, "goemotions", "test", n_go)
    mask, gold = single_label_seven(go)
    out["goemotions"] = [{"text": r.text, "lang": "en", "emotion": int(g), "positive": None}
                         for r, m, g in zip(go, mask, gold) if m]
    kote = human_subset(splits("kote", data_dir).test, "kote", "test", n_kote)
    out["kote"] = [{"text": r.text, "lang": "ko", "emotion": int(d), "positive": None}
                   for r, d in zip(kote, scored_dominant(kote)) if d >= 0]
    hand = [json.loads(line) for line in EVAL_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    for lang in ("en", "ko"):
        out[f"hand_{lang}"] = [{"text": h["text"], "lang": lang, "emotion": L.EMOTIONS.index(h["emotion"]),
                                "positive": h["emotion"] in L.POSITIVE_EMOTIONS} for h in hand if h["lang"] == lang]
    return out


def _score(rows: list[dict[str, Any]], results: list[Any]) -> dict[str, Any]:
    """Accuracies over the rows that got a result; `failed` counts those that did not (a dead
    letter or a timeout), which are left out rather than counted wrong, and reported."""
    from schemas.result import ResultEvent

    emotion_right, sign_right, failed = [], [], 0
    for row, res in zip(rows, results):
        if not isinstance(res, ResultEvent):
            failed += 1
            continue
        if row["emotion"] is not None:
            e = res.analysis.emotion.emotions
            emotion_right.append(max(L.EMOTIONS, key=lambda k: e[k]) == L.EMOTIONS[row["emotion"]])
        if row["positive"] is not None:
            sign_right.append((res.integrated.overall_sentiment > 0) == row["positive"])
    out: dict[str, Any] = {"n": len(rows), "failed": failed}
    if emotion_right:
        out["dominant_emotion_accuracy"] = round(float(np.mean(emotion_right)), 4)
    if sign_right:
        out["sentiment_sign_accuracy"] = round(float(np.mean(sign_right)), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "small")
    ap.add_argument("--data-dir", type=Path, required=True, help="the human-labeled data sets (docs/DATA.md)")
    ap.add_argument("--nsmc", type=int, default=2000)
    ap.add_argument("--goemotions", type=int, default=2000)
    ap.add_argument("--kote", type=int, default=1000)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)

    from worker.client import Client
    from worker.devbroker import DevBroker, free_port

    sets = _rows(args.data_dir, args.nsmc, args.goemotions, args.kote)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    scores: dict[str, Any] = {}
    started = time.monotonic()
    with DevBroker(log_path=log_dir / "broker.log") as broker:
        prefix = "bench-quality"
        names = create_topics(broker.bootstrap, prefix, 1)
        port = free_port()
        env = worker_env(broker.bootstrap, prefix, port, REDHEART_CHECKPOINT=str(args.checkpoint.resolve()))
        proc = spawn(["-m", "worker", "run"], env, log_dir / "worker.log")
        try:
            wait_ready(proc, port, 900, log_dir / "worker.log")
            with Client(broker.bootstrap, input_topic=names["input_topic"], results_topic=names["results_topic"],
                        dlq_topic=names["dlq_topic"]) as client:
                for name, rows in sets.items():
                    results: list[Any] = []
                    for start in range(0, len(rows), CHUNK):
                        chunk = rows[start : start + CHUNK]
                        # no stream_id: each text is a stream of its own, so no trajectory mixes them
                        results += client.analyze_many([r["text"] for r in chunk], lang=chunk[0]["lang"], timeout=600,
                                                       return_exceptions=True)
                    scores[name] = _score(rows, results)
                    print(name, scores[name], flush=True)
        finally:
            stop(proc, 60)
    report = {"bench": "quality", "created_at": now_iso(), "machine": machine(), "checkpoint": str(args.checkpoint),
              "seconds": round(time.monotonic() - started, 1), "scores": scores}
    write_json("quality", report)
    if not args.no_doc:
        from bench.report import write_section

        table = md_table(["set", "rows", "dominant emotion", "sentiment sign"],
                         [[k, v["n"], v.get("dominant_emotion_accuracy", "—"), v.get("sentiment_sign_accuracy", "—")]
                          for k, v in scores.items()])
        write_section("quality", "## Quality through the worker (`python -m bench.quality`)\n\n"
                      "Results published by `python -m worker run` with the shipped checkpoint, scored as a consumer "
                      "reads them (sign of `integrated.overall_sentiment`, argmax of `analysis.emotion.emotions`).\n\n"
                      + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
