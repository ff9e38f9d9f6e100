"""Stage 3 of training: fit the emotion reader (`pipeline.reader`) once the network has trained.

Why after, and on the authored set only: the reader is the network's complement. The network
already learns from every corpus; the reader is a per-language logistic regression on the frozen
sources' L2-normalised vectors, fitted on the authored training rows of its language alone (the
sentences that describe a situation, which the comment corpora teach least). Fitting it after
the network keeps stage 2 exactly what it was, and lets the validation rows decide how much of
it to add.

How:
- **fit**, per language of `READER_LANGS` with at least `MIN_ROWS` authored training rows of
  all seven emotions: multinomial logistic regression (scikit-learn, L2, C = `C`) from the
  reader's features to the row's one emotion, the sources of `READER_SKIPS` left out;
- **scale**: the network's emotion logits plus `scale` x the reader's, for each scale of
  `SCALES`; the scale whose mean dominant-emotion accuracy over the validation sets (each human
  set's validation rows with one dominant emotion, the authored set's per language, each set
  weighted equally) is highest, the smaller on a tie. 0 means the reader is not used.

Calibration (`training.calibration`) runs after this, on the summed logits.
Deterministic: the fit (lbfgs from zeros) and the choice depend only on the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from pipeline.model import RedHeartNet
from pipeline.reader import READER_LANGS, READER_SKIPS, reader_features
from schemas import labels as L
from training.calibration import dominant_rows
from training.data import authored_set
from training.data.dataset import EMOTION_KEY, Corpus, net_inputs
from training.data.metrics import predict

C = 10.0
# The weight of a comment row (GoEmotions, KOTE) beside an authored row's 1: enough that the reader
# does not pull the comment sets down, little enough that the situations still lead.
COMMENT_WEIGHT = 0.3
SCALES: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
MIN_ROWS = 70  # per language: ten rows per emotion
CHUNK = 1024


def reader_inputs(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """The reader's features (`pipeline.reader.reader_features`) of corpus rows, `[n, sum(dims)]`."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), CHUNK):
            pooled, _, _, bags, _ = net_inputs(corpus, features, rows[start : start + CHUNK], net.cfg.lexical)
            out.append(reader_features(net._with_lexical(pooled, bags)).numpy())
    return np.concatenate(out) if out else np.zeros((0, sum(net.cfg.source_dims)), dtype=np.float32)


def source_mask(net: RedHeartNet, lang: str) -> np.ndarray:
    """Which feature columns the reader of `lang` reads (False for the sources it skips)."""
    names = [e.name for e in net.cfg.encoders] + (["lexical"] if net.cfg.lexical is not None else [])
    keep = np.concatenate([np.full(dim, name not in READER_SKIPS.get(lang, ())) for name, dim
                           in zip(names, net.cfg.source_dims)])
    return keep


def _validation_sets(corpus: Corpus) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Name -> (rows, dominant emotion) of each human set's validation rows; authored per language."""
    rows, gold = dominant_rows(corpus, "val")
    sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in sorted(set(corpus.human_set[rows].tolist()) - {""}):
        here = corpus.human_set[rows] == name
        if name == authored_set.DATASET:
            for lang in READER_LANGS:
                mine = here & (corpus.langs[rows] == lang)
                if mine.any():
                    sets[f"{name}_{lang}"] = (rows[mine], gold[mine])
        elif here.any():
            sets[name] = (rows[here], gold[here])
    return sets


def fit_reader(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any]:
    """Fit `net.reader` and choose its scale (module docstring); returns the manifest record."""
    reader = net.reader
    weight = torch.zeros_like(reader.weight)
    bias = torch.zeros_like(reader.bias)
    fitted: dict[str, Any] = {}
    dominant, gold = dominant_rows(corpus, "train")
    authored = corpus.human_set[dominant] == authored_set.DATASET if len(dominant) else np.zeros(0, dtype=bool)
    for i, lang in enumerate(READER_LANGS):
        mine = corpus.langs[dominant] == lang
        n_authored = int((mine & authored).sum())
        y_authored = gold[mine & authored]
        if n_authored < MIN_ROWS or len(np.unique(y_authored)) < len(L.EMOTIONS):
            fitted[lang] = {"fitted": False, "reason": f"{n_authored} authored training rows, "
                                                      f"{len(np.unique(y_authored))} of {len(L.EMOTIONS)} emotions"}
            continue
        rows, y = dominant[mine], gold[mine]
        weight_of = np.where(authored[mine], 1.0, COMMENT_WEIGHT)
        keep = source_mask(net, lang)
        x = reader_inputs(net, corpus, features, rows)[:, keep]
        model = LogisticRegression(C=C, max_iter=5000).fit(x, y, sample_weight=weight_of)
        w = np.zeros((len(L.EMOTIONS), keep.size), dtype=np.float32)
        w[:, keep] = model.coef_
        weight[i] = torch.from_numpy(w)
        bias[i] = torch.from_numpy(model.intercept_.astype(np.float32))
        sets = {name: int((corpus.human_set[rows] == name).sum()) for name in sorted(set(corpus.human_set[rows]))}
        fitted[lang] = {"fitted": True, "rows": sets, "train_accuracy": round(float(model.score(x, y)), 4),
                        "skipped_sources": list(READER_SKIPS.get(lang, ()))}
    with torch.no_grad():
        reader.weight.copy_(weight)
        reader.bias.copy_(bias)
    sets = _validation_sets(corpus)
    grid: dict[str, dict[str, float]] = {}
    best = (-1.0, 0.0)
    if any(f["fitted"] for f in fitted.values()) and sets:
        all_rows = np.concatenate([r for r, _ in sets.values()])
        for scale in SCALES:
            with torch.no_grad():
                reader.scale.fill_(scale)  # 0: the network alone
            p = predict(net, features, all_rows, corpus)[EMOTION_KEY]
            at = dict(zip(all_rows.tolist(), p.argmax(axis=1).tolist()))
            accuracy = {name: round(float(np.mean([at[r] == g for r, g in zip(rows, gold)])), 4)
                        for name, (rows, gold) in sets.items()}
            mean = float(np.mean(list(accuracy.values())))
            grid[str(scale)] = {"mean": round(mean, 4), **accuracy}
            if mean > best[0] + 1e-9:
                best = (mean, scale)
    with torch.no_grad():
        reader.scale.fill_(best[1])
    return {
        "what": "per-language logistic regression on the L2-normalised source vectors, fitted on the authored "
                "training rows of that language; its logits times `scale` are added to the network's emotion logits",
        "C": C,
        "languages": fitted,
        "scale_grid": grid,
        "criterion": "mean dominant-emotion accuracy over the validation sets (authored per language, GoEmotions dev, "
                     "KOTE held-out fifth), each weighted equally; the smaller scale on a tie",
        "scale": best[1],
    }
