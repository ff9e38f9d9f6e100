"""REDHEART_COMPILE: the transformers encoders under torch.compile give the eager answers,
and the gradient explanations (which use the eager module underneath) still work."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import Pipeline
from pipeline.api import Advanced
from schemas.input import InputEvent

TEXTS = ["I finally got the job and I am so happy", "그때 화내지 말았어야 했는데 너무 후회돼요",
         "The storm outside scares me", "We adopted a puppy and we love her"]


def events(texts: list[str]) -> list[InputEvent]:
    return [InputEvent(event_id=f"e{i}", stream_id="s", text=t) for i, t in enumerate(texts)]


@pytest.mark.timeout(900)
def test_compiled_encoders_give_the_eager_answers() -> None:
    eager = Pipeline.load("small", checkpoint=None, allow_untrained=True, device="cpu", num_threads=2)
    compiled = Pipeline.load("small", checkpoint=None, allow_untrained=True, device="cpu", num_threads=2, compile=True)
    assert compiled.compiled and compiled.status()["compiled"] is True
    assert type(compiled.encoders[0].model).__name__ == "OptimizedModule"  # type: ignore[attr-defined]
    for batch in (TEXTS, TEXTS[:1], TEXTS * 5):  # other batch sizes than the warm-up's
        for a, b in zip(eager.analyze(events(batch)), compiled.analyze(events(batch))):
            ea = np.array(list(a.analysis.emotion.emotions.values()))
            eb = np.array(list(b.analysis.emotion.emotions.values()))
            np.testing.assert_allclose(eb, ea, atol=1e-4)
            assert abs(a.integrated.overall_sentiment - b.integrated.overall_sentiment) < 1e-4
    compiled.advanced = Advanced(passes=2, top_k=3)
    out = compiled.analyze(events(TEXTS[:1]))
    assert out[0].explanation is not None and out[0].explanation.encoder == "minilm"
