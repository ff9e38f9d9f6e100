"""Integrated scores, from the analyzers' named outputs (docs/PIPELINE.md).

Plain numpy on the host, after the batch's single device->host transfer: these are
a handful of sums per event, and keeping them here makes the formulas easy to read
and to test against hand-computed values. Clipping only absorbs float rounding
(a softmax in float32 may sum to 1 + 1e-7).

`integrated.causal_clarity` is the one integrated score an event alone cannot give: it is
the stream's (`stream_causal_clarity`, from the temporal state). The per-event estimate,
`event_clarity`, is the last coordinate of the event's observation (`pipeline.analysis`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from schemas import labels as L

_CLEAR = [L.SURD_KINDS.index("redundant"), L.SURD_KINDS.index("unique")]

ANALYSES: tuple[str, ...] = ("emotion", "bentham", "regret", "surd")


def overall_sentiment(emotions: np.ndarray) -> np.ndarray:
    """P(joy)+P(love)+P(surprise) - P(anger)-P(fear)-P(sadness)-P(disgust); `[B, 7]` -> `[B]`."""
    positive = emotions[:, L.POSITIVE_INDICES].sum(axis=1)
    return np.clip(positive - emotions[:, L.NEGATIVE_INDICES].sum(axis=1), -1.0, 1.0)


def ethical_score(bentham_scores: np.ndarray) -> np.ndarray:
    """Mean of the ten Bentham scores; `[B, 10]` -> `[B]`."""
    return np.clip(bentham_scores.mean(axis=1), 0.0, 1.0)


def event_clarity(surd_kinds: np.ndarray) -> np.ndarray:
    """The event's own causal clarity: the share of the information that is redundant or
    unique (vs synergistic and leak), P(redundant) + P(unique); `[B, 4]` -> `[B]`. It feeds
    the event's observation of the stream's state, not `integrated.causal_clarity`."""
    return np.clip(surd_kinds[:, _CLEAR].sum(axis=1), 0.0, 1.0)


def stream_causal_clarity(shares: Mapping[str, float] | None) -> float | str:
    """integrated.causal_clarity: redundant + unique share of the stream's SURD
    (temporal.surd.shares), min 1.0; 'insufficient_history' (labels.INSUFFICIENT_HISTORY)
    when None."""
    if shares is None:
        return L.INSUFFICIENT_HISTORY
    return min(1.0, shares["redundant"] + shares["unique"])


def analyses_produced(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Per event, how many of the four analyses produced a result (all outputs finite)."""
    batch = next(iter(outputs.values())).shape[0]
    produced = np.zeros(batch, dtype=np.int64)
    for analysis in ANALYSES:
        fields = [v for k, v in outputs.items() if k.startswith(analysis + ".")]
        ok = np.ones(batch, dtype=bool)
        for v in fields:
            ok &= np.isfinite(v).all(axis=1)
        produced += ok
    return produced


def confidence(produced: np.ndarray, certainty: np.ndarray) -> np.ndarray:
    """(analyses that produced a result / 4) x calibrated certainty; `[B]`, `[B]` -> `[B]`."""
    return np.clip(produced / len(ANALYSES) * certainty, 0.0, 1.0)


def integrate(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The four per-event integrated scores, keyed like `schemas.result.Integrated`; its fifth,
    `causal_clarity`, is the stream's (`stream_causal_clarity`)."""
    return {
        "overall_sentiment": overall_sentiment(outputs["emotion.emotions"]),
        "ethical_score": ethical_score(outputs["bentham.scores"]),
        "regret_potential": np.clip(outputs["regret.regret_potential"][:, 0], 0.0, 1.0),
        "confidence": confidence(analyses_produced(outputs), outputs["calibration.certainty"][:, 0]),
    }
