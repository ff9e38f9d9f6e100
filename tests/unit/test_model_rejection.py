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


class Recording(Worker):
    """The real batch path (lookups, tokenization, the model thread, isolation, state) with
    what would be handed to the producer recorded instead (no broker in unit tests)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.out: list[tuple[str, str, int | None]] = []  # (kind, event_id, events_seen)

    def _produce_result(self, work: Work, a: Any, temporal: Any, *rest: Any) -> None:
        self.out.append(("result", work.event.event_id, temporal.events_seen))

    def _dead_letter(self, topic: str, partition: int, offset: int, *rest: Any) -> None:
        why = rest[-1]
        self.out.append((why.error_class, f"e{offset}", None))


def pending(ws: list[Work], partition: int = 0) -> list[Any]:
    from worker.batcher import Pending

    for w in ws:
        w.partition = partition
    return [Pending(w, 4, 0.0) for w in ws]


@pytest.mark.parametrize("overlap", [True, False])
def test_pipelined_batches_keep_order_and_isolate_poison(real: Pipeline, overlap: bool) -> None:
    """Batch N's forward runs on the model thread while N-1 is finished: results still come
    out in arrival order, a stream's state advances once per event in that order, and a
    poison event in a pipelined batch is isolated like in an inline one."""
    from concurrent.futures import ThreadPoolExecutor

    w = Recording(Settings(cache_size=0, overlap=overlap), Poisoned(real, "POISON"))
    if overlap:
        w._model_thread = ThreadPoolExecutor(max_workers=1)
    texts = ["I am happy", "POISON pill", "너무 슬퍼요", "what a day", "POISON again", "so calm", "I regret it"]
    all_works = works(texts)
    w._advance(pending(all_works[:3]))
    assert (w._inflight is not None) == overlap  # the first batch is still in flight with overlap
    w._advance(pending(all_works[3:5]))
    w._advance(pending(all_works[5:]))
    w._finish_inflight()
    assert w._inflight is None
    assert w.out == [
        ("result", "e0", 1), ("model_rejected", "e1", None), ("result", "e2", 2), ("result", "e3", 3),
        ("model_rejected", "e4", None), ("result", "e5", 4), ("result", "e6", 5),
    ]
    if w._model_thread is not None:
        w._model_thread.shutdown()


def test_a_lost_partition_gets_nothing_from_the_batch_in_flight(real: Pipeline) -> None:
    from concurrent.futures import ThreadPoolExecutor

    w = Recording(Settings(cache_size=0), Poisoned(real, "POISON"))
    w._model_thread = ThreadPoolExecutor(max_workers=1)
    a, b = works(["kept one", "kept two"]), works(["lost one", "lost two"])
    for i, x in enumerate(b):
        x.offset, x.event = 10 + i, x.event.model_copy(update={"event_id": f"e{10 + i}", "stream_id": "t"})
    w._advance(pending(a, 0) + pending(b, 1))
    w._finish_inflight(gone={("in", 1)})
    assert w.out == [("result", "e0", 1), ("result", "e1", 2)]
    w._model_thread.shutdown()


@pytest.mark.parametrize("overlap", [True, False])
def test_a_lone_rejected_event_is_a_dead_letter_not_a_crash(real: Pipeline, overlap: bool) -> None:
    """A batch of one that the model rejects is that event's problem (as in `_compute`), on
    the pipelined path too: one `model_rejected` dead letter, and the next batch goes on."""
    from concurrent.futures import ThreadPoolExecutor

    w = Recording(Settings(cache_size=0, overlap=overlap), Poisoned(real, "POISON"))
    if overlap:
        w._model_thread = ThreadPoolExecutor(max_workers=1)
    ws = works(["POISON alone", "fine after it"])
    w._advance(pending(ws[:1]))
    w._advance(pending(ws[1:]))
    w._finish_inflight()
    assert w.out == [("model_rejected", "e0", None), ("result", "e1", 1)]
    assert w._compute(works(["POISON alone"]))[0][0].error_class == "model_rejected"  # type: ignore[union-attr]
    if w._model_thread is not None:
        w._model_thread.shutdown()
