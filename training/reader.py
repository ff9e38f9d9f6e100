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

_POS = [L.EMOTIONS.index(e) for e in L.POSITIVE_EMOTIONS]

C = 10.0
# The weight of a comment row (GoEmotions, KOTE) beside an authored row's 1: enough that the reader
# does not pull the comment sets down, little enough that the situations still lead.
COMMENT_WEIGHT = 0.3
# The weight of a weakly labeled row (`weak_rows`): the reader also sees reviews and tweets, so that
# adding it does not pull their sentiment the wrong way.
WEAK_WEIGHT = float(__import__("os").environ.get("RH_WW", "0.1"))
MIN_SIGN_ROWS = 100
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


def weak_rows(corpus: Corpus, lang: str) -> np.ndarray:
    """Training rows of `lang` whose emotion target is a weak label (no human emotion label; the
    labeling functions' categories, constrained to the row's human sentiment: NSMC reviews, tweets,
    movie reviews, templates)."""
    mask = corpus.masks.get(EMOTION_KEY)
    if mask is None or not len(mask):
        return np.zeros(0, dtype=np.int64)
    human = corpus.human_emotion_mask if len(corpus.human_emotion_mask) else np.zeros(len(mask), dtype=bool)
    return np.nonzero(mask & ~human & (corpus.split == "train") & (corpus.langs == lang))[0]


def _sign_sets(corpus: Corpus) -> dict[str, np.ndarray]:
    """Source -> validation rows with a positive or negative human sentiment (at least `MIN_SIGN_ROWS`)."""
    if not len(corpus.pos_target):
        return {}
    signed = (corpus.split == "val") & ~np.isnan(corpus.pos_target) & (corpus.pos_target != 0.5)
    out = {}
    for source in sorted(set(corpus.source[signed].tolist())):
        rows = np.nonzero(signed & (corpus.source == source))[0]
        if len(rows) >= MIN_SIGN_ROWS:
            out[source] = rows
    return out


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
        weak = weak_rows(corpus, lang)
        rows = np.concatenate([dominant[mine], weak])
        y = np.concatenate([gold[mine], corpus.targets[EMOTION_KEY][weak].argmax(axis=1)])
        weight_of = np.concatenate([np.where(authored[mine], 1.0, COMMENT_WEIGHT), np.full(len(weak), WEAK_WEIGHT)])
        keep = source_mask(net, lang)
        x = reader_inputs(net, corpus, features, rows)[:, keep]
        model = LogisticRegression(C=C, max_iter=5000).fit(x, y, sample_weight=weight_of)
        w = np.zeros((len(L.EMOTIONS), keep.size), dtype=np.float32)
        w[:, keep] = model.coef_
        weight[i] = torch.from_numpy(w)
        bias[i] = torch.from_numpy(model.intercept_.astype(np.float32))
        sets = {name or "weak": int((corpus.human_set[rows] == name).sum()) for name in sorted(set(corpus.human_set[rows]))}
        fitted[lang] = {"fitted": True, "rows": sets, "train_accuracy": round(float(model.score(x, y)), 4),
                        "skipped_sources": list(READER_SKIPS.get(lang, ()))}
    with torch.no_grad():
        reader.weight.copy_(weight)
        reader.bias.copy_(bias)
    sets, signs = _validation_sets(corpus), _sign_sets(corpus)
    grid: dict[str, dict[str, float]] = {}
    best = (-1.0, 0.0)
    if any(f["fitted"] for f in fitted.values()) and sets:
        all_rows = np.unique(np.concatenate([r for r, _ in sets.values()] + list(signs.values())))
        for scale in SCALES:
            with torch.no_grad():
                reader.scale.fill_(scale)  # 0: the network alone
            p = predict(net, features, all_rows, corpus)[EMOTION_KEY]
            at = {r: i for i, r in enumerate(all_rows.tolist())}
            emotion = {name: float(np.mean(p[[at[r] for r in rows]].argmax(axis=1) == gold))
                       for name, (rows, gold) in sets.items()}
            sign = {f"{name}_sign": float(np.mean((p[[at[r] for r in rows]][:, _POS].sum(axis=1) > 0.5)
                                                  == (corpus.pos_target[rows] > 0.5)))
                    for name, rows in signs.items()}
            score = float(np.mean(list(emotion.values()))) if not sign else \
                0.5 * float(np.mean(list(emotion.values()))) + 0.5 * float(np.mean(list(sign.values())))
            grid[str(scale)] = {"score": round(score, 4), **{k: round(v, 4) for k, v in (emotion | sign).items()}}
            if score > best[0] + 1e-9:
                best = (score, scale)
    with torch.no_grad():
        reader.scale.fill_(best[1])
    return {
        "what": "per-language logistic regression on the L2-normalised source vectors, fitted on the authored "
                "training rows of that language; its logits times `scale` are added to the network's emotion logits",
        "C": C,
        "comment_weight": COMMENT_WEIGHT,
        "languages": fitted,
        "scale_grid": grid,
        "criterion": "score = half the mean dominant-emotion accuracy over the validation sets (authored per language, "
                     "GoEmotions dev, KOTE held-out fifth) + half the mean sentiment-sign accuracy (positive mass > 0.5) "
                     "over each source's validation rows with a positive or negative label; the smaller scale on a tie",
        "weak_weight": WEAK_WEIGHT,
        "scale": best[1],
    }
