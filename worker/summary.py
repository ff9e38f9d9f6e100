"""A result as a few lines a person can read in a terminal (`python -m worker analyze` / `tail`).

Plain ASCII bars, so the output survives any terminal, pipe or log collector; the exact numbers
stay available with `--json`.
"""

from __future__ import annotations

from schemas import labels as L
from schemas.result import ResultEvent, Temporal

BAR_WIDTH = 20


def bar(value: float, width: int = BAR_WIDTH) -> str:
    """`value` in [0, 1] as a fixed-width bar of `#` on `.`."""
    filled = round(max(0.0, min(1.0, value)) * width)
    return "#" * filled + "." * (width - filled)


def _trajectory(t: Temporal) -> list[str]:
    """The stream's Kalman-filtered state, how surprising this event was, and -- once the stream
    is long enough -- where the information about its next sentiment comes from (SURD)."""
    state = t.state
    mood = max(L.EMOTIONS, key=state.__getitem__)
    lines = [
        f"stream:     {t.events_seen} events; filtered sentiment {state['overall_sentiment']:+.2f} "
        f"(this event {t.innovation['overall_sentiment']:+.2f} off the expected), leaning {mood}; "
        f"surprise {t.surprise:.2f} (about 1 = as expected)"
    ]
    if t.surd is not None:
        shares = ", ".join(f"{k} {v:.2f}" for k, v in t.surd.shares.items())
        lines.append(f"causality:  {shares} (SURD over the last {t.surd.window_events} events)")
    return lines


def render(result: ResultEvent, text: str | None = None) -> str:
    """The dominant emotion, the seven emotions as bars, sentiment, confidence and, when the
    stream has a history, its trajectory."""
    e, i = result.analysis.emotion, result.integrated
    head = f"{result.event_id}  stream {result.stream_id}  lang {result.lang}"
    lines = [head if text is None else f"{head}\n  {text[:200]!r}"]
    lines.append(f"dominant:   {e.dominant} ({e.emotions[e.dominant]:.2f})")
    width = max(len(name) for name in L.EMOTIONS)
    for name in L.EMOTIONS:
        p = e.emotions[name]
        lines.append(f"  {name:<{width}} {bar(p)} {p:.2f}")
    lines.append(
        f"sentiment:  {i.overall_sentiment:+.2f} (-1 negative .. +1 positive)   confidence: {i.confidence:.2f}"
    )
    if result.temporal is not None and result.temporal.events_seen > 1:
        lines.extend(_trajectory(result.temporal))
    if not result.model.trained:
        lines.append("note:       untrained model (model.trained=false): the scores carry no meaning yet")
    return "\n".join(lines)
