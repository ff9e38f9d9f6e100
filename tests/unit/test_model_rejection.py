"""A batch the model rejects is split to find the poison events: they become `model_rejected`
dead letters, the rest of the batch gets its results; a model that fails for every event is
a crash, not a flood of dead letters."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from pipeline import Pipeline
from pipeline.errors import InferenceError
from schemas.input import InputEvent
from schemas.result import EventAnalysis
from worker.app import Work, Worker
from worker.config import Settings
from worker.decode import Rejection


class Poisoned:
    """The real small pipeline, except that any batch containing a poison text fails."""

    def __init__(self, real: Pipeline, poison: str) -> None:
        self.real, self.poison = real, poison
        self.profile, self.trained, self.checkpoint_id, self.device = real.profile, False, None, real.device

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def run(self, prepared: Any) -> list[EventAnalysis]:
        if any(self.poison in t for t in prepared.texts):
            raise InferenceError("non-finite analyzer outputs for batch rows [0]")
        return self.real.run(prepared)


@pytest.fixture(scope="module")
def real() -> Pipeline:
    return Pipeline.load("small", checkpoint=None, allow_untrained=True, num_threads=2)


def works(texts: list[str]) -> list[Work]:
    ts = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        Work(InputEvent(event_id=f"e{i}", stream_id="s", text=t, ts=ts), "in", 0, i, b"s", t.encode(), None, 0)
        for i, t in enumerate(texts)
    ]


def test_poison_events_are_isolated(real: Pipeline) -> None:
    w = Worker(Settings(cache_size=0), Poisoned(real, "POISON"))
    outcomes, cached, _ = w._compute(works(["I am happy", "POISON pill", "너무 슬퍼요", "POISON again"]))
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["EventAnalysis", "Rejection", "EventAnalysis", "Rejection"]
    assert all(isinstance(o, Rejection) and o.error_class == "model_rejected" and "non-finite" in o.reason
               for o in outcomes[1::2])
    assert cached == [False] * 4


def test_a_model_failing_for_every_event_is_a_crash(real: Pipeline) -> None:
    w = Worker(Settings(cache_size=0), Poisoned(real, ""))  # "" is in every text
    with pytest.raises(InferenceError):
        w._compute(works(["a", "b", "c"]))
