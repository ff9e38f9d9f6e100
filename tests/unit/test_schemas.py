"""The wire contract: validation limits, named vectors, and no drift of the JSON Schemas."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import ValidationError

from schemas import DeadLetter, InputEvent, ResultEvent, StreamState
from schemas import labels as L
from schemas.export import OUT_DIR, render
from schemas.result import EmotionAnalysis, Integrated


def test_json_schema_files_match_models() -> None:
    for fname, text in render().items():
        path = OUT_DIR / fname
        assert path.exists(), f"{path} missing: run `make schemas`"
        assert path.read_text(encoding="utf-8") == text, f"{fname} drifted from the models: run `make schemas`"


def test_result_schema_names_every_vector() -> None:
    schema = json.loads((OUT_DIR / "result_event.schema.json").read_text())
    emo = schema["$defs"]["EmotionAnalysis"]["properties"]["emotions"]
    assert emo["required"] == list(L.EMOTIONS)
    assert emo["additionalProperties"] is False
    ctx = schema["$defs"]["BenthamAnalysis"]["properties"]["context_weights"]
    [weights] = [option for option in ctx["anyOf"] if option.get("type") == "object"]  # or null: compact detail
    assert len(weights["required"]) == 36


def _nested(depth: int) -> dict:
    meta: dict = {"leaf": 1}
    for _ in range(depth):
        meta = {"a": meta}
    return meta


def test_minimal_event_and_epoch_ms() -> None:
    ev = InputEvent.model_validate({"event_id": "e1", "stream_id": "s1", "text": "hi", "ts": 1_700_000_000_000})
    assert ev.ts is not None and ev.ts.year == 2023
    assert ev.modalities() == ()


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"stream_id": "s", "text": "x"}, "event_id"),
        ({"event_id": "e", "stream_id": "s"}, "at least one of text"),
        ({"event_id": "e" * 129, "stream_id": "s", "text": "x"}, "event_id"),
        ({"event_id": "e", "stream_id": "s", "text": "x", "colour": "red"}, "colour"),
        ({"event_id": "e", "stream_id": "s", "text": "x", "schema_version": "2.0"}, "unsupported schema_version"),
        ({"event_id": "e", "stream_id": "s", "text": "   "}, "empty"),
        ({"event_id": "e", "stream_id": "s", "text": "x", "ts": "2026-01-01T00:00:00"}, "timezone"),
        ({"event_id": "e", "stream_id": "s", "audio": {"format": "pcm_s16le", "data": "AAAA"}}, "sample_rate"),
        ({"event_id": "e", "stream_id": "s", "image": {"format": "png", "data": "!!"}}, "base64"),
        ({"event_id": "e", "stream_id": "s", "biosignals": {}}, "at least one of eeg"),
        ({"event_id": "e", "stream_id": "s", "text": "x", "metadata": _nested(400)}, "levels deep"),
        ({"event_id": "e", "stream_id": "s", "text": "x", "metadata": {"k": "v" * 20000}}, "byte limit"),
    ],
)
def test_invalid_events_say_why(payload: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        InputEvent.model_validate(payload)
    assert fragment in str(exc.value)


def test_text_limit_comes_from_context() -> None:
    ev = {"event_id": "e", "stream_id": "s", "text": "가" * 100}  # 300 bytes in UTF-8
    InputEvent.model_validate(ev, context={"max_text_bytes": 300})
    with pytest.raises(ValidationError, match="over the 299-byte limit"):
        InputEvent.model_validate(ev, context={"max_text_bytes": 299})


def test_multimodal_parts_validate() -> None:
    data = base64.b64encode(b"\x00\x01" * 100).decode()
    ev = InputEvent.model_validate(
        {
            "event_id": "e",
            "stream_id": "s",
            "audio": {"format": "pcm_s16le", "data": data, "sample_rate": 16000},
            "biosignals": {"eeg": {"sample_rate": 256, "values": [0.0, 1.0]}},
        }
    )
    assert ev.modalities() == ("audio", "biosignals")


def test_named_vectors_refuse_wrong_keys_and_ranges() -> None:
    good = {n: 1 / 7 for n in L.EMOTIONS}
    EmotionAnalysis(emotions=good, cultural={n: 0.5 for n in L.CULTURAL}, dominant="joy")
    with pytest.raises(ValidationError, match="missing=\\['disgust'\\]"):
        EmotionAnalysis(
            emotions={n: 1 / 6 for n in L.EMOTIONS[:-1]}, cultural={n: 0.5 for n in L.CULTURAL}, dominant="joy"
        )
    with pytest.raises(ValidationError, match="outside"):
        EmotionAnalysis(emotions={**good, "joy": 1.5}, cultural={n: 0.5 for n in L.CULTURAL}, dominant="joy")
    with pytest.raises(ValidationError):
        Integrated(overall_sentiment=1.2, ethical_score=0.5, regret_potential=0.5, causal_clarity=0.5, confidence=0.5)


def test_dead_letter_headers_round_trip() -> None:
    dl = DeadLetter(
        error_class="invalid_json", reason="value is not JSON: 한국어 ok", source_topic="in",
        source_partition=2, source_offset=41, worker_version="0.1.0",
    )
    original = [("trace", b"abc")]
    assert DeadLetter.from_headers(original + dl.headers()) == dl


def test_stream_state_window_rows_are_state_vectors() -> None:
    row = [0.0] * len(L.STATE_VECTOR)
    st = StreamState(
        stream_id="s", input_partition=0, input_offset=5, last_ts="2026-01-01T00:00:00Z", events_seen=1,
        mean={n: 0.0 for n in L.STATE_VECTOR}, variance={n: 1.0 for n in L.STATE_VECTOR}, window=[row],
    )
    assert st.window == [row]
    with pytest.raises(ValidationError):
        StreamState.model_validate({**st.model_dump(), "window": [[0.0]]})


def test_result_event_requires_named_model_info() -> None:
    assert "trained" in ResultEvent.model_json_schema()["$defs"]["ModelInfo"]["required"]
