"""`Analyzed`: what `Pipeline.run` hands the worker for one event.

The result a consumer reads (`EventAnalysis`, the wire contract) and what the stream's
temporal state needs (the event's observation) are computed together, here in the
pipeline, over the whole batch in numpy; the worker only feeds the observation to the
stream's filter and SURD window and fills in the stream-level fields. Nothing is
recomputed from the validated result's dicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.integrate import event_clarity
from schemas import labels as L
from schemas.result import EventAnalysis

_N_EMOTIONS = len(L.EMOTIONS)
# Observations are kept at 8 decimals. The network computes in float32 (~7 significant
# digits), so nothing it knows is lost, and the same event computed in another batch differs
# by more than that already (float noise), so rounding adds no new disagreement. What it buys:
# a stream's window rows, written in every checkpoint's changelog record, take ~11 bytes per
# value instead of ~19, and the stream's filter, window, SURD and spectra read exactly the
# numbers a restore reads back.
OBSERVATION_DECIMALS = 8
if L.STATE_VECTOR[:_N_EMOTIONS] != L.EMOTIONS:  # `observations` fills the emotions as one block
    raise ImportError("labels.STATE_VECTOR no longer starts with labels.EMOTIONS; update pipeline.analysis")


@dataclass(frozen=True, slots=True)
class Analyzed:
    """One event as the pipeline computed it: the wire contract part plus what the stream's
    temporal state needs. They travel together so the worker never rebuilds the state's
    input from the result's dicts, and the two cannot disagree about an event. The result's
    stream-level fields (`integrated.causal_clarity`, `temporal`) are the worker's to fill."""

    result: EventAnalysis  # the validated contract part
    # float64 [len(labels.STATE_VECTOR)], the event's point in the stream's state space,
    # STATE_VECTOR order (read-only: a row of the batch's observation matrix)
    observation: np.ndarray


def observations(raw: dict[str, np.ndarray], scores: dict[str, np.ndarray]) -> np.ndarray:
    """The batch's observations, `[B, len(labels.STATE_VECTOR)]` float64, read-only, in
    `labels.STATE_VECTOR` order: the seven emotion probabilities (`labels.EMOTIONS`), then
    `labels.INTEGRATED`, where `causal_clarity` is the event's own (`integrate.event_clarity`,
    P(redundant) + P(unique)), since an event alone has no stream-level figure. `raw`: the
    network's named outputs; `scores`: `integrate.integrate(raw)`."""
    per_event = {name: np.asarray(v, dtype=np.float64) for name, v in scores.items()}
    per_event["causal_clarity"] = event_clarity(raw["surd.kinds"].astype(np.float64))
    emotions = raw["emotion.emotions"].astype(np.float64)
    out = np.empty((emotions.shape[0], len(L.STATE_VECTOR)), dtype=np.float64)
    out[:, :_N_EMOTIONS] = emotions
    for j, name in enumerate(L.STATE_VECTOR[_N_EMOTIONS:], start=_N_EMOTIONS):
        out[:, j] = per_event[name]
    np.round(out, OBSERVATION_DECIMALS, out=out)
    out.setflags(write=False)
    return out
