"""`HumanRow`: one human-labeled text with the targets it teaches our heads."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.labels import POSITIVE_INDICES
from training.data.corpora import SENTIMENT_CLASSES


@dataclass(frozen=True, slots=True)
class HumanRow:
    """One row of a human-labeled data set.

    `emotion` is a distribution over `schemas.labels.EMOTIONS` (joy, love, surprise,
    anger, fear, sadness, disgust; sums to 1) or None when the row teaches no emotion;
    `sentiment` is one of `training.data.corpora.SENTIMENT_CLASSES` (negative, neutral,
    positive) or None when it teaches no sentiment. `source_labels` are the data set's
    own label names (NSMC: "negative"/"positive" for its 0/1), `source_id` its row id,
    `origin` the file and line the row came from ("kote/val.tsv:12")."""

    text: str
    emotion: tuple[float, ...] | None
    sentiment: str | None
    source_labels: tuple[str, ...]
    dataset: str
    source_id: str
    lang: str
    origin: str

    @property
    def sentiment_index(self) -> int:
        """Index into SENTIMENT_CLASSES, -1 when none (the training corpus's `sentiment3`)."""
        return -1 if self.sentiment is None else SENTIMENT_CLASSES.index(self.sentiment)

    @property
    def pos_target(self) -> float | None:
        """The wanted positive mass of the emotion softmax (the training corpus's
        `pos_target`): 1 positive, 0.5 neutral, 0 negative, None when no sentiment.

        Also None where the sentiment contradicts the row's own emotion target: an emotion
        target wholly on one side of overall_sentiment (all of it on joy, love, surprise, or
        all on anger, fear, sadness, disgust) already says what the positive mass is, and a
        sentiment saying otherwise would ask for both at once. The one emotion this happens
        for is surprise, which overall_sentiment counts positive: an authored surprise whose
        writer called it neutral or negative (about 40% of them), a GoEmotions row labelled
        `neutral` and `curiosity`. Taught both, the network learns surprise with the rest of
        its mass on the negative emotions: a surprise whose overall_sentiment is negative."""
        if self.sentiment is None:
            return None
        target = self.sentiment_index / 2.0
        if self.emotion is not None:
            positive = sum(self.emotion[i] for i in POSITIVE_INDICES)
            if (positive > 1.0 - 1e-6 and target < 1.0) or (positive < 1e-6 and target > 0.0):
                return None
        return target
