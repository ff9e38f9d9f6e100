"""The batch engine without a broker: what it writes is a valid `ResultEvent` (checked against
the published JSON Schema), the cache skips the model and the tokenizer, a text repeated in a
batch is computed once, the stream's causal clarity is computed in one place, and `compact`
detail leaves out exactly what it says."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import orjson
import pytest

from pipeline import Pipeline
from schemas import labels as L
from schemas.export import OUT_DIR
from schemas.input import InputEvent
from worker.config import Settings
from worker.engine import Engine, Item, Outcome, Result
from worker.results import PRECISION

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEXTS = ["I am so happy today!", "너무 슬퍼요", "I regret what I said to her.", "발표 끝! 잘 해냈어요"]


class Counting:
    """The real small pipeline, counting what the engine asks of it."""

    def __init__(self, real: Pipeline) -> None:
        self.real = real
        self.profile, self.trained, self.checkpoint_id, self.device = real.profile, False, None, real.device
        self.rows = 0
        self.counted = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def count_tokens(self, text: str) -> int:
        self.counted += 1
        return self.real.count_tokens(text)

    def run(self, prepared: Any) -> list[Any]:
        self.rows += len(prepared)
        return self.real.run(prepared)


@pytest.fixture(scope="module")
def real() -> Pipeline:
    return Pipeline.load("small", checkpoint=None, allow_untrained=True, num_threads=2)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads((OUT_DIR / "result_event.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def admitted(engine: Engine, n: int, stream: str = "s", partition: int = 0, first: int = 0) -> list[Item]:
    items = []
    for i in range(first, first + n):
        ev = InputEvent(event_id=f"e{i}", stream_id=stream, text=TEXTS[i % len(TEXTS)], lang=None,
                        ts=T0 + timedelta(seconds=30 * i), metadata={"i": i})
        out = engine.admit(ev)
        assert isinstance(out, tuple), out
        parts, tokens, key = out
        items.append(Item(ev, partition, i, 0, parts, tokens, key))
    return items


def results(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    assert all(isinstance(o, Result) for o in outcomes), outcomes
    return [orjson.loads(o.value) for o in outcomes]  # type: ignore[union-attr]


def floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in floats(v)]
    if isinstance(value, list):
        return [x for v in value for x in floats(v)]
    return []


@pytest.mark.parametrize("detail", ["full", "compact"])
def test_results_are_valid_against_the_published_schema(real: Pipeline, validator: Any, detail: str) -> None:
    """80 events of one stream (SURD from 64, spectra from 8), cache hits and misses: every
    result validates against result_event.schema.json, floats at the documented precision."""
    engine = Engine(Settings(overlap=False, result_detail=detail), real)
    docs = []
    for start in range(0, 80, 16):
        docs += results(engine.process(admitted(engine, 16, first=start)))
    for doc in docs:
        validator.validate(doc)
    assert docs[-1]["temporal"]["surd"] is not None and docs[-1]["cached"] is True and docs[0]["cached"] is False
    assert all(round(x, PRECISION) == x for doc in docs[-3:] for x in floats(doc))
    assert [d["metadata"]["i"] for d in docs] == list(range(80))
    last = docs[-1]
    if detail == "compact":
        assert "dsp" not in last["auxiliary"] and "context_weights" not in last["analysis"]["bentham"]
        assert last["temporal"]["dsp"] is None
    else:
        assert len(last["auxiliary"]["dsp"]["frequency"]) == L.DSP_BINS
        assert len(last["analysis"]["bentham"]["context_weights"]) == 36
        assert len(last["temporal"]["dsp"]["resonance"]) == L.DSP_BINS
    engine.close()


def test_compact_is_a_fraction_of_full(real: Pipeline) -> None:
    sizes = {}
    for detail in ("full", "compact"):
        engine = Engine(Settings(overlap=False, result_detail=detail), real)
        outs = engine.process(admitted(engine, 16))
        sizes[detail] = sum(len(o.value) for o in outs)  # type: ignore[union-attr]
    assert sizes["compact"] < 0.5 * sizes["full"], sizes


def test_causal_clarity_is_the_streams_figure(real: Pipeline) -> None:
    """`integrated.causal_clarity`: 'insufficient_history' until the stream has a SURD block,
    then redundant + unique of `temporal.surd.shares` — the one place it is computed."""
    engine = Engine(Settings(overlap=False), real)
    docs = results(engine.process(admitted(engine, 72)))
    for doc in docs:
        surd = doc["temporal"]["surd"]
        clarity = doc["integrated"]["causal_clarity"]
        if surd is None:
            assert clarity == L.INSUFFICIENT_HISTORY
        else:
            want = min(1.0, surd["shares"]["redundant"] + surd["shares"]["unique"])
            assert clarity == pytest.approx(want, abs=2 * 10**-PRECISION)
    assert docs[63]["temporal"]["surd"] is not None and docs[62]["temporal"]["surd"] is None


def test_cache_skips_the_model_and_the_tokenizer_and_repeats_are_computed_once(real: Pipeline) -> None:
    counting = Counting(real)
    engine = Engine(Settings(overlap=False, cache_size=100), counting)
    first = results(engine.process(admitted(engine, 12)))  # 4 distinct texts, 3 times each, one batch
    assert counting.rows == 4 and counting.counted == 12
    assert [d["cached"] for d in first] == [False] * 4 + [True] * 8
    again = results(engine.process(admitted(engine, 8, stream="t", first=12)))
    assert counting.rows == 4 and counting.counted == 12  # cached texts: neither forward nor tokenizer
    assert all(d["cached"] for d in again)
    for a, b in zip(first[:4], again[::1]):
        assert a["analysis"] == b["analysis"] and a["auxiliary"] == b["auxiliary"]
        assert {k: v for k, v in a["integrated"].items() if k != "causal_clarity"} == \
            {k: v for k, v in b["integrated"].items() if k != "causal_clarity"}
    engine.close()


def test_streams_on_two_partitions_never_mix(real: Pipeline) -> None:
    engine = Engine(Settings(overlap=False), real)
    a = admitted(engine, 3, stream="same", partition=0)
    b = admitted(engine, 2, stream="same", partition=1, first=3)
    docs = results(engine.process(a + b))
    assert [d["temporal"]["events_seen"] for d in docs] == [1, 2, 3, 1, 2]
    assert engine.states.get(0, "same").events_seen == 3 and engine.states.get(1, "same").events_seen == 2


def test_a_text_the_batch_in_flight_computes_is_not_computed_again(real: Pipeline) -> None:
    """With the model thread, batch N+1 is opened while N's forward runs: its texts that N
    computes are taken from the cache once N is finished, not sent to the model again."""
    counting = Counting(real)
    engine = Engine(Settings(overlap=True, cache_size=100), counting)
    first = admitted(engine, 4)
    second = admitted(engine, 8, stream="t", first=4)  # the same four texts, twice
    out = engine.advance(first) + engine.advance(second) + engine.flush()
    docs = results(out)
    assert counting.rows == 4, counting.rows
    assert [d["cached"] for d in docs] == [False] * 4 + [True] * 8
    assert docs[4]["analysis"] == docs[0]["analysis"]
    engine.close()


def test_a_text_the_batch_in_flight_could_not_analyse_is_analysed_alone(real: Pipeline) -> None:
    from tests.unit.test_model_rejection import Poisoned

    engine = Engine(Settings(overlap=True, cache_size=100), Poisoned(real, "POISON"))
    ts = T0
    events = [InputEvent(event_id=f"p{i}", stream_id="s", text=t, ts=ts) for i, t in enumerate(
        ["POISON pill", "fine", "POISON pill", "fine"])]
    items = []
    for i, ev in enumerate(events):
        parts, tokens, key = engine.admit(ev)  # type: ignore[misc]
        items.append(Item(ev, 0, i, 0, parts, tokens, key))
    out = engine.advance(items[:2]) + engine.advance(items[2:]) + engine.flush()
    kinds = [type(o).__name__ for o in out]
    assert kinds == ["Rejected", "Result", "Rejected", "Result"], kinds
    assert out[2].why.error_class == "model_rejected"  # type: ignore[union-attr]
    engine.close()
