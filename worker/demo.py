"""`make demo`: embedded broker -> topics -> worker (small profile) -> sample events -> printed results.

Everything runs on 127.0.0.1 and is stopped at the end, whatever happens. `make demo`
passes the checkpoint it trained (REDHEART_CHECKPOINT); run by hand without one, the worker
runs with --allow-untrained and every result says `trained=false`. Besides the text samples,
two events carry synthetic biosignals, a voice and an image with known answers (alpha rhythm,
72 bpm, 150 Hz), so the printed measurements can be checked by eye.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
from confluent_kafka import Consumer

from schemas.dead_letter import DeadLetter
from schemas.result import ResultEvent
from worker.config import Settings
from worker.devbroker import DevBroker, free_port
from worker.kafka import create_topics
from worker import samples
from worker.produce import produce_file, produce_lines

SAMPLES = Path(__file__).parent / "samples" / "demo.jsonl"
TIMEOUT_S = 180.0


def _wait_ready(worker: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _collect(settings: Settings, want_results: int, want_dlq: int) -> tuple[list[ResultEvent], list[tuple[bytes, DeadLetter]]]:
    consumer = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": "redheart-demo-reader",
         "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([settings.results_topic, settings.dlq_topic])
    results: list[ResultEvent] = []
    dead: list[tuple[bytes, DeadLetter]] = []
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while (len(results) < want_results or len(dead) < want_dlq) and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            if msg.topic() == settings.results_topic:
                results.append(ResultEvent.model_validate_json(msg.value()))
            else:
                dead.append((msg.value(), DeadLetter.from_headers(msg.headers())))
    finally:
        consumer.close()
    return results, dead


def multimodal_events() -> list[dict]:
    """Two events with synthetic parts whose answers are known: a 10 Hz EEG rhythm (alpha),
    an ECG at 72 bpm, three skin-conductance responses; a voice at 150 Hz and a red image."""
    return [
        {"event_id": "demo-mm1", "stream_id": "alex", "text": "Sitting quietly after the run, breathing slowly.",
         "biosignals": {"eeg": samples.eeg(10.0), "ecg": samples.ecg(72.0), "gsr": samples.gsr(3)}},
        {"event_id": "demo-mm2", "stream_id": "minji", "text": "발표 끝! 목소리가 떨렸지만 잘 해냈어요.",
         "audio": samples.voice_wav(pitch_hz=150.0), "image": samples.image_png((220, 40, 30))},
    ]


def _modalities_line(r: ResultEvent) -> str | None:
    a, bits = r.analysis, []
    if a.biosignals is not None:
        if a.biosignals.eeg is not None:
            band = max(a.biosignals.eeg, key=a.biosignals.eeg.__getitem__)
            bits.append(f"eeg {band} {a.biosignals.eeg[band]:.2f}")
        if a.biosignals.ecg is not None:
            bits.append(f"ecg {a.biosignals.ecg['heart_rate_bpm']:.0f} bpm, rmssd {a.biosignals.ecg['rmssd_ms']:.0f} ms")
        if a.biosignals.gsr is not None:
            bits.append(f"gsr {a.biosignals.gsr['phasic_peaks']:.0f} responses")
    if a.audio is not None:
        bits.append(f"voice pitch {a.audio['pitch_hz']:.0f} Hz, {a.audio['energy_db']:.0f} dB")
    if a.image is not None:
        hues = {k: v for k, v in a.image.items() if k.startswith("hue_")}
        bits.append(f"image {max(hues, key=hues.__getitem__)}, brightness {a.image['brightness']:.2f}")
    return "          parts: " + "; ".join(bits) if bits else None


def _num(x: float | str) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _print(results: list[ResultEvent], dead: list[tuple[bytes, DeadLetter]], texts: dict[str, str]) -> None:
    bar = "─" * 100
    print(bar)
    for r in sorted(results, key=lambda r: r.event_id):
        e, i = r.analysis.emotion, r.integrated
        top = sorted(e.emotions.items(), key=lambda kv: -kv[1])[:3]
        print(f"{r.event_id:8} stream={r.stream_id:6} lang={r.lang}  {texts.get(r.event_id, '')[:60]}")
        print(
            f"          emotion: {', '.join(f'{k} {v:.2f}' for k, v in top)}   "
            f"sentiment {i.overall_sentiment:+.3f}  ethics {i.ethical_score:.3f}  regret {i.regret_potential:.3f}  "
            f"clarity {_num(i.causal_clarity)}  confidence {i.confidence:.3f}"
        )
        print(
            f"          cultural: {', '.join(f'{k} {v:.2f}' for k, v in e.cultural.items())}   "
            f"latency: model {r.latency_ms.model:.0f} ms, total {r.latency_ms.total:.0f} ms   "
            f"model={r.model.profile} trained={r.model.trained}"
        )
        parts = _modalities_line(r)
        if parts:
            print(parts)
    for value, dl in dead:
        print(f"DLQ       {dl.error_class}: {dl.reason}   (source {dl.source_topic}[{dl.source_partition}]@{dl.source_offset}, "
              f"original bytes: {value[:50]!r})")
    print(bar)


def main() -> int:
    lines = [ln for ln in SAMPLES.read_bytes().splitlines() if ln.strip()]
    texts = {}
    good = 0
    for ln in lines:
        obj = orjson.loads(ln)
        if isinstance(obj.get("text"), str):
            texts[obj["event_id"]] = obj["text"]
            good += 1
    started = time.monotonic()
    ok, want_results, want_dead = False, 0, 0
    with DevBroker() as broker:
        print(f"[demo] embedded broker (Tansu) on {broker.bootstrap}")
        port = free_port()
        settings = Settings(bootstrap_servers=broker.bootstrap, group_id="redheart-demo", http_port=port)
        create_topics(settings)
        print(f"[demo] topics: {settings.input_topic}, {settings.results_topic}, {settings.dlq_topic}, {settings.state_topic}")
        env = {
            **os.environ,
            "REDHEART_BOOTSTRAP_SERVERS": broker.bootstrap,
            "REDHEART_GROUP_ID": "redheart-demo",
            "REDHEART_HTTP_PORT": str(port),
            "REDHEART_HTTP_HOST": "127.0.0.1",
            "REDHEART_PROFILE": "small",
            "REDHEART_LOG_LEVEL": "WARNING",
            "REDHEART_CONSUMER_CONFIG": '{"session.timeout.ms": 2000, "heartbeat.interval.ms": 300}',
        }
        checkpoint = os.environ.get("REDHEART_CHECKPOINT")
        args = ["run"] if checkpoint else ["run", "--allow-untrained"]
        print(f"[demo] starting the worker: python -m worker {' '.join(args)} (profile small, "
              f"checkpoint {checkpoint or 'none: untrained heads'})")
        worker = subprocess.Popen([sys.executable, "-m", "worker", *args], env=env)
        try:
            if not _wait_ready(worker, port):
                print(f"[demo] the worker did not become ready (exit code {worker.returncode})", file=sys.stderr)
                return 1
            print(f"[demo] worker ready after {time.monotonic() - started:.1f} s "
                  f"(http://127.0.0.1:{port}/status, /metrics)")
            n = produce_file(SAMPLES, settings)
            extra = multimodal_events()
            produce_lines([orjson.dumps(e) for e in extra], settings)
            texts.update({e["event_id"]: e["text"] for e in extra})
            print(f"[demo] produced {n + len(extra)} sample events ({good} text, {len(extra)} with biosignals/voice/"
                  f"image, {n - good} malformed on purpose)")
            want_results, want_dead = good + len(extra), n - good  # the extras are all good events
            results, dead = _collect(settings, want_results, want_dead)
            if worker.poll() is not None:
                print(f"[demo] the worker exited early with code {worker.returncode}", file=sys.stderr)
                return 1
            _print(results, dead, texts)
            print(f"[demo] {len(results)} results, {len(dead)} dead letters in {time.monotonic() - started:.1f} s")
            if any(not r.model.trained for r in results):
                print("[demo] note: heads are untrained (trained=false) until a checkpoint is trained; "
                      "scores are real forward passes but carry no meaning yet")
            ok = len(results) == want_results and len(dead) == want_dead
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                code = worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                code = worker.wait()
            print(f"[demo] worker stopped (exit code {code}); broker stopped")
    return 0 if ok and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
