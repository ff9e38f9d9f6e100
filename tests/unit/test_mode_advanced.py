"""production-advanced in the pipeline: MC-dropout spreads and explanations ride along the
same point values as `production`, for the events they apply to."""

from __future__ import annotations

import pytest

from pipeline import Pipeline
from pipeline.api import Advanced
from schemas.input import InputEvent
from worker import samples


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return Pipeline.load("small", None, allow_untrained=True, device="cpu", num_threads=2)


def events() -> list[InputEvent]:
    return [
        InputEvent(event_id="en", stream_id="s", text="I should have told her the truth before she left."),
        InputEvent(event_id="ko", stream_id="s", text="그때 화내지 말았어야 했는데 너무 후회돼요."),
        InputEvent(event_id="img", stream_id="s", image=samples.image_png()),
    ]


def test_advanced_adds_spread_and_explanations_without_moving_point_values(pipe: Pipeline) -> None:
    plain = pipe.analyze(events())
    pipe.advanced = Advanced(passes=4, top_k=3)
    try:
        adv = pipe.analyze(events())
    finally:
        pipe.advanced = None
    for p, a in zip(plain, adv):
        assert a.integrated == p.integrated and a.analysis == p.analysis
        assert a.uncertainty is not None and a.uncertainty.passes == 4
        assert all(v > 0 for v in a.uncertainty.emotion.values())  # dropout 0.1: a real spread
        assert p.uncertainty is None and p.explanation is None
    en = adv[0].explanation
    assert en is not None and en.encoder == "minilm" and en.method == "grad_x_input"
    words = set("i should have told her the truth before she left .".split())
    for score, tokens in en.scores.items():
        assert 1 <= len(tokens) <= 3, score
        assert all(t.token in words for t in tokens), tokens
        assert all(abs(t.weight) <= 1 for t in tokens)
    # MiniLM cannot read Korean and e5-torch is not wired into explanations: no explanation rather than a wrong one
    assert adv[1].explanation is None
    assert adv[2].explanation is None  # no text


def test_explanation_of_an_event_does_not_depend_on_its_batch(pipe: Pipeline) -> None:
    pipe.advanced = Advanced(passes=2, top_k=4)
    try:
        alone = pipe.analyze(events()[:1])[0].explanation
        together = pipe.analyze(events())[0].explanation
    finally:
        pipe.advanced = None
    assert alone is not None and together is not None
    for score in alone.scores:
        assert [t.token for t in alone.scores[score]] == [t.token for t in together.scores[score]]
        for a, b in zip(alone.scores[score], together.scores[score]):
            assert a.weight == pytest.approx(b.weight, abs=1e-4)
