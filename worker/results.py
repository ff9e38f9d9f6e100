"""Result records as JSON bytes, built straight with orjson (the hot path of every result).

`schemas.result.ResultEvent` stays the contract: its JSON Schema is published, and tests
validate what this module writes against it. What this module avoids is re-validating, per
event, values that were validated once already: an event's analysis is checked by pydantic
when the pipeline builds it (`EventAnalysis`), then turned here, once, into pre-serialized
JSON fragments (`Body`) that the result cache keeps. A cached event's result is then its
body's fragments, the stream's temporal block and a few scalars — no model objects at all.

Floats are written rounded to `PRECISION` (= `labels.DECIMALS`) decimal places.

Detail (`REDHEART_RESULT_DETAIL`): `full` writes every field; `compact` leaves out the
per-event 128-bin spectra (`auxiliary.dsp`), the stream's trajectory spectra
(`temporal.dsp`) and the 36 Bentham context weights, about two thirds of a result's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import orjson

from pipeline.analysis import Analyzed
from pipeline.integrate import stream_causal_clarity
from pipeline.temporal.stream import TemporalStep, block_json
from schemas import labels as L
from schemas.input import InputEvent
from schemas.result import ModelInfo

Detail = Literal["full", "compact"]
PRECISION = L.DECIMALS  # decimal places of every float in a result
_DUMP = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _fragment(value: Any) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(value))


def rounded(value: Any) -> Any:
    """`value` (JSON-ready dicts/lists/scalars) with every float rounded to `PRECISION`."""
    if isinstance(value, float):
        return round(value, PRECISION)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > 8 and type(value[0]) is float:  # a spectrum (lists here hold floats or dicts)
            return np.round(np.array(value, dtype=np.float64), PRECISION).tolist()
        return [rounded(v) for v in value]
    return value




@dataclass(frozen=True, slots=True)
class Body:
    """What a result needs of one event's analysis, serialized once (kept in the result cache)."""

    observation: np.ndarray  # the event's point in STATE_VECTOR order (for the stream's filter)
    lang: str
    tokens: int  # what the first encoder read (the batcher's cost of this text)
    analysis: orjson.Fragment
    auxiliary: orjson.Fragment
    integrated: dict[str, float]  # everything but causal_clarity, which belongs to the stream
    uncertainty: orjson.Fragment | None
    explanation: orjson.Fragment | None
    summary: dict[str, float | str]  # what the helper LLM's prompt states


class ResultWriter:
    def __init__(self, model: ModelInfo, detail: Detail = "full", helper_model: str | None = None) -> None:
        self.detail = detail
        self.helper_model = helper_model  # None: no rationale fields (not production-oss)
        self._model = orjson.Fragment(orjson.dumps(model.model_dump(mode="json")))

    def body(self, analyzed: Analyzed) -> Body:
        """The analysis's parts as JSON fragments, once per analysis (the cache keeps them).
        The pipeline writes its scores at `labels.DECIMALS` already, so pydantic serializes
        them as they are; what it measured from an event's image, audio or signals and the
        production-advanced extras are rounded here."""
        a = analyzed.result
        compact = self.detail == "compact"
        measured = a.analysis.image is not None or a.analysis.audio is not None or \
            a.analysis.biosignals is not None or a.auxiliary.spectra is not None
        exclude_analysis = {"bentham": {"context_weights"}} if compact else None
        exclude_auxiliary = {"dsp"} if compact else None
        if measured:
            analysis = _fragment(rounded(a.analysis.model_dump(mode="json", exclude=exclude_analysis)))
            auxiliary = _fragment(rounded(a.auxiliary.model_dump(mode="json", exclude=exclude_auxiliary)))
        else:
            analysis = orjson.Fragment(a.analysis.model_dump_json(exclude=exclude_analysis))
            auxiliary = orjson.Fragment(a.auxiliary.model_dump_json(exclude=exclude_auxiliary))
        integrated = rounded(a.integrated.model_dump(mode="json", exclude={"causal_clarity"}))
        return Body(
            observation=np.asarray(analyzed.observation, dtype=np.float64),
            lang=a.lang,
            tokens=a.tokens,
            analysis=analysis,
            auxiliary=auxiliary,
            integrated=integrated,
            uncertainty=None if a.uncertainty is None else _fragment(rounded(a.uncertainty.model_dump(mode="json"))),
            explanation=None if a.explanation is None else _fragment(rounded(a.explanation.model_dump(mode="json"))),
            summary={
                "dominant_emotion": a.analysis.emotion.dominant,
                "overall_sentiment": integrated["overall_sentiment"],
                "ethical_score": integrated["ethical_score"],
                "regret_potential": integrated["regret_potential"],
            },
        )

    def temporal(self, steps: list[TemporalStep | None]) -> list[dict[str, Any] | None]:
        """The `temporal` blocks of a batch's events (None where an event has no step): the
        filter's numbers are rounded one batch table at a time, in one numpy call."""
        out: list[dict[str, Any] | None] = [None] * len(steps)
        tables: dict[int, list[list[float]]] = {}
        names, n = L.STATE_VECTOR, len(L.STATE_VECTOR)
        for i, step in enumerate(steps):
            if step is None:
                continue
            rows = tables.get(id(step.table))
            if rows is None:
                rows = tables[id(step.table)] = np.round(step.table, PRECISION).tolist()
            row = rows[step.row]
            out[i] = {
                "state": dict(zip(names, row[:n])),
                "variance": dict(zip(names, row[n : 2 * n])),
                "innovation": dict(zip(names, row[2 * n :])),
                "surprise": round(step.surprise, PRECISION),
                "events_seen": step.events_seen,
                "surd": block_json(step.surd),
                "dsp": None if self.detail == "compact" else block_json(step.dsp),
                "forecast": None if step.forecast is None else rounded(step.forecast),
            }
        return out

    def write(
        self,
        event: InputEvent,
        body: Body,
        step: TemporalStep | None,
        temporal: dict[str, Any] | None,
        *,
        cached: bool,
        processed_at: datetime,
        latency_ms: tuple[float, float, float],
        rationale: tuple[str, dict[str, Any]] | None = None,
    ) -> bytes:
        """One `ResultEvent` as JSON. `step` / `temporal`: the event's stream step and its
        block from `temporal`; `latency_ms`: (queue, model, total); `rationale`: (text,
        rationale_info) in production-oss."""
        queue, model, total = latency_ms
        integrated = body.integrated
        doc: dict[str, Any] = {
            "schema_version": L.SCHEMA_VERSION,
            "event_id": event.event_id,
            "stream_id": event.stream_id,
            "ts": event.ts,
            "processed_at": processed_at,
            "model": self._model,
            "lang": body.lang,
            "analysis": body.analysis,
            "integrated": {
                "overall_sentiment": integrated["overall_sentiment"],
                "ethical_score": integrated["ethical_score"],
                "regret_potential": integrated["regret_potential"],
                "causal_clarity": _clarity(step),
                "confidence": integrated["confidence"],
            },
            "temporal": temporal,
            "auxiliary": body.auxiliary,
            "cached": cached,
            "latency_ms": {"queue": round(queue, 3), "model": round(model, 3), "total": round(total, 3)},
            "metadata": event.metadata,
            "uncertainty": body.uncertainty,
            "explanation": body.explanation,
        }
        if self.helper_model is not None:
            text, info = rationale if rationale is not None else ("unavailable", {"status": "unavailable",
                                                                                 "reason": "not_submitted"})
            doc["rationale"] = text
            doc["rationale_info"] = {"latency_ms": None, "reason": None, **info, "model": self.helper_model}
        else:
            doc["rationale"] = doc["rationale_info"] = None
        return orjson.dumps(doc, option=_DUMP)


def _clarity(step: TemporalStep | None) -> float | str:
    clarity = stream_causal_clarity(None if step is None or step.surd is None else step.surd.shares)
    return clarity if isinstance(clarity, str) else round(clarity, PRECISION)
