"""How GoEmotions' and KOTE's labels teach our seven emotions and our sentiment.

Data, not prose: `GOEMOTIONS` (the 28 labels of `emotions.txt`, the 27 emotions and
`neutral`, in id order) and `KOTE` (the 44 labels of `kote/labels.txt`, in id order)
map every label to
- `emotion`: weights over `schemas.labels.EMOTIONS` summing to 1, or None when the label
  teaches no emotion of ours (`neutral`, `없음` "none", `비장함` "grim resolve");
- `polarity`: "positive" | "negative" | "ambiguous" (no sentiment vote) | "neutral"
  (the data set's no-emotion label).
docs/DATA.md has the same tables (a unit test checks they match `mapping_table`) with
the reason for every choice. In short:
- GoEmotions: the authors' Ekman grouping (`ekman_mapping.json`) for every label except
  `love` and `caring`, which go to our `love` (Ekman has no love; we do, and folding it
  into joy would leave `love` without human English data); polarity is the authors'
  `sentiment_dict.json` (realization, surprise, curiosity, confusion are "ambiguous").
- KOTE: by meaning, consistent with the GoEmotions choice for the nearest GoEmotions
  label; a negative label maps only onto negative emotions (as the weak labels'
  sentiment constraint does), so a label's emotion and sentiment never pull apart.

- `taught`: False for GoEmotions `curiosity` and `confusion` and their KOTE kin `신기함/관심`
  (interest) and `당황/난처` (flustered): they mean surprise when a figure is scored (so a
  figure keeps its definition) but teach no emotion (docs/DATA.md says why).

A row with several labels (`row_targets`):
- emotion = the mean of its labels' emotion weights over the taught labels that have one;
  None when none has (then the row teaches no emotion, like a weak row without votes);
- sentiment, from P positive and N negative labels: "positive" if P >= 2N (P > 0),
  "negative" if N >= 2P (N > 0), None when mixed (neither side has two thirds of the
  polar labels: mixed feelings are not neutral text); with no polar label, "neutral" if
  a neutral label is present, else None (only ambiguous labels).
So `neutral` / `없음` rows teach sentiment ≈ 0 (the wanted positive mass 0.5) and no
emotion: our emotion softmax has no "none" class, and a flat target (1/7 each) would
itself mean overall_sentiment = 3/7 - 4/7 = -1/7, contradicting the neutral target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from schemas import labels as L

Polarity = Literal["positive", "negative", "ambiguous", "neutral"]
POLARITIES: tuple[str, ...] = ("positive", "negative", "ambiguous", "neutral")
Sentiment = Literal["negative", "neutral", "positive"]


@dataclass(frozen=True)
class LabelMapping:
    """What one source label means among our seven emotions (None: none of them), its
    polarity, and whether training teaches that emotion (`taught`). An untaught label still
    counts as its emotion when a figure is scored (the GoEmotions test figure keeps the
    authors' Ekman grouping), but its rows learn no emotion from it."""

    emotion: Mapping[str, float] | None
    polarity: Polarity
    note: str = ""
    taught: bool = True


def _m(emotion: str | dict[str, float] | None, polarity: Polarity, note: str = "", taught: bool = True) -> LabelMapping:
    weights = {emotion: 1.0} if isinstance(emotion, str) else emotion
    return LabelMapping(None if weights is None else MappingProxyType(dict(weights)), polarity, note, taught)


_EKMAN = "the authors' Ekman grouping"
_QUESTION = "the authors' Ekman grouping for scoring; taught nothing (a question is not a surprise)"
# GoEmotions, in `emotions.txt` order (label id = position). Polarity = `sentiment_dict.json`.
GOEMOTIONS: Mapping[str, LabelMapping] = MappingProxyType({
    "admiration": _m("joy", "positive", _EKMAN),
    "amusement": _m("joy", "positive", _EKMAN),
    "anger": _m("anger", "negative", _EKMAN),
    "annoyance": _m("anger", "negative", _EKMAN),
    "approval": _m("joy", "positive", _EKMAN),
    "caring": _m("love", "positive", "Ekman says joy; caring is affection for someone, our love"),
    "confusion": _m("surprise", "ambiguous", _QUESTION, taught=False),
    "curiosity": _m("surprise", "ambiguous", _QUESTION, taught=False),
    "desire": _m("joy", "positive", _EKMAN),
    "disappointment": _m("sadness", "negative", _EKMAN),
    "disapproval": _m("anger", "negative", _EKMAN),
    "disgust": _m("disgust", "negative", _EKMAN),
    "embarrassment": _m("sadness", "negative", _EKMAN),
    "excitement": _m("joy", "positive", _EKMAN),
    "fear": _m("fear", "negative", _EKMAN),
    "gratitude": _m("joy", "positive", _EKMAN),
    "grief": _m("sadness", "negative", _EKMAN),
    "joy": _m("joy", "positive", _EKMAN),
    "love": _m("love", "positive", "Ekman folds love into joy; we keep it: love is one of our seven"),
    "nervousness": _m("fear", "negative", _EKMAN),
    "optimism": _m("joy", "positive", _EKMAN),
    "pride": _m("joy", "positive", _EKMAN),
    "realization": _m("surprise", "ambiguous", _EKMAN),
    "relief": _m("joy", "positive", _EKMAN),
    "remorse": _m("sadness", "negative", _EKMAN),
    "sadness": _m("sadness", "negative", _EKMAN),
    "surprise": _m("surprise", "ambiguous", _EKMAN),
    "neutral": _m(None, "neutral", "no emotion: teaches sentiment ≈ 0 only"),
})

# KOTE, in `labels.txt` order (label id = position); the English glosses in docs/DATA.md are unofficial.
KOTE: Mapping[str, LabelMapping] = MappingProxyType({
    "불평/불만": _m("anger", "negative", "complaint: like GoEmotions annoyance/disapproval"),
    "환영/호의": _m("joy", "positive", "welcome, goodwill: like approval"),
    "감동/감탄": _m("joy", "positive", "being moved, admiration: like admiration"),
    "지긋지긋": _m("disgust", "negative", "sick and tired of it: aversion"),
    "고마움": _m("joy", "positive", "gratitude"),
    "슬픔": _m("sadness", "negative", "sadness"),
    "화남/분노": _m("anger", "negative", "anger"),
    "존경": _m("joy", "positive", "respect: like admiration"),
    "기대감": _m("joy", "positive", "anticipation: like optimism"),
    "우쭐댐/무시함": _m("disgust", "negative", "smugness, contempt: contempt is disgust's kin"),
    "안타까움/실망": _m("sadness", "negative", "pity, disappointment: like disappointment"),
    "비장함": _m(None, "ambiguous", "grim resolve: no counterpart among the seven, no polarity"),
    "의심/불신": _m("disgust", "negative", "distrust: opposite of trust on Plutchik's trust-disgust axis"),
    "뿌듯함": _m("joy", "positive", "pride"),
    "편안/쾌적": _m("joy", "positive", "ease, comfort: like relief"),
    "신기함/관심": _m("surprise", "ambiguous", "novelty, interest: like curiosity", taught=False),
    "아껴주는": _m("love", "positive", "caring, cherishing: like caring"),
    "부끄러움": _m("sadness", "negative", "shame, embarrassment: like embarrassment"),
    "공포/무서움": _m("fear", "negative", "fear"),
    "절망": _m("sadness", "negative", "despair: like grief"),
    "한심함": _m("disgust", "negative", "finding it pathetic: contempt"),
    "역겨움/징그러움": _m("disgust", "negative", "disgust"),
    "짜증": _m("anger", "negative", "irritation: like annoyance"),
    "어이없음": _m("anger", "negative", "dumbfounded at something absurd: exasperation, like annoyance"),
    "없음": _m(None, "neutral", "none: teaches sentiment ≈ 0 only"),
    "패배/자기혐오": _m("sadness", "negative", "defeat, self-loathing: like remorse"),
    "귀찮음": _m("anger", "negative", "being bothered: like annoyance"),
    "힘듦/지침": _m("sadness", "negative", "hardship, exhaustion"),
    "즐거움/신남": _m("joy", "positive", "fun, excitement: like amusement/excitement"),
    "깨달음": _m("surprise", "ambiguous", "realization: like realization"),
    "죄책감": _m("sadness", "negative", "guilt: like remorse"),
    "증오/혐오": _m({"anger": 0.5, "disgust": 0.5}, "negative", "hatred (anger) and loathing (disgust)"),
    "흐뭇함(귀여움/예쁨)": _m({"joy": 0.5, "love": 0.5}, "positive", "warm delight (joy) at something cute (affection)"),
    "당황/난처": _m("surprise", "ambiguous", "flustered, taken aback: like confusion", taught=False),
    "경악": _m("surprise", "ambiguous", "shock, astonishment: like surprise"),
    "부담/안_내킴": _m("fear", "negative", "burden, reluctance: pressure, like nervousness"),
    "서러움": _m("sadness", "negative", "sorrow of being wronged"),
    "재미없음": _m("disgust", "negative", "boredom: Plutchik's mild degree of disgust"),
    "불쌍함/연민": _m("sadness", "negative", "pity, compassion: feeling sorry for someone"),
    "놀람": _m("surprise", "ambiguous", "surprise"),
    "행복": _m("joy", "positive", "happiness"),
    "불안/걱정": _m("fear", "negative", "anxiety, worry: like nervousness"),
    "기쁨": _m("joy", "positive", "joy"),
    "안심/신뢰": _m("joy", "positive", "relief, trust: like relief"),
})

MAPPINGS: Mapping[str, Mapping[str, LabelMapping]] = MappingProxyType({"goemotions": GOEMOTIONS, "kote": KOTE})


def emotion_vector(mapping: LabelMapping) -> tuple[float, ...] | None:
    """The label's emotion as a distribution over `schemas.labels.EMOTIONS` (what it means,
    taught or not); None when it means none of the seven."""
    if mapping.emotion is None:
        return None
    return tuple(float(mapping.emotion.get(e, 0.0)) for e in L.EMOTIONS)


def _mean_emotion(labels: Iterable[str], table: Mapping[str, LabelMapping], taught_only: bool) -> tuple[float, ...] | None:
    total = [0.0] * len(L.EMOTIONS)
    with_emotion = 0
    for name in labels:
        mapping = table[name]
        vector = emotion_vector(mapping) if mapping.taught or not taught_only else None
        if vector is not None:
            total = [t + v for t, v in zip(total, vector)]
            with_emotion += 1
    return tuple(t / with_emotion for t in total) if with_emotion else None


def scored_emotion(labels: Iterable[str], table: Mapping[str, LabelMapping]) -> tuple[float, ...] | None:
    """The emotion distribution a figure scores a row against: like `row_targets`' emotion,
    but untaught labels count as what they mean (so a figure's definition does not move
    with what training is taught)."""
    return _mean_emotion(labels, table, taught_only=False)


def row_targets(labels: Iterable[str], table: Mapping[str, LabelMapping]) -> tuple[tuple[float, ...] | None, Sentiment | None]:
    """(emotion distribution over `schemas.labels.EMOTIONS` or None, sentiment class or None)
    of a row carrying `labels` (names of `table`); the rule is in the module docstring."""
    labels = tuple(labels)
    emotion = _mean_emotion(labels, table, taught_only=True)
    positive = negative = 0
    neutral = False
    for name in labels:
        mapping = table[name]
        positive += mapping.polarity == "positive"
        negative += mapping.polarity == "negative"
        neutral |= mapping.polarity == "neutral"
    sentiment: Sentiment | None
    if positive or negative:
        sentiment = "positive" if positive >= 2 * negative else "negative" if negative >= 2 * positive else None
    else:
        sentiment = "neutral" if neutral else None
    return emotion, sentiment


def mapping_table(dataset: str) -> str:
    """The Markdown table of one data set's mapping, as docs/DATA.md shows it."""
    rows = ["| id | label | our emotion | polarity | why |", "|---|---|---|---|---|"]
    for i, (name, m) in enumerate(MAPPINGS[dataset].items()):
        if m.emotion is None:
            emotion = "— (none)"
        else:
            emotion = " + ".join(e if w == 1.0 else f"{w:g} {e}" for e, w in m.emotion.items())
            emotion += "" if m.taught else " (scored, not taught)"
        rows.append(f"| {i} | {name} | {emotion} | {m.polarity} | {m.note} |")
    return "\n".join(rows)
