"""Step 4 of SPEC §2: integrated scores, from the analyzers' named outputs.

Plain numpy on the host, after the batch's single device->host transfer: these are
a handful of sums per event, and keeping them here makes the formulas easy to read
and to test against hand-computed values. Clipping only absorbs float rounding
(a softmax in float32 may sum to 1 + 1e-7).
"""

from __future__ import annotations

import numpy as np

from schemas import labels as L

_POS = [L.EMOTIONS.index(e) for e in L.POSITIVE_EMOTIONS]
_NEG = [L.EMOTIONS.index(e) for e in L.NEGATIVE_EMOTIONS]
_CLEAR = [L.SURD_KINDS.index("redundant"), L.SURD_KINDS.index("unique")]

ANALYSES: tuple[str, ...] = ("emotion", "bentham", "regret", "surd")


def overall_sentiment(emotions: np.ndarray) -> np.ndarray:
    """P(joy)+P(love)+P(surprise) - P(anger)-P(fear)-P(sadness)-P(disgust); `[B, 7]` -> `[B]`."""
    return np.clip(emotions[:, _POS].sum(axis=1) - emotions[:, _NEG].sum(axis=1), -1.0, 1.0)


def ethical_score(bentham_scores: np.ndarray) -> np.ndarray:
    """Mean of the ten Bentham scores; `[B, 10]` -> `[B]`."""
    return np.clip(bentham_scores.mean(axis=1), 0.0, 1.0)


def causal_clarity(surd_kinds: np.ndarray) -> np.ndarray:
    """Share of the information that is redundant or unique (vs synergistic and leak):
    P(redundant) + P(unique); `[B, 4]` -> `[B]`."""
    return np.clip(surd_kinds[:, _CLEAR].sum(axis=1), 0.0, 1.0)


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
    """All five integrated scores, keyed like `schemas.result.Integrated`."""
    return {
        "overall_sentiment": overall_sentiment(outputs["emotion.emotions"]),
        "ethical_score": ethical_score(outputs["bentham.scores"]),
        "regret_potential": np.clip(outputs["regret.regret_potential"][:, 0], 0.0, 1.0),
        "causal_clarity": causal_clarity(outputs["surd.kinds"]),
        "confidence": confidence(analyses_produced(outputs), outputs["calibration.certainty"][:, 0]),
    }
