"""Multimodal events through the real broker and the real worker process.

Text+biosignals, text+audio, text+image and image-only events come back with their
measured parts under `analysis` and their spectra under `auxiliary.spectra`; parts that
cannot be decoded or measured are dead-lettered as `invalid_modality` with a reason,
and the worker keeps going.
"""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from schemas.dead_letter import DeadLetter
from schemas.result import ResultEvent
from tests.brokers import Broker
from tests.integration.harness import WorkerProcess, parse_metrics, read_topics, settings_for, worker_env
from worker import samples
from worker.devbroker import free_port
from worker.kafka import create_topics
from worker.produce import produce_lines

pytestmark = pytest.mark.integration


def good_events() -> list[dict]:
    return [
        {"event_id": "bio-1", "stream_id": "s1", "text": "I feel calm after the walk.",
         "biosignals": {"eeg": samples.eeg(10.0), "ecg": samples.ecg(60.0), "gsr": samples.gsr(3)}},
        {"event_id": "audio-1", "stream_id": "s2", "text": "오늘 발표가 너무 떨렸어요.",
         "audio": samples.voice_wav(pitch_hz=180.0)},
        {"event_id": "image-1", "stream_id": "s3", "text": "Look at this sunset!", "image": samples.image_png((230, 40, 30))},
        {"event_id": "image-only-1", "stream_id": "s3", "image": samples.image_png((40, 60, 220), stripes=True)},
        {"event_id": "text-1", "stream_id": "s1", "text": "I should have called her back."},
        {"event_id": "bio-only-1", "stream_id": "s4", "biosignals": {"ecg": samples.ecg(90.0)}},
    ]


def bad_events() -> list[tuple[dict, str]]:
    """(event, text the dead letter's reason must contain)."""
    return [
        ({"event_id": "bad-eeg-rate", "stream_id": "s5", "text": "x", "biosignals": {"eeg": samples.eeg(10.0, rate=50.0)}},
         "eeg"),
        ({"event_id": "bad-png", "stream_id": "s5",
          "image": {"format": "png", "data": base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()}}, "image"),
        ({"event_id": "bad-pcm", "stream_id": "s5",
          "audio": {"format": "pcm_s16le", "data": base64.b64encode(b"\x01\x02\x03").decode(), "sample_rate": 16000}},
         "audio"),
        ({"event_id": "bad-flat-ecg", "stream_id": "s5", "text": "x",
          "biosignals": {"ecg": {"sample_rate": 250.0, "values": [0.0] * 2500}}}, "ecg"),
    ]


def test_multimodal_events_end_to_end(broker: Broker, prefix: str, tmp_path: Path) -> None:
    s = settings_for(broker, prefix)
    create_topics(s, partitions=2)
    env = worker_env(broker, s, free_port(), REDHEART_MAX_WAIT_MS="30", REDHEART_DELIVERY="at-least-once")
    worker = WorkerProcess(env).start(tmp_path)
    try:
        worker.wait_ready()
        good, bad = good_events(), bad_events()
        produce_lines([orjson.dumps(e) for e in good[:3]], s)
        produce_lines([orjson.dumps(e) for e, _ in bad], s)
        produce_lines([orjson.dumps(e) for e in good[3:]], s)
        got = read_topics(broker, {s.results_topic: len(good), s.dlq_topic: len(bad)})
        assert worker.alive(), worker.log()

        results = {r.event_id: r for r in (ResultEvent.model_validate_json(m.value()) for m in got[s.results_topic])}
        assert sorted(results) == sorted(e["event_id"] for e in good), worker.log()

        bio = results["bio-1"]
        assert bio.analysis.biosignals is not None and bio.analysis.biosignals.eeg is not None
        eeg = bio.analysis.biosignals.eeg
        assert max(eeg, key=eeg.__getitem__) == "alpha"
        assert abs(sum(eeg.values()) - 1.0) < 5 * 0.5e-6 + 1e-9  # five shares, each written to 6 decimals
        ecg = bio.analysis.biosignals.ecg
        assert ecg is not None and abs(ecg["heart_rate_bpm"] - 60.0) < 2.0
        assert bio.analysis.biosignals.gsr is not None and bio.analysis.biosignals.gsr["phasic_peaks"] == 3
        assert bio.auxiliary.spectra is not None and bio.auxiliary.spectra.eeg is not None
        assert bio.auxiliary.spectra.audio is None

        audio = results["audio-1"]
        assert audio.analysis.audio is not None and abs(audio.analysis.audio["pitch_hz"] - 180.0) < 10.0
        assert audio.auxiliary.spectra is not None and audio.auxiliary.spectra.audio is not None
        assert audio.lang == "ko"

        image = results["image-1"]
        assert image.analysis.image is not None
        hues = {k: v for k, v in image.analysis.image.items() if k.startswith("hue_")}
        assert max(hues, key=hues.__getitem__) == "hue_red"

        only = results["image-only-1"]
        assert only.analysis.image is not None and only.lang == "und"
        assert set(only.analysis.emotion.emotions) == {"joy", "love", "surprise", "anger", "fear", "sadness", "disgust"}
        blue = {k: v for k, v in only.analysis.image.items() if k.startswith("hue_")}
        assert max(blue, key=blue.__getitem__) == "hue_blue"

        assert results["bio-only-1"].analysis.biosignals.ecg["heart_rate_bpm"] == pytest.approx(90.0, abs=2.0)
        text = results["text-1"]
        assert text.analysis.image is None and text.analysis.audio is None and text.auxiliary.spectra is None

        letters = {orjson.loads(m.value())["event_id"]: DeadLetter.from_headers(m.headers()) for m in got[s.dlq_topic]}
        assert sorted(letters) == sorted(e["event_id"] for e, _ in bad)
        for event, needle in bad:
            letter = letters[event["event_id"]]
            assert letter.error_class == "invalid_modality", letter
            assert needle in letter.reason, letter.reason

        metrics = parse_metrics(worker.get("/metrics")[1].decode())
        assert metrics['redheart_dead_letters_total{reason="invalid_modality"}'] == len(bad)
        assert metrics["redheart_results_produced_total"] == len(good)
    finally:
        code = worker.stop()
    assert code == 0, worker.log()
