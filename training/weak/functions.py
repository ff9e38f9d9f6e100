"""Labeling functions: one text -> weak targets for every supervised output.

Each output has a written rationale in its function's docstring (and in the model
card). Targets are soft numbers in [0, 1] (or a distribution for softmax outputs),
meant to be *distilled* into the heads with a soft cross-entropy: the network learns
a smooth version of these rules from the encoders' representations, which
generalises beyond the exact cue words (paraphrases, other languages).

`emotion` is `None` when no emotion cue fires: the text then supervises only the
sentiment mass of the emotion softmax (if it has a sentiment label), never a
made-up emotion.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from training.weak import cues as C
from training.weak.lexicons import empath_category, empath_emotion_words, korean_polarity
from schemas import labels as L

_HANGUL = re.compile(r"[\uac00-\ud7af]")
_WORD = re.compile(r"[a-z][a-z'\-]*")

# Outputs the labeling functions supervise, keyed like `pipeline.model.OUTPUT_LABELS`.
WEAK_OUTPUTS: tuple[str, ...] = (
    "emotion.cultural",
    "bentham.scores",
    "bentham.context_weights",
    "bentham.legal_risks",
    "regret.regret_potential",
    "regret.factors",
    "regret.counterfactuals",
    "surd.kinds",
    "surd.cues",
    "utility.cache",
    "utility.performance",
)


@dataclass
class WeakLabels:
    """What the labeling functions say about one text."""

    emotion: np.ndarray | None  # [7] distribution, or None when no emotion cue fired
    valence: float | None  # lexicon polarity in [-1, 1], or None without polar words
    targets: dict[str, np.ndarray]  # every key of WEAK_OUTPUTS


@lru_cache(maxsize=None)
def _pattern(cues: tuple[str, ...]) -> tuple[re.Pattern[str] | None, tuple[str, ...]]:
    """English cues as one whole-word regex; Korean cues kept for substring search."""
    english = [c for c in cues if not _HANGUL.search(c)]
    korean = tuple(c for c in cues if _HANGUL.search(c))
    if not english:
        return None, korean
    body = "|".join(re.escape(c) for c in sorted(english, key=len, reverse=True))
    return re.compile(rf"(?<![\w'])(?:{body})(?![\w'])"), korean


def hits(text: str, cues: tuple[str, ...]) -> int:
    """How many distinct cues of the list occur in `text` (lowercased)."""
    pattern, korean = _pattern(cues)
    found = set(pattern.findall(text)) if pattern is not None else set()
    return len(found) + sum(1 for c in korean if c in text)


def sat(n: float, rate: float = 1.0) -> float:
    """Saturating evidence: 0 cues -> 0, 1 cue -> 0.63 (rate 1), many -> 1."""
    return 1.0 - math.exp(-rate * n)


def clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


def emotion_votes(text: str) -> np.ndarray:
    """Votes per emotion. Rationale: explicit emotion words are the most direct
    evidence a text gives. Cue phrases (EN/KO) count 2 each; empath's emotion words
    count their 1/k share (a word under k emotion categories)."""
    votes = np.zeros(len(L.EMOTIONS), dtype=np.float64)
    for i, emotion in enumerate(L.EMOTIONS):
        votes[i] += 2.0 * (hits(text, C.EMOTION_CUES_EN[emotion]) + hits(text, C.EMOTION_CUES_KO[emotion]))
    lexicon = empath_emotion_words()
    for word in set(_WORD.findall(text)):
        for emotion, share in lexicon.get(word, {}).items():
            votes[L.EMOTIONS.index(emotion)] += share
    return votes


def korean_valence(text: str) -> float | None:
    """Polarity from the Korean lexicon: (pos - neg) / (pos + neg) over matched stems.
    Rationale: the only Korean sentiment resource here; a weak, documented signal."""
    if not _HANGUL.search(text):
        return None
    pos = neg = 0
    for stem, sign in korean_polarity().items():
        if stem in text:
            pos += sign > 0
            neg += sign < 0
    if pos + neg == 0:
        return None
    return (pos - neg) / (pos + neg)


def cultural(text: str) -> np.ndarray:
    """jeong / han / chemyeon ← their cue phrases (EN paraphrases and KO words).
    Rationale: these are named concepts; texts that name or paraphrase them are the
    only reliable evidence we have."""
    return np.array(
        [sat(1.5 * (hits(text, C.CULTURAL_CUES_EN[k]) + hits(text, C.CULTURAL_CUES_KO[k]))) for k in L.CULTURAL]
    )


def bentham_scores(text: str, emotion: np.ndarray) -> np.ndarray:
    """The ten Bentham scores; rationale per factor:
    intensity ← arousal (intensifiers, '!', emotion words); duration ← long-time words
    minus momentary ones; certainty ← certainty words minus hedges and questions;
    propinquity ← immediacy words; fecundity ← future words with positive emotion;
    purity ← one polarity of emotion (mixed feelings are impure); extent ← people and
    group mentions; external_cost ← harm to others, violence and crime words;
    redistribution_effect ← money and giving; self_damage ← harm to oneself."""
    words = set(_WORD.findall(text))
    arousal = hits(text, C.INTENSIFIERS) + 0.5 * text.count("!") + 0.5 * float(emotion.sum() > 0) * min(emotion.sum(), 4)
    pos = float(emotion[:3].sum())
    neg = float(emotion[3:].sum())
    violent = len(words & (empath_category("violence") | empath_category("crime")))
    purity = 0.5 if pos + neg == 0 else (0.85 if min(pos, neg) == 0 else 0.3)
    return np.array(
        [
            clip01(0.1 + 0.9 * sat(arousal, 0.5)),
            clip01(0.3 + 0.35 * hits(text, C.DURATION_LONG) - 0.2 * hits(text, C.DURATION_SHORT)),
            clip01(0.5 + 0.2 * hits(text, C.CERTAIN) - 0.25 * hits(text, C.HEDGES) - 0.1 * text.count("?")),
            clip01(0.3 + 0.3 * hits(text, C.NEAR)),
            clip01(0.3 + 0.2 * hits(text, C.FUTURE) + 0.2 * float(pos > neg)),
            purity,
            clip01(0.05 + 0.9 * sat(hits(text, C.GROUPS), 0.7)),
            clip01(0.05 + 0.9 * sat(hits(text, C.HARM_OTHERS) + 0.5 * violent)),
            clip01(0.05 + 0.9 * sat(hits(text, C.MONEY_SHARE))),
            clip01(0.05 + 0.9 * sat(hits(text, C.SELF_HARM) + hits(text, C.REGRET_CUES["personal_responsibility"]))),
        ]
    )


def context_weights(text: str) -> np.ndarray:
    """36 = party x aspect. Rationale: a consequence weighs on a party in a respect
    when the text mentions both: weight 0.05 + 0.9 * [party mentioned] * [aspect
    mentioned]; nothing mentioned -> all 0.05."""
    parties = np.array([float(hits(text, C.PARTY_CUES[p]) > 0) for p in L.AFFECTED_PARTIES])
    aspects = np.array([float(hits(text, C.ASPECT_CUES[a]) > 0) for a in L.ASPECTS])
    return (0.05 + 0.9 * np.outer(parties, aspects)).reshape(-1)


def legal_risks(text: str) -> np.ndarray:
    """Five legal risks ← their vocabulary (theft/assault; lawsuits; leaked data;
    discrimination; permits/fines). Rationale: risk named is risk present."""
    return np.array([clip01(0.02 + 0.95 * sat(hits(text, C.LEGAL_CUES[k]), 1.2)) for k in L.LEGAL_RISKS])


@lru_cache(maxsize=None)
def _ko_pattern(kind: str) -> re.Pattern[str]:
    return re.compile(C.KO_COUNTERFACTUAL_PATTERNS[kind])


def korean_counterfactuals(text: str) -> tuple[int, int, int]:
    """(acted_differently, did_nothing, counterfactual cues), from the FORM of Korean
    counterfactuals rather than a list of verbs: "should not have" (-지 말았어야, -지
    말걸, 안 ...더라면) is found first and cut out; in the rest, "should have"
    (<ㅆ-final syllable>어야: 했어야, 갔어야, 참았어야), the regret ending -ㄹ걸 그랬다
    and counterfactual conditionals (-더라면, -ㅆ다면) mean "acted differently"; a wish
    about the past (좋았을 텐데) counts as a counterfactual without naming an alternative."""
    if not _HANGUL.search(text):
        return 0, 0, 0
    rest = _ko_pattern("did_nothing").sub(" ", text)
    nothing = int(rest != text)
    acted = int(any(_ko_pattern(k).search(rest) for k in ("acted_differently", "should_have_ending", "conditional")))
    wish = int(_ko_pattern("wish").search(text) is not None)
    return acted, nothing, max(acted + nothing, wish)


def regret(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """regret_potential ← regret words ("regret", "후회", "아쉽") and counterfactuals
    ("should have", "if only"; Korean by form: 했어야/갔어야, 말았어야, 했더라면, 할걸);
    factors ← their own cue lists; counterfactual alternatives ← the form of the
    counterfactual ("should have" = acted differently, "shouldn't have" = did nothing,
    "should have waited" = waited)."""
    ko_acted, ko_nothing, ko_counterfactual = korean_counterfactuals(text)
    factors = np.array([
        sat(hits(text, C.REGRET_CUES[f]) + (ko_counterfactual if f == "counterfactual_thinking" else 0), 1.2)
        for f in L.REGRET_FACTORS
    ])
    regret_word = float(hits(text, C.REGRET_WORDS) > 0)
    potential = clip01(0.03 + 0.5 * regret_word + 0.5 * factors[0] + 0.1 * factors[1] + 0.1 * factors[4])
    ko = {"acted_differently": ko_acted, "did_nothing": ko_nothing}
    counter = np.array([sat(hits(text, C.COUNTERFACTUAL_CUES[c]) + ko.get(c, 0), 1.2) for c in L.COUNTERFACTUALS])
    return np.array([potential]), factors, counter


def surd(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-event causal kinds ← how the text states causes: one stated cause
    ("because") -> unique; several agreeing ones ("also", "either way") -> redundant;
    causes that act only jointly ("only when", "together") -> synergistic; no cause or
    "for no reason" -> leak. Cues: causal_language ← causal connectives; agency ←
    first-person decisions ("I decided", "내가 했")."""
    causal = hits(text, C.CAUSAL)
    scores = np.array(
        [
            hits(text, C.REDUNDANT),
            causal,
            hits(text, C.SYNERGISTIC),
            hits(text, C.LEAK) + (1.0 if causal == 0 else 0.0),
        ],
        dtype=np.float64,
    ) + 0.1
    return scores / scores.sum(), np.array([sat(causal), sat(hits(text, C.AGENCY))])


def utility(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Cache: reuse_likelihood ← short generic texts recur; staleness_risk ←
    time-sensitive words; cache_priority = their balance (reusable and not stale).
    Performance: complexity ← length and clauses; ambiguity ← hedges and questions;
    novelty ← "new", "first time"; urgency ← urgent words and '!'; quality ← share of
    letters among characters, low for very short texts."""
    n_words = len(text.split())
    reuse = clip01(1.0 - n_words / 25.0)
    stale = clip01(0.05 + 0.9 * sat(hits(text, C.TIME_SENSITIVE)))
    letters = sum(ch.isalpha() for ch in text)
    visible = max(1, sum(not ch.isspace() for ch in text))
    quality = clip01(letters / visible) * (1.0 if n_words >= 4 else 0.5)
    return (
        np.array([clip01(0.5 * reuse + 0.5 * (1 - stale)), reuse, stale]),
        np.array(
            [
                clip01(n_words / 60.0 + 0.05 * (text.count(",") + text.count(";"))),
                clip01(0.2 + 0.25 * hits(text, C.HEDGES) + 0.2 * min(text.count("?"), 2)),
                clip01(0.05 + 0.9 * sat(hits(text, C.NOVEL))),
                clip01(0.05 + 0.9 * sat(hits(text, C.URGENT) + 0.3 * min(text.count("!"), 3))),
                quality,
            ]
        ),
    )


def label(text: str) -> WeakLabels:
    """Run every labeling function on one text."""
    low = text.lower()
    votes = emotion_votes(low)
    emotion = votes / votes.sum() if votes.sum() > 0 else None
    potential, factors, counter = regret(low)
    kinds, surd_cues = surd(low)
    cache, performance = utility(text)
    targets = {
        "emotion.cultural": cultural(low),
        "bentham.scores": bentham_scores(low, votes),
        "bentham.context_weights": context_weights(low),
        "bentham.legal_risks": legal_risks(low),
        "regret.regret_potential": potential,
        "regret.factors": factors,
        "regret.counterfactuals": counter,
        "surd.kinds": kinds,
        "surd.cues": surd_cues,
        "utility.cache": cache,
        "utility.performance": performance,
    }
    return WeakLabels(emotion, korean_valence(text), {k: v.astype(np.float32) for k, v in targets.items()})
