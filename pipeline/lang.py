"""Language detection for events without `lang`: by Unicode script, nothing more.

This is honest about what it can do: it tells Korean, Japanese, Chinese and Russian
apart from everything else by the script their letters are written in, and calls
everything written in Latin letters (or in none) English. It does not tell English
from French or German; a producer that knows the language should send `lang`.

Rules, on letter counts: any kana, with kana+Han outnumbering Hangul -> "ja"
(Japanese mixes kana with Han); otherwise the most frequent of Hangul ("ko"),
Han ("zh"), Cyrillic ("ru"), Latin ("en"); no letters at all -> "en".
"""

from __future__ import annotations

import re

_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "hangul": ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7AF), (0xD7B0, 0xD7FF)),
    "kana": ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)),
    "han": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF)),
    "cyrillic": ((0x0400, 0x04FF), (0x0500, 0x052F)),
}
_LANG = {"hangul": "ko", "han": "zh", "cyrillic": "ru", "latin": "en"}
DEFAULT = "en"


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)


# One character class per script, so counting is one C-level scan per script instead of a
# Python loop over every character (this runs on the worker's main thread for every event
# without `lang`). Latin: alphabetic code points below U+0250 (the ranges above all lie higher).
_PATTERNS: dict[str, re.Pattern[str]] = {
    **{script: re.compile(f"[{_class(ranges)}]") for script, ranges in _RANGES.items()},
    "latin": re.compile("[" + "".join(re.escape(chr(c)) for c in range(0x0250) if chr(c).isalpha()) + "]"),
}


def detect(text: str) -> str:
    counts = {script: len(pattern.findall(text)) for script, pattern in _PATTERNS.items()}
    if counts["kana"] and counts["kana"] + counts["han"] > counts["hangul"]:
        return "ja"
    best = max(("hangul", "han", "cyrillic", "latin"), key=lambda s: counts[s])
    return _LANG[best] if counts[best] else DEFAULT
