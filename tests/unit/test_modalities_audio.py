"""Audio decoding and voice features against known answers: synthetic tones, silence, noise, and real
synthesized speech from espeak-ng (a formant synthesizer whose pitch and speed are set by flags).

The espeak-ng tests skip when the binary is absent; install it with `apt-get install -y espeak-ng`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from pipeline.errors import ModalityError
from pipeline.modalities.audio import audio_features, decode_audio
from pipeline.modalities.spectrum import signal_spectrum
from schemas.labels import AUDIO_FEATURES, DSP_BINS

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(
    ESPEAK is None, reason="espeak-ng is not installed (apt-get install -y espeak-ng): no speech to test on"
)
SENTENCE = "The quick brown fox jumps over the lazy dog and keeps on running."


def _wav_bytes(samples: np.ndarray, rate: int, width: int = 2, channels: int = 1) -> bytes:
    """PCM WAV through the stdlib writer (8-bit unsigned, 16/24/32-bit signed), samples in [-1, 1]."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1, channels)
    if width == 1:
        pcm = np.round(x * 127 + 128).astype(np.uint8).tobytes()
    else:
        ints = np.round(x * (2 ** (8 * width - 1) - 1)).astype("<i4" if width == 3 else f"<i{width}")
        if width == 3:  # keep the low three bytes of each little-endian int32
            ints = ints.view(np.uint8).reshape(-1, 4)[:, :3]
        pcm = ints.tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def _tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


# --- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_decode_pcm_widths(width: int) -> None:
    tone = _tone(440, 16000, 0.5)
    samples, rate = decode_audio("wav", _wav_bytes(tone, 16000, width), None)
    assert rate == 16000 and samples.dtype == np.float32 and samples.shape == tone.shape
    assert np.abs(samples - tone).max() < (0.02 if width == 1 else 1e-3)


def test_decode_float32_and_stereo() -> None:
    tone = _tone(440, 22050, 0.5).astype(np.float32)
    buffer = io.BytesIO()
    wavfile.write(buffer, 22050, tone)
    samples, rate = decode_audio("wav", buffer.getvalue(), 22050)
    assert rate == 22050 and np.allclose(samples, tone, atol=1e-7)

    stereo = np.stack([tone, -tone + 0.2], axis=1)  # mean of the two channels is 0.1 everywhere
    samples, _ = decode_audio("wav", _wav_bytes(stereo, 22050, width=2, channels=2), None)
    assert np.allclose(samples, 0.1, atol=1e-3)


def test_pcm_s16le_round_trip() -> None:
    pcm = (np.round(_tone(300, 8000, 0.5) * 32767)).astype("<i2")
    samples, rate = decode_audio("pcm_s16le", pcm.tobytes(), 8000)
    assert rate == 8000
    assert np.array_equal(np.round(samples * 32768).astype(np.int16), pcm)


@pytest.mark.parametrize(
    ("fmt", "data", "rate", "message"),
    [
        ("wav", b"ID3\x04garbage-that-is-no-wav" * 10, None, r"audio: not a WAV file \(RIFF header missing\)"),
        ("wav", b"RIFF\x00\x00\x00\x00WAVEfmt ", None, "audio: unreadable WAV"),
        ("pcm_s16le", b"\x00" * 1001, 8000, r"odd number of bytes \(1001\)"),
        ("pcm_s16le", b"\x00" * 16000, None, "pcm_s16le needs sample_rate"),
        ("pcm_s16le", b"\x00" * 2000, 8000, r"audio: 0\.12 s is too short: need at least 0\.25 s"),
        ("pcm_s16le", b"\x00" * (2 * 8000 * 61), 8000, r"audio: 61\.0 s is too long: at most 60 s"),
        ("pcm_s16le", b"\x00" * 8000, 4000, "audio: sample rate 4000 Hz is outside 8000-96000 Hz"),
        ("mp3", b"\x00" * 8000, 8000, "audio: unknown format 'mp3'"),
    ],
)
def test_decode_refusals(fmt: str, data: bytes, rate: int | None, message: str) -> None:
    with pytest.raises(ModalityError, match=message):
        decode_audio(fmt, data, rate)


def test_streamed_wav_without_length_is_read_to_the_end() -> None:
    # Writers that stream (length unknown up front) leave RIFF and data sizes at 0xFFFFFFFF.
    data = bytearray(_wav_bytes(_tone(220, 16000), 16000))
    data[4:8] = b"\xff\xff\xff\xff"
    data[40:44] = b"\xff\xff\xff\xff"
    samples, rate = decode_audio("wav", bytes(data), None)
    assert rate == 16000 and samples.size == 16000


def test_truncated_wav_and_rate_mismatch() -> None:
    data = _wav_bytes(_tone(220, 16000), 16000)
    with pytest.raises(ModalityError, match="audio: truncated WAV"):
        decode_audio("wav", data[: len(data) // 2], None)
    with pytest.raises(ModalityError, match="audio: WAV says 8000 Hz but sample_rate says 16000"):
        decode_audio("wav", _wav_bytes(_tone(220, 8000), 8000), 16000)


# --- features of known signals ---------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_pure_tone_pitch(rate: int) -> None:
    samples, rate = decode_audio("wav", _wav_bytes(_tone(220, rate), rate), None)
    features = audio_features(samples, rate)
    assert tuple(features) == AUDIO_FEATURES
    assert features["pitch_hz"] == pytest.approx(220, abs=3)
    assert features["pitch_std_hz"] < 1.0
    assert features["voiced_fraction"] > 0.9
    assert features["energy_rms"] == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert features["energy_db"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.1)
    assert features["zero_crossing_rate"] == pytest.approx(2 * 220 / 16000, rel=0.05)  # analysed at 16 kHz
    assert features["spectral_centroid_hz"] == pytest.approx(220, abs=40)
    assert features["spectral_flatness"] < 0.01
    assert features["duration_s"] == pytest.approx(1.0)


def test_silence_is_not_an_error() -> None:
    features = audio_features(np.zeros(16000, dtype=np.float32), 16000)
    assert features["voiced_fraction"] == 0.0 and features["pitch_hz"] == 0.0
    assert features["energy_db"] == -100.0 and features["speaking_rate_hz"] == 0.0
    assert features["duration_s"] == 1.0
    assert all(v == 0.0 for k, v in features.items() if k not in ("energy_db", "duration_s"))


def test_white_noise_is_unvoiced_and_flat() -> None:
    noise = 0.1 * np.random.default_rng(3).standard_normal(16000)
    features = audio_features(noise, 16000)
    assert features["voiced_fraction"] < 0.1
    assert features["spectral_flatness"] > 0.4
    assert features["spectral_centroid_hz"] == pytest.approx(4000, rel=0.1)


def test_audio_spectrum_peak() -> None:
    bins, max_hz = signal_spectrum(_tone(220, 16000), 16000, max_hz=8000)
    assert len(bins) == DSP_BINS and max_hz == 8000
    assert int(np.argmax(bins)) == int(220 // (8000 / DSP_BINS))


# --- espeak-ng speech -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, dict[str, float]]]:
    """Each variant's WAV bytes and features: pitch 20 vs 80 (0-99 scale), 100 vs 250 words/min."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)")
    folder: Path = tmp_path_factory.mktemp("espeak")
    variants = {"low": ["-p", "20"], "high": ["-p", "80"], "slow": ["-s", "100"], "fast": ["-s", "250"]}
    out = {}
    for name, flags in variants.items():
        path = folder / f"{name}.wav"
        subprocess.run([ESPEAK, "-w", str(path), *flags, SENTENCE], check=True, capture_output=True, timeout=30)
        data = path.read_bytes()
        out[name] = (data, audio_features(*decode_audio("wav", data, None)))
    return out


@needs_espeak
def test_speech_pitch_follows_the_voice(speech: dict) -> None:
    low, high = speech["low"][1], speech["high"][1]
    for features in (low, high):
        assert 60 <= features["pitch_hz"] <= 400
        assert 0.3 <= features["voiced_fraction"] <= 0.9
        assert 300 <= features["spectral_centroid_hz"] <= 4000
    assert high["pitch_hz"] > 1.3 * low["pitch_hz"]


@needs_espeak
def test_speech_rate_follows_the_speed(speech: dict) -> None:
    slow, fast = speech["slow"][1], speech["fast"][1]
    assert fast["speaking_rate_hz"] > 1.5 * slow["speaking_rate_hz"]
    # The sentence has 16 syllables; articulation rates of 2-8 per second are human-like.
    for features in (slow, fast):
        assert 1.5 <= features["speaking_rate_hz"] <= 8.0
    assert fast["duration_s"] < slow["duration_s"]


@needs_espeak
def test_speech_duration_matches_file(speech: dict) -> None:
    for data, features in speech.values():
        with wave.open(io.BytesIO(data)) as wav:
            assert features["duration_s"] == pytest.approx(wav.getnframes() / wav.getframerate())
