"""Calibration after training, on validation rows: what the published probabilities mean.

Two kinds of numbers are fitted; no weight changes:
- the emotion softmax temperature T (`OutputLayers.temperature`), minimising the negative
  log-likelihood of the human dominant emotion on the validation rows of GoEmotions (dev),
  KOTE (held-out fifth) and, where the preset uses it, the authored set (held-out sixth)
  that have one dominant emotion of ours. Dividing the logits by
  T keeps the dominant emotion and changes only how sure the distribution sounds. It is
  applied only if it also lowers the expected calibration error of the top probability on
  those rows (what a consumer reads); otherwise T stays 1 and the record says so;
- Platt scaling of the certainty head (`TaskHeads.certainty_scale`, `certainty_bias`): a
  logistic regression of "the dominant emotion is right" on the head's logit, on the same
  rows, so that `integrated.confidence` (analyses produced / 4 x certainty) reads as the
  probability that the dominant emotion is right when all four analyses produced.
Expected calibration error (15 equal-width bins, top label) before and after, on the
validation and test rows, and the reliability bins go to the manifest (`metrics.calibration`);
`reliability_figure` draws the diagram from them. Test rows are only measured, never fitted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression

from pipeline.model import RedHeartNet
from training.data.dataset import EMOTION_KEY, Corpus
from training.data.metrics import predict

BINS = 15
CERTAINTY_KEY = "calibration.certainty"
EPS = 1e-7


def dominant_rows(corpus: Corpus, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, dominant emotion index) of the human emotion rows of `split` whose mapped
    distribution has one largest emotion (ties teach no single answer)."""
    if not len(corpus.human_emotion_mask):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows = np.nonzero(corpus.human_emotion_mask & (corpus.split == split))[0]
    dist = corpus.human_emotion[rows]
    top2 = np.sort(dist, axis=1)[:, -2:]
    keep = top2[:, 1] > top2[:, 0] + 1e-6
    return rows[keep], dist[keep].argmax(axis=1)


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: the bin-size-weighted mean |accuracy - mean confidence|."""
    if not len(confidence):
        return float("nan")
    index = np.clip((confidence * bins).astype(np.int64), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        here = index == b
        if here.any():
            total += here.sum() * abs(correct[here].mean() - confidence[here].mean())
    return float(total / len(confidence))


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = BINS) -> list[dict[str, float]]:
    index = np.clip((confidence * bins).astype(np.int64), 0, bins - 1)
    out = []
    for b in range(bins):
        here = index == b
        if here.any():
            out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": int(here.sum()),
                        "confidence": round(float(confidence[here].mean()), 4),
                        "accuracy": round(float(correct[here].mean()), 4)})
    return out


@contextlib.contextmanager
def uncalibrated(net: RedHeartNet) -> Iterator[None]:
    """The network as trained (T = 1, identity Platt scaling), restored afterwards."""
    emotion = net.analyzers["emotion"].outputs
    heads = net.task_heads
    saved = (emotion.temperature.clone(), heads.certainty_scale.clone(), heads.certainty_bias.clone())
    try:
        with torch.no_grad():
            emotion.temperature.fill_(1.0)
            heads.certainty_scale.fill_(1.0)
            heads.certainty_bias.fill_(0.0)
        yield
    finally:
        with torch.no_grad():
            emotion.temperature.copy_(saved[0])
            heads.certainty_scale.copy_(saved[1])
            heads.certainty_bias.copy_(saved[2])


def _figures(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray], rows: np.ndarray,
             gold: np.ndarray) -> dict[str, Any]:
    out = predict(net, features, rows, corpus)
    p = out[EMOTION_KEY]
    correct = (p.argmax(axis=1) == gold).astype(np.float64)
    top = p.max(axis=1)
    certainty = out[CERTAINTY_KEY][:, 0]
    return {
        "accuracy": round(float(correct.mean()), 4),
        "emotion_top_probability": {"mean": round(float(top.mean()), 4), "ece": round(ece(top, correct), 4),
                                    "bins": reliability_bins(top, correct)},
        "confidence": {"mean": round(float(certainty.mean()), 4), "ece": round(ece(certainty, correct), 4),
                       "bins": reliability_bins(certainty, correct)},
    }


def calibration_metrics(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any] | None:
    """Before/after figures on the validation and test rows with one dominant human emotion
    (None when the corpus has none). `confidence` is the certainty a result multiplies into
    `integrated.confidence`, i.e. that confidence when all four analyses produced."""
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        rows, gold = dominant_rows(corpus, split)
        if not len(rows):
            continue
        with uncalibrated(net):
            before = _figures(net, corpus, features, rows, gold)
        out[split] = {"n": int(len(rows)), "before": before, "after": _figures(net, corpus, features, rows, gold)}
    if not out:
        return None
    heads = net.task_heads
    out["temperature"] = round(float(net.analyzers["emotion"].outputs.temperature), 6)
    out["certainty_scale"] = round(float(heads.certainty_scale), 6)
    out["certainty_bias"] = round(float(heads.certainty_bias), 6)
    out["bins"] = BINS
    return out


def nll(logits: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of `gold` under softmax(logits / temperature)."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    return float(-(z[np.arange(len(z)), gold] - np.log(np.exp(z).sum(axis=1))).mean())


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises `nll` (a convex problem in 1/T: one bounded search)."""
    return float(minimize_scalar(lambda t: nll(logits, gold, t), bounds=(0.05, 20.0), method="bounded",
                                 options={"xatol": 1e-4}).x)


def fit_platt(logit: np.ndarray, correct: np.ndarray) -> tuple[float, float] | None:
    """(scale, bias) with P(right) = sigmoid(scale * logit + bias); None when one class is absent."""
    if correct.min() == correct.max():
        return None
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(logit[:, None], correct)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def calibrate(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any]:
    """Fit the temperature and the Platt scaling on the validation rows and set them in `net`;
    returns what was fitted on how many rows (or why nothing was)."""
    rows, gold = dominant_rows(corpus, "val")
    if len(rows) < 20:
        return {"applied": False, "reason": f"{len(rows)} validation rows with one dominant human emotion (need 20)"}
    with uncalibrated(net):
        out = predict(net, features, rows, corpus)
    logp = np.log(np.clip(out[EMOTION_KEY].astype(np.float64), 1e-12, 1.0))
    correct = (logp.argmax(axis=1) == gold).astype(np.int64)
    fitted_t = fit_temperature(logp, gold)
    # NLL scores the whole distribution, ECE the stated top probability a consumer reads: a
    # temperature that lowers the first but raises the second on these rows is not applied.
    def top_ece(t: float) -> float:
        z = logp / t
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return ece(p.max(axis=1) / p.sum(axis=1), correct.astype(np.float64))

    ece_fitted, ece_one = top_ece(fitted_t), top_ece(1.0)
    temperature = fitted_t if ece_fitted < ece_one else 1.0
    c = np.clip(out[CERTAINTY_KEY][:, 0].astype(np.float64), EPS, 1 - EPS)
    fitted = fit_platt(np.log(c / (1 - c)), correct)
    scale, bias = fitted if fitted is not None else (1.0, 0.0)
    platt = ("logistic regression of 'dominant emotion right' on the certainty head's logit" if fitted is not None
             else "not fitted: every validation row is right (or every one wrong)")
    with torch.no_grad():
        net.analyzers["emotion"].outputs.temperature.fill_(temperature)
        net.task_heads.certainty_scale.fill_(scale)
        net.task_heads.certainty_bias.fill_(bias)
    return {"applied": True, "rows": int(len(rows)), "temperature": round(temperature, 6),
            "temperature_nll_fit": round(fitted_t, 6),
            "val_top_probability_ece": {"at_1": round(ece_one, 4), "at_nll_fit": round(ece_fitted, 4)},
            "temperature_rule": "fitted by NLL; applied only if it lowers the validation top-probability ECE",
            "nll_before": round(nll(logp, gold, 1.0), 4), "nll_after": round(nll(logp, gold, temperature), 4),
            "certainty_scale": round(scale, 6), "certainty_bias": round(bias, 6), "platt": platt,
            "rows_from": _rows_from(corpus, rows)}


_SET_NAMES = {"goemotions": "GoEmotions (dev)", "kote": "KOTE (held-out fifth)", "authored": "the authored set (held-out sixth)"}


def _rows_from(corpus: Corpus, rows: np.ndarray) -> str:
    """Which validation rows the fit read, named by set, with their counts."""
    sets, counts = np.unique(corpus.human_set[rows].astype(str), return_counts=True)
    named = [f"{_SET_NAMES.get(s, s)}: {n}" for s, n in zip(sets.tolist(), counts.tolist())]
    return "validation rows with one dominant emotion of " + ", ".join(named)


def reliability_figure(calibration: dict[str, Any], path: Path, split: str = "test") -> None:
    """The reliability diagram (accuracy against stated probability, before and after) of the
    emotion top probability and of the confidence, drawn from `metrics.calibration`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = calibration[split]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, key, title in ((axes[0], "emotion_top_probability", "dominant-emotion probability"),
                           (axes[1], "confidence", "integrated.confidence (all analyses produced)")):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
        for stage, colour in (("before", "tab:red"), ("after", "tab:blue")):
            entry = figures[stage][key]
            bins = entry["bins"]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color=colour,
                    label=f"{stage}: ECE {entry['ece']:.3f}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("stated probability")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("share right")
    fig.suptitle(f"Reliability on {figures['n']} {split} rows with one dominant human emotion (GoEmotions, KOTE)",
                 fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
