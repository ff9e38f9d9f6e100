"""Synthetic multimodal parts with known properties, for the demo, benchmarks and tests.

Each generator returns the JSON-ready part of an `InputEvent` (base64 where the schema
wants it). The signals are built to have a known answer — a 10 Hz EEG rhythm is alpha, an
ECG at 60 bpm has 1000 ms R-R intervals, a voiced sound at 180 Hz has that pitch — so a
reader of the demo's output, and the tests, can tell the measurements are real.
"""

from __future__ import annotations

import base64
import io
import wave

import numpy as np


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def eeg(rhythm_hz: float = 10.0, seconds: float = 4.0, rate: float = 256.0, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    values = 20.0 * np.sin(2 * np.pi * rhythm_hz * t) + rng.normal(0.0, 2.0, t.size)
    return {"sample_rate": rate, "values": np.round(values, 3).tolist()}


def ecg(bpm: float = 60.0, seconds: float = 10.0, rate: float = 250.0, seed: int = 0, rsa: float = 0.05) -> dict:
    """Gaussian P, QRS and T waves at a mean of `bpm`, with baseline wander and noise.

    Beats are not evenly spaced: a real heart speeds up on each breath in and slows on each
    breath out (respiratory sinus arrhythmia), so each R-R interval swings by ±`rsa` of the
    mean over a 4 s breath, plus ~1 % jitter. A metronomic sample would read an HRV (RMSSD)
    of 0 ms, which no living heart shows; `rsa=0` gives one anyway, for tests that want it."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    period = 60.0 / bpm
    beats = [0.0]
    while beats[-1] < seconds + period:
        swing = 1.0 + rsa * np.sin(2 * np.pi * 0.25 * beats[-1])
        beats.append(beats[-1] + period * swing * (1.0 + (rng.normal(0.0, 0.01) if rsa else 0.0)))
    starts = np.asarray(beats)
    # each sample belongs to the beat that started last before it; the wave is laid on that beat
    index = np.searchsorted(starts, t, side="right") - 1
    phase = t - starts[index]
    beat = (
        0.12 * np.exp(-(((phase - 0.2 * period) / 0.025) ** 2))
        + 1.0 * np.exp(-(((phase - 0.35 * period) / 0.008) ** 2))
        + 0.25 * np.exp(-(((phase - 0.6 * period) / 0.04) ** 2))
    )
    values = beat + 0.05 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0.0, 0.01, t.size)
    return {"sample_rate": rate, "values": np.round(values, 4).tolist()}


def gsr(responses: int = 3, seconds: float = 60.0, rate: float = 10.0, tonic: float = 5.0) -> dict:
    """A tonic level plus `responses` skin-conductance responses (fast rise, slow decay)."""
    t = np.arange(int(seconds * rate)) / rate
    values = np.full(t.size, tonic)
    for k in range(responses):
        onset = (k + 1) * seconds / (responses + 1)
        after = np.clip(t - onset, 0.0, None)
        values += np.where(t >= onset, 0.3 * (1 - np.exp(-after / 0.7)) * np.exp(-after / 4.0), 0.0)
    return {"sample_rate": rate, "values": np.round(values, 4).tolist()}


def voice_wav(pitch_hz: float = 180.0, syllables_per_s: float = 4.0, seconds: float = 2.0, rate: int = 16000) -> dict:
    """A voiced, syllable-modulated harmonic sound (a crude vowel chain) as a 16-bit WAV."""
    t = np.arange(int(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * pitch_hz * h * t) / h for h in range(1, 8))
    envelope = (0.5 * (1 - np.cos(2 * np.pi * syllables_per_s * t))) ** 2  # one bump per syllable
    samples = (0.3 * voice * envelope / np.max(np.abs(voice))).astype(np.float64)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return {"format": "wav", "data": _b64(buf.getvalue())}


def image_png(rgb: tuple[int, int, int] = (220, 30, 30), size: tuple[int, int] = (96, 64), stripes: bool = False) -> dict:
    """A solid (or striped) colour image as PNG."""
    from PIL import Image

    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[:] = rgb
    if stripes:
        pixels[:, ::8] = (255, 255, 255)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="PNG")
    return {"format": "png", "data": _b64(buf.getvalue())}
