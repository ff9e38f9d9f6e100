"""Property-based fuzzing of the accept path: no record can stop a partition.

Hypothesis generates records — raw bytes, JSON of the wrong shapes, and events whose every
field is pushed to its extremes (timestamps past year 9999, booleans for numbers, huge and
tiny floats in biosignals, truncated and mutated images and audio, nested metadata) — and
feeds each through the worker's own accept step (`Driver._admit`: decode, validation,
event-time window, part extraction, token count) with the real `small` pipeline. Every
record must come out as a batchable event or a dead letter with a *precise* class: an
`internal_error` means an exception escaped the checks. Every accepted event is then taken
to the end through the engine — forward, temporal state, the result's JSON written and
validated against the `ResultEvent` contract — because what passes
accept must always be publishable.
"""

from __future__ import annotations

import base64
import io
import os
import wave
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline import Pipeline
from tests.faults.report import record
from schemas.result import ResultEvent
from worker.driver import Driver
from worker.engine import Item, Result
from worker.config import Settings
from worker.decode import Rejection

EXAMPLES = 1000
NOW_MS = int(datetime.now(tz=timezone.utc).timestamp() * 1000)


@dataclass
class Record:
    """What `_admit` reads of a consumed record (the worker's accept step takes any object
    with confluent-kafka `Message`'s accessors)."""

    raw: bytes | None
    ts_ms: int = NOW_MS
    coords: tuple[str, int, int] = ("in", 0, 0)
    hdrs: list[tuple[str, bytes]] = field(default_factory=list)

    def value(self) -> bytes | None:
        return self.raw

    def timestamp(self) -> tuple[int, int]:
        return (1, self.ts_ms)

    def topic(self) -> str:
        return self.coords[0]

    def partition(self) -> int:
        return self.coords[1]

    def offset(self) -> int:
        return self.coords[2]

    def key(self) -> bytes | None:
        return b"k"

    def headers(self) -> list[tuple[str, bytes]]:
        return self.hdrs


def _png(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(w: int, h: int, seed: int, progressive: bool) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", progressive=progressive)
    return buf.getvalue()


def _wav(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.clip(samples * 32767, -32768, 32767).astype("<i2").tobytes())
    return buf.getvalue()


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """Real bytes, then truncated, bit-flipped or spliced: where decoders break."""
    kind = draw(st.sampled_from(["as_is", "truncate", "flip", "splice"]))
    if kind == "truncate" and len(data) > 1:
        return data[: draw(st.integers(1, len(data) - 1))]
    if kind == "flip":
        b = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(b) - 1))
            b[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(b)
    if kind == "splice":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.binary(max_size=64)) + data[i:]
    return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@st.composite
def images(draw: st.DrawFn) -> Any:
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    fmt = draw(st.sampled_from(["png", "jpeg"]))
    real = _png(w, h, w * h) if fmt == "png" else _jpeg(w, h, w * h, draw(st.booleans()))
    data = draw(st.one_of(mutated(real), st.binary(max_size=256)))
    declared = draw(st.sampled_from([fmt, fmt, "png" if fmt == "jpeg" else "jpeg", "gif", 7]))
    return {"format": declared, "data": draw(st.sampled_from([_b64(data), _b64(data)[:-1] + "!", ""]))}


FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(-1e12, 1e12),
    st.sampled_from([0.0, -0.0, 1e-308, 5e-324, 2e9, -2e9, 1e300, -1e300, 1.7976931348623157e308]),
    st.integers(-(2**70), 2**70),
    st.booleans(),
)


@st.composite
def audios(draw: st.DrawFn) -> Any:
    rate = draw(st.sampled_from([4000, 8000, 16000, 44100, 96000, 192000]))
    n = draw(st.integers(1, 3 * rate // 4))
    t = np.arange(n) / rate
    samples = draw(st.sampled_from([
        np.sin(2 * np.pi * 220 * t) * 0.5, np.zeros(n), np.ones(n), np.sign(np.sin(2 * np.pi * 3 * t)),
    ]))
    fmt = draw(st.sampled_from(["wav", "pcm_s16le", "mp3"]))
    raw = _wav(samples, rate) if fmt == "wav" else (samples * 32767).astype("<i2").tobytes()
    part: dict[str, Any] = {"format": fmt, "data": _b64(draw(mutated(raw)))}
    if fmt != "wav" or draw(st.booleans()):
        part["sample_rate"] = draw(st.one_of(st.just(rate), st.integers(-5, 300_000), st.just(float(rate))))
    return part


@st.composite
def signals(draw: st.DrawFn) -> Any:
    rate = draw(st.one_of(st.sampled_from([0.5, 4.0, 100.0, 256.0, 1000.0]), st.sampled_from([256.0, 500]), FLOATS))
    shape = draw(st.sampled_from(["noise", "constant", "extreme", "listed"]))
    n = draw(st.integers(1, 3000))
    rng = np.random.default_rng(n)
    if shape == "noise":
        values: list[Any] = (rng.standard_normal(n) * draw(st.sampled_from([1.0, 1e6, 2e9, 1e150]))).tolist()
    elif shape == "constant":
        values = [draw(FLOATS)] * n
    elif shape == "extreme":
        values = [draw(st.sampled_from([1e300, -1e300, 2e9, 5e-324, 0.0])) for _ in range(min(n, 64))] * (n // 64 + 1)
    else:
        values = draw(st.lists(FLOATS, min_size=0, max_size=40))
    return {"sample_rate": rate, "values": values}


TS = st.one_of(
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([NOW_MS, NOW_MS + 10 * 3600 * 1000, 1e20, -1e20, 0, -1, True, None]),
    st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", "-1",
                     "2026-02-30T00:00:00Z", "2026-01-01T25:00:00Z", "yesterday", "", "2026-01-01T00:00:00+99:99"]),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)
TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["I am so happy today", "너무 슬퍼요", "   ", "\u200b", "a" * 9000, "😀" * 300, "\x00\x01"]),
    st.integers(),
    st.none(),
)


VALID = {
    "event_id": st.text(min_size=1, max_size=12),
    "stream_id": st.sampled_from(["s1", "s2", "s3"]),
    "text": st.one_of(st.text(min_size=1, max_size=80).filter(str.strip),
                      st.sampled_from(["I am so happy today", "너무 슬퍼요", "what a mess, I regret it"])),
    "ts": st.one_of(st.integers(NOW_MS - 10**12, NOW_MS + 10**6),
                    st.sampled_from(["2026-01-01T00:00:00Z", "1999-12-31T23:59:59.123456+09:00"])),
    "lang": st.sampled_from(["en", "ko", "ja"]),
    "schema_version": st.sampled_from(["1", "1.3"]),
    "metadata": st.dictionaries(st.text(max_size=8), JSONISH, max_size=5),
}
HOSTILE = {
    "event_id": st.one_of(st.sampled_from(["", "x" * 200]), st.integers(), st.none()),
    "stream_id": st.one_of(st.text(max_size=3), st.sampled_from(["", "s" * 300]), st.booleans()),
    "text": TEXT,
    "ts": TS,
    "lang": st.sampled_from(["xx-", "EN", "", "zh-Hant-XX-YY", 5]),
    "schema_version": st.sampled_from(["2.0", "x", 1, "1.x", None]),
    "metadata": JSONISH,
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly well-formed events with one or two fields made hostile, so that both sides of
    every check are reached (a fully random event almost never gets past the schema)."""
    hostile = set(draw(st.lists(st.sampled_from(sorted(HOSTILE)), max_size=2)))

    def pick(name: str) -> Any:
        return draw(HOSTILE[name] if name in hostile else VALID[name])

    ev: dict[str, Any] = {"event_id": pick("event_id"), "stream_id": pick("stream_id")}
    parts = {"image": images(), "audio": audios(),
             "biosignals": st.dictionaries(st.sampled_from(["eeg", "ecg", "gsr", "gsr", "emg"]), signals(),
                                           min_size=1, max_size=3)}
    weights = {"text": 0.8, "ts": 0.5, "lang": 0.2, "schema_version": 0.1, "metadata": 0.2,
               "image": 0.12, "audio": 0.12, "biosignals": 0.2}
    for name, weight in weights.items():
        if name in hostile or draw(st.floats(0, 1)) < weight:
            ev[name] = draw(parts[name]) if name in parts else pick(name)
    if draw(st.integers(0, 99)) == 0:
        ev["unknown_field"] = draw(JSONISH)
    return ev


def _serialize(ev: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(ev)
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits: the JSON text still exists
        import json

        return json.dumps(ev).encode()


RECORDS = st.one_of(
    events().map(_serialize),
    events().map(_serialize),
    events().map(_serialize),
    events().map(_serialize),
    st.binary(max_size=200),
    JSONISH.map(_serialize),
    st.sampled_from([b"", b"null", b"{}", b"[]", b"\xef\xbb\xbf{}", b'{"event_id": "e"' * 3, b"[" * 5000]),
)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Driver:
    pipe = Pipeline.load("small", checkpoint=None, allow_untrained=True, num_threads=2)
    recovery = tmp_path_factory.mktemp("recovery")
    return Driver(Settings(cache_size=0, overlap=False, recovery_dir=recovery), pipe)


def test_the_accept_path_never_lets_an_exception_escape(worker: Driver) -> None:
    classes: dict[str, int] = {}
    accepted: list[Item] = []
    internal: list[tuple[bytes, str]] = []
    published = 0

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=RECORDS, record_ts=st.one_of(st.just(NOW_MS), st.integers(-(2**63), 2**63 - 1)))
    def accept_one(raw: bytes, record_ts: int) -> None:
        nonlocal published
        out = worker._admit(Record(raw, record_ts, ("in", 0, len(accepted))))
        if isinstance(out, Rejection):
            classes[out.error_class] = classes.get(out.error_class, 0) + 1
            if out.error_class == "internal_error":
                internal.append((raw[:200], out.reason))
            return
        assert out.tokens >= 1
        accepted.append(out)
        # what passes accept must be publishable: forward, temporal step, result written and valid
        [outcome] = worker.engine.process([out])
        if not isinstance(outcome, Result):
            assert outcome.why.error_class == "model_rejected", outcome.why  # never an internal error
            classes["model_rejected"] = classes.get("model_rejected", 0) + 1
            return
        ResultEvent.model_validate_json(outcome.value)
        published += 1

    accept_one()
    print(f"\n[fuzz] {sum(classes.values()) + len(accepted)} records: accepted {len(accepted)} "
          f"(published {published}); dead letters by class {dict(sorted(classes.items()))}")
    record({"scenario": f"fuzz: {EXAMPLES} generated records through the accept path (hypothesis)",
            "broker": "none", "delivery": "n/a", "events": sum(classes.values()) + len(accepted), "kills": 0,
            "missing": 0, "duplicates": 0, "identical": "n/a", "dead_letters": sum(classes.values()),
            "notes": f"escaped exceptions (internal_error) {len(internal)}; accepted {len(accepted)}, every one "
                     f"published ({published}); dead letters by class {dict(sorted(classes.items()))}"})
    assert not internal, internal[:3]
    assert sum(classes.values()) + len(accepted) >= EXAMPLES
    assert published and len(classes) >= 5  # the generator reaches both sides and many classes
