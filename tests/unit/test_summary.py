"""The terminal summary of `python -m worker analyze` / `tail` (worker/summary.py): no broker."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from schemas import labels as L
from schemas.result import ResultEvent
from worker.summary import BAR_WIDTH, bar, render


def _uniform(names: tuple[str, ...], value: float = 0.0) -> dict[str, float]:
    return {n: value for n in names}


def result(temporal: dict[str, Any] | None = None, trained: bool = True) -> ResultEvent:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    emotions = {"joy": 0.55, "love": 0.2, "surprise": 0.1, "anger": 0.05, "fear": 0.04, "sadness": 0.03,
                "disgust": 0.03}
    spectrum = [0.0] * L.DSP_BINS
    return ResultEvent.model_validate({
        "event_id": "ev-1", "stream_id": "alice", "ts": now, "processed_at": now, "lang": "en",
        "model": {"profile": "small", "mode": "production", "checkpoint_id": None, "version": "0.1.0",
                  "trained": trained},
        "analysis": {
            "emotion": {"emotions": emotions, "cultural": _uniform(L.CULTURAL, 0.1), "dominant": "joy"},
            "bentham": {"scores": _uniform(L.BENTHAM_SCORES, 0.5), "context_weights": _uniform(L.BENTHAM_CONTEXT, 0.5),
                        "legal_risks": _uniform(L.LEGAL_RISKS, 0.1)},
            "regret": {"regret_potential": 0.2, "factors": _uniform(L.REGRET_FACTORS, 0.2),
                       "counterfactuals": _uniform(L.COUNTERFACTUALS, 0.2)},
            "surd": {"kinds": _uniform(L.SURD_KINDS, 0.25), "cues": _uniform(L.SURD_CUES, 0.1)},
        },
        "integrated": {"overall_sentiment": 0.71, "ethical_score": 0.5, "regret_potential": 0.2,
                       "causal_clarity": "insufficient_history", "confidence": 0.83},
        "temporal": temporal,
        "auxiliary": {"dsp": {"frequency": spectrum, "resonance": spectrum},
                      "utility": {"cache": _uniform(L.UTILITY_CACHE), "performance": _uniform(L.UTILITY_PERFORMANCE)}},
        "latency_ms": {"queue": 1.0, "model": 2.0, "total": 3.0},
    })


def temporal(events: int, surd: bool = False) -> dict[str, Any]:
    state = {**_uniform(L.STATE_VECTOR, 0.1), "overall_sentiment": 0.4, "sadness": 0.6}
    out: dict[str, Any] = {
        "state": state, "variance": _uniform(L.STATE_VECTOR, 0.01),
        "innovation": {**_uniform(L.STATE_VECTOR, 0.0), "overall_sentiment": 0.25},
        "surprise": 1.3, "events_seen": events,
    }
    if surd:
        out["surd"] = {"window_events": 64, "at_event": 64, "redundant": 0.1,
                       "unique": _uniform(L.STREAM_SURD_SOURCES, 0.0), "synergistic": 0.0, "leak": 0.9,
                       "shares": {"redundant": 0.1, "unique": 0.0, "synergistic": 0.0, "leak": 0.9}}
    return out


def test_bar_is_fixed_width_and_clamped() -> None:
    assert bar(0.0) == "." * BAR_WIDTH
    assert bar(1.0) == "#" * BAR_WIDTH
    assert bar(0.5) == "#" * (BAR_WIDTH // 2) + "." * (BAR_WIDTH // 2)
    assert bar(-3.0) == bar(0.0) and bar(7.0) == bar(1.0)


def test_render_shows_dominant_seven_bars_sentiment_and_confidence() -> None:
    text = render(result(), "I got the job")
    lines = text.splitlines()
    assert "ev-1" in lines[0] and "alice" in lines[0] and "'I got the job'" in lines[1]
    assert "dominant:   joy (0.55)" in text
    bars = [ln for ln in lines if ln.startswith("  ") and ("#" in ln or "." * 5 in ln)]
    assert [ln.split()[0] for ln in bars] == list(L.EMOTIONS)
    assert "  joy      " + bar(0.55) + " 0.55" in lines
    assert "sentiment:  +0.71" in text and "confidence: 0.83" in text
    assert "stream:" not in text and "untrained" not in text  # no history, trained model


def test_render_shows_the_trajectory_once_the_stream_has_one() -> None:
    assert "stream:" not in render(result(temporal(1)))  # a first event has no trajectory yet
    text = render(result(temporal(12)))
    expected = "stream:     12 events; filtered sentiment +0.40 (this event +0.25 off the expected), leaning sadness"
    assert expected in text
    assert "surprise 1.30" in text and "causality:" not in text
    text = render(result(temporal(70, surd=True)))
    assert "causality:  redundant 0.10, unique 0.00, synergistic 0.00, leak 0.90 (SURD over the last 64 events)" in text


def test_render_says_when_the_model_is_untrained() -> None:
    assert "untrained model" in render(result(trained=False))
