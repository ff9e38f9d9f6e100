"""A batch the model rejects is split to find the poison events: they become `model_rejected`
dead letters, the rest of the batch gets its results; a model that fails for every event is
a crash, not a flood of dead letters."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from pipeline import Pipeline
from pipeline.analysis import Analyzed
from pipeline.errors import InferenceError
from schemas.input import InputEvent
from worker.engine import Engine, Item, Outcome, Rejected, Result
from worker.config import Settings


class Poisoned:
    """The real small pipeline, except that any batch containing a poison text fails."""

    def __init__(self, real: Pipeline, poison: str) -> None:
        self.real, self.poison = real, poison
        self.profile, self.trained, self.checkpoint_id, self.device = real.profile, False, None, real.device

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def run(self, prepared: Any) -> list[Analyzed]:
        if any(self.poison in t for t in prepared.texts):
            raise InferenceError("non-finite analyzer outputs for batch rows [0]")
        return self.real.run(prepared)


@pytest.fixture(scope="module")
def real() -> Pipeline:
    return Pipeline.load("small", checkpoint=None, allow_untrained=True, num_threads=2)


def items(texts: list[str], partition: int = 0, first: int = 0, stream: str = "s") -> list[Item]:
    ts = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        Item(InputEvent(event_id=f"e{first + i}", stream_id=stream, text=t, ts=ts), partition, first + i)
        for i, t in enumerate(texts)
    ]


def summary(outcomes: list[Outcome]) -> list[tuple[str, str, int | None]]:
    """(result or error class, event id, the stream's events_seen) per outcome."""
    out = []
    for o in outcomes:
        if isinstance(o, Result):
            doc = orjson.loads(o.value)
            out.append(("result", doc["event_id"], doc["temporal"]["events_seen"]))
        else:
            assert isinstance(o, Rejected)
            out.append((o.why.error_class, o.item.event.event_id, None))
    return out


def test_poison_events_are_isolated(real: Pipeline) -> None:
    engine = Engine(Settings(cache_size=0, overlap=False), Poisoned(real, "POISON"))
    outcomes = engine.process(items(["I am happy", "POISON pill", "너무 슬퍼요", "POISON again"]))
    assert [type(o).__name__ for o in outcomes] == ["Result", "Rejected", "Result", "Rejected"]
    assert all(o.why.error_class == "model_rejected" and "non-finite" in o.why.reason
               for o in outcomes[1::2])  # type: ignore[union-attr]
    assert [orjson.loads(o.value)["cached"] for o in outcomes[::2]] == [False, False]  # type: ignore[union-attr]


def test_a_model_failing_for_every_event_is_a_crash(real: Pipeline) -> None:
    engine = Engine(Settings(cache_size=0, overlap=False), Poisoned(real, ""))  # "" is in every text
    with pytest.raises(InferenceError):
        engine.process(items(["a", "b", "c"]))


@pytest.mark.parametrize("overlap", [True, False])
def test_pipelined_batches_keep_order_and_isolate_poison(real: Pipeline, overlap: bool) -> None:
    """Batch N's forward runs on the model thread while N-1 is finished: outcomes still come
    out in arrival order, a stream's state advances once per event in that order, and a
    poison event in a pipelined batch is isolated like in an inline one."""
    engine = Engine(Settings(cache_size=0, overlap=overlap), Poisoned(real, "POISON"))
    texts = ["I am happy", "POISON pill", "너무 슬퍼요", "what a day", "POISON again", "so calm", "I regret it"]
    all_items = items(texts)
    out = engine.advance(all_items[:3])
    assert (engine.inflight_done() is not None) == overlap  # the first batch is still in flight with overlap
    out += engine.advance(all_items[3:5])
    out += engine.advance(all_items[5:])
    out += engine.flush()
    assert engine.inflight_done() is None
    assert summary(out) == [
        ("result", "e0", 1), ("model_rejected", "e1", None), ("result", "e2", 2), ("result", "e3", 3),
        ("model_rejected", "e4", None), ("result", "e5", 4), ("result", "e6", 5),
    ]
    engine.close()


def test_a_lost_partition_gets_nothing_from_the_batch_in_flight(real: Pipeline) -> None:
    engine = Engine(Settings(cache_size=0, overlap=True), Poisoned(real, "POISON"))
    kept, lost = items(["kept one", "kept two"]), items(["lost one", "lost two"], partition=1, first=10, stream="t")
    assert engine.advance(kept + lost) == []
    assert summary(engine.flush(gone={1})) == [("result", "e0", 1), ("result", "e1", 2)]
    engine.close()


@pytest.mark.parametrize("overlap", [True, False])
def test_a_lone_rejected_event_is_a_dead_letter_not_a_crash(real: Pipeline, overlap: bool) -> None:
    """A batch of one that the model rejects is that event's problem, on the pipelined path
    too: one `model_rejected` dead letter, and the next batch goes on."""
    engine = Engine(Settings(cache_size=0, overlap=overlap), Poisoned(real, "POISON"))
    ws = items(["POISON alone", "fine after it"])
    out = engine.advance(ws[:1]) + engine.advance(ws[1:]) + engine.flush()
    assert summary(out) == [("model_rejected", "e0", None), ("result", "e1", 1)]
    assert summary(engine.process(items(["POISON alone"], first=5))) == [("model_rejected", "e5", None)]
    engine.close()
