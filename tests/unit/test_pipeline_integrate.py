"""Integrated-score formulas against hand-computed values; language detection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline import integrate as I
from pipeline.encoders import masked_mean_pool
from pipeline.lang import detect
from schemas import labels as L


def test_overall_sentiment_is_positive_minus_negative_mass():
    # joy love surprise | anger fear sadness disgust
    e = np.array([[0.30, 0.20, 0.10, 0.15, 0.05, 0.10, 0.10], [0, 0, 0, 0, 0, 1.0, 0]], dtype=np.float32)
    np.testing.assert_allclose(I.overall_sentiment(e), [0.60 - 0.40, -1.0], atol=1e-6)


def test_ethical_score_is_mean_of_ten_bentham_scores():
    s = np.arange(10, dtype=np.float32)[None, :] / 10.0  # 0.0 .. 0.9
    np.testing.assert_allclose(I.ethical_score(s), [0.45], atol=1e-6)


def test_event_clarity_is_redundant_plus_unique():
    # redundant unique synergistic leak
    k = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.0, 0.0], [0.6, 0.6, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(I.event_clarity(k), [0.3, 1.0, 1.0], atol=1e-6)


def test_stream_causal_clarity_is_the_streams_share_or_insufficient_history():
    shares = {"redundant": 0.25, "unique": 0.5, "synergistic": 0.2, "leak": 0.05}
    assert I.stream_causal_clarity(shares) == pytest.approx(0.75)
    assert I.stream_causal_clarity({**shares, "redundant": 0.6}) == 1.0
    assert I.stream_causal_clarity(None) == L.INSUFFICIENT_HISTORY == "insufficient_history"


def test_confidence_is_fraction_of_analyses_times_certainty():
    np.testing.assert_allclose(I.confidence(np.array([4, 3, 0]), np.array([0.8, 0.8, 0.9])), [0.8, 0.6, 0.0])


def _outputs(**override):
    out = {
        "emotion.emotions": np.array([[0.30, 0.20, 0.10, 0.15, 0.05, 0.10, 0.10]]),
        "emotion.cultural": np.array([[0.5, 0.5, 0.5]]),
        "bentham.scores": np.full((1, 10), 0.25),
        "regret.regret_potential": np.array([[0.7]]),
        "surd.kinds": np.array([[0.1, 0.2, 0.3, 0.4]]),
        "calibration.certainty": np.array([[0.5]]),
    }
    out.update(override)
    return out


def test_integrate_and_analyses_produced():
    got = I.integrate(_outputs())
    assert got["overall_sentiment"][0] == pytest.approx(0.2)
    assert got["ethical_score"][0] == pytest.approx(0.25)
    assert got["regret_potential"][0] == pytest.approx(0.7)
    assert "causal_clarity" not in got  # the stream's figure, not an event's
    assert got["confidence"][0] == pytest.approx(0.5)
    broken = I.integrate(_outputs(**{"surd.kinds": np.array([[np.nan, 0.2, 0.3, 0.4]])}))
    assert broken["confidence"][0] == pytest.approx(3 / 4 * 0.5)


def test_float_rounding_is_clipped_into_range():
    e = np.array([[1.0000001, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
    assert I.overall_sentiment(e)[0] <= 1.0


def test_masked_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(masked_mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


@pytest.mark.parametrize(
    "text,lang",
    [
        ("오늘 정말 행복해요", "ko"),
        ("今日はとても楽しいです", "ja"),
        ("我今天很高兴", "zh"),
        ("Мне сегодня грустно", "ru"),
        ("I am happy today", "en"),
        ("Je suis content", "en"),  # Latin script: not told apart (documented)
        ("12345 !!!", "en"),
        ("삼성 Galaxy 정말 좋아요", "ko"),
        ("東京で買った本を読みました", "ja"),
    ],
)
def test_script_based_language_detection(text, lang):
    assert detect(text) == lang


def _reference_detect(text: str) -> str:
    """The rules of `pipeline.lang`, character by character (what `detect` was before it
    counted with one regex scan per script)."""
    from pipeline.lang import _LANG, _RANGES

    counts = {"hangul": 0, "kana": 0, "han": 0, "cyrillic": 0, "latin": 0}
    for ch in text:
        cp = ord(ch)
        script = next((s for s, ranges in _RANGES.items() if any(lo <= cp <= hi for lo, hi in ranges)), None)
        if script is None and ch.isalpha() and cp < 0x0250:
            script = "latin"
        if script is not None:
            counts[script] += 1
    if counts["kana"] and counts["kana"] + counts["han"] > counts["hangul"]:
        return "ja"
    best = max(("hangul", "han", "cyrillic", "latin"), key=lambda s: counts[s])
    return _LANG[best] if counts[best] else "en"


def test_detect_equals_the_character_by_character_rules() -> None:
    import random

    rng = random.Random(5)
    # code points around every range edge, plus Latin-1 letters and non-letters (µ, ×, ÷, digits)
    edges = [c + d for lo, hi in ((0x1100, 0x11FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF),
                                   (0x0400, 0x052F), (0x3130, 0x318F), (0xF900, 0xFAFF), (0x20000, 0x2A6DF))
             for c in (lo, hi) for d in (-1, 0, 1)]
    pool = [chr(c) for c in edges] + list("abcXYZ µ×÷ªº0123!?ÿĀɏɐ가나다あアカ漢字Жжё") + [" "] * 5
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 30)))
        assert detect(text) == _reference_detect(text), repr(text)
