"""Per-event cost and output bounds of the non-text parts: JPEG scan bombs are
refused before decoding, by a marker walk that counts what the decoder would read; kept
pixels for a vision encoder are small whatever the input; and every number extraction
returns is inside the range the result schema will enforce, so what extraction admits can
always be published."""

from __future__ import annotations

import base64
import io
import math
import struct
import time

import numpy as np
import pydantic
import pytest
from PIL import Image

from pipeline.errors import ModalityError
from pipeline.modalities.biosignals import gsr_features
from pipeline.modalities.image import (
    MAX_JPEG_SCANS,
    VISION_MAX_SIDE,
    VISION_SIDE,
    decode_image,
    fit_for_vision,
    measure_image,
)
from pipeline.modalities.jpeg import count_scans
from pipeline.modalities.parts import Bound, extract, published_bounds
from schemas import labels as L
from schemas.input import InputEvent
from schemas.result import BiosignalAnalysis

# ---- building JPEGs -------------------------------------------------------------------------


def jpeg(size: tuple[int, int] = (64, 48), seed: int = 0, noisy: bool = True, **save: object) -> bytes:
    """A JPEG from Pillow: noise (so its entropy-coded data holds stuffed 0xFF00 bytes) or,
    `noisy=False`, a smooth gradient (a few KB even when large)."""
    if noisy:
        pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    else:
        y, x = np.mgrid[0 : size[1], 0 : size[0]]
        pixels = np.stack([x * 255 // size[0], y * 255 // size[1], np.full_like(x, 128)], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", **save)
    return buf.getvalue()


def segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


# An empty scan: 10 bytes, a DC refinement of component 1 with no entropy-coded data. The
# decoder still walks every block of the component for it.
EMPTY_SCAN = segment(0xDA, bytes([1, 1, 0x00, 0, 0, 0x10]))


def with_empty_scans(data: bytes, n: int) -> bytes:
    """`data` (a JPEG) with `n` empty scans inserted before its EOI."""
    assert data.endswith(b"\xff\xd9")
    return data[:-2] + EMPTY_SCAN * n + b"\xff\xd9"


def with_exif_thumbnail(main: bytes, thumbnail: bytes) -> bytes:
    """`main` with an APP1 EXIF segment right after SOI whose IFD1 holds `thumbnail` as its
    JPEG thumbnail (EXIF 2.3 4.5.5: JPEGInterchangeFormat 0x0201 / ...Length 0x0202),
    little-endian TIFF: header, empty IFD0 at 8, IFD1 at 14, thumbnail bytes at 44."""
    ifd0 = struct.pack("<HI", 0, 14)
    at = 14 + 2 + 2 * 12 + 4
    ifd1 = struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, at)
    ifd1 += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail)) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd0 + ifd1 + thumbnail
    return main[:2] + segment(0xE1, b"Exif\x00\x00" + tiff) + main[2:]


# ---- JPEG scan limit ------------------------------------------------------------------------


def test_progressive_jpeg_with_thousands_of_empty_scans_is_refused_quickly_with_the_count() -> None:
    data = with_empty_scans(jpeg((1600, 1200), noisy=False, progressive=True), 5000)
    assert len(data) < 100_000  # tiny, yet ~1 s of decoding without the limit (24 s for 10,000 at 16 MP)
    started = time.perf_counter()
    with pytest.raises(ModalityError, match=rf"^image: jpeg has 5010 scans, more than the limit of {MAX_JPEG_SCANS}$"):
        decode_image("jpeg", data)
    assert time.perf_counter() - started < 1.0
    with pytest.raises(ModalityError, match=r"jpeg has 5010 scans"):
        measure_image("jpeg", data, keep_for_vision=True)


def test_the_scan_limit_admits_exactly_its_value() -> None:
    base = jpeg(progressive=True)
    assert MAX_JPEG_SCANS == 64 and count_scans(base) == 10
    assert decode_image("jpeg", with_empty_scans(base, MAX_JPEG_SCANS - 10)).size == (64, 48)
    with pytest.raises(ModalityError, match=rf"has {MAX_JPEG_SCANS + 1} scans"):
        decode_image("jpeg", with_empty_scans(base, MAX_JPEG_SCANS - 9))
    with pytest.raises(ModalityError, match=r"^image: jpeg has 10 scans, more than the limit of 9$"):
        decode_image("jpeg", base, max_scans=9)


def test_normal_progressive_jpeg_still_decodes_like_its_baseline_twin() -> None:
    progressive, baseline = jpeg((640, 480), progressive=True, quality=90), jpeg((640, 480), quality=90)
    assert count_scans(progressive) == 10 and count_scans(baseline) == 1  # libjpeg's standard script
    a, b = decode_image("jpeg", progressive), decode_image("jpeg", baseline)
    assert a.size == b.size == (640, 480)
    assert np.array_equal(np.asarray(a), np.asarray(b))  # same coefficients, same pixels
    descriptor, kept = measure_image("jpeg", progressive)
    assert set(descriptor) == set(L.IMAGE_DESCRIPTOR) and kept is None


def test_marker_walk_skips_stuffed_bytes_restart_markers_fill_bytes_and_stops_at_eoi() -> None:
    header = segment(0xC0, bytes([8, 0, 8, 0, 8, 1, 1, 0x11, 0]))  # SOF0 8x8 grey (content is not decoded)
    scan = segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
    entropy = b"\x12\xff\x00\xda\xff\xd0\x34\xff\x00\xff\xd7\x56"  # 0xFF00 0xDA is data, not SOS
    data = b"\xff\xd8" + header + scan + entropy + b"\xff\xff" + scan + entropy + b"\xff\x01"
    data += b"\xff\xd9" + scan * 3  # after EOI nothing is read
    assert count_scans(data) == 2
    assert count_scans(data[:-40]) == 2 and count_scans(data[: len(data) // 3]) == 1  # truncated: counts what is there
    with pytest.raises(ValueError, match="no SOI"):
        count_scans(b"\x89PNG")


@pytest.mark.parametrize("progressive", [False, True])
def test_restart_markers_inside_scans_are_not_scans(progressive: bool) -> None:
    data = jpeg(progressive=progressive, quality=95, restart_marker_blocks=2)
    assert any(bytes([0xFF, 0xD0 + i]) in data for i in range(8)) and b"\xff\x00" in data
    assert count_scans(data) == (10 if progressive else 1)


def test_exif_thumbnail_scans_are_not_counted() -> None:
    thumbnail = jpeg((32, 24), seed=1, progressive=True)
    data = with_exif_thumbnail(jpeg((640, 480)), thumbnail)
    assert data.count(b"\xff\xda") == 11  # a byte search would count the thumbnail's 10 scans
    assert count_scans(data) == 1
    assert decode_image("jpeg", data, max_scans=1).size == (640, 480)
    # ... and a thumbnail that is itself a scan bomb costs nothing: it is never decoded.
    assert count_scans(with_exif_thumbnail(jpeg((640, 480)), with_empty_scans(thumbnail, 5000))) == 1


# ---- kept pixels for a vision encoder ---------------------------------------------------------


def _event(**parts: object) -> InputEvent:
    return InputEvent(event_id="e", stream_id="s", **parts)


def _png_event(size: tuple[int, int]) -> InputEvent:
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 140, 200)).save(buf, "PNG", compress_level=1)
    return _event(image={"format": "png", "data": base64.b64encode(buf.getvalue()).decode()})


def test_kept_image_of_a_40_mp_png_is_reduced_right_after_decoding() -> None:
    parts = extract(_png_event((7300, 5479)), keep_image=True)  # 40.0 MP: 120 MB as RGB
    assert parts is not None and parts.image is not None
    kept = parts.image_pixels
    assert kept.mode == "RGB" and kept.size == (682, VISION_SIDE)  # shorter side 512, aspect kept
    assert len(kept.tobytes()) < 1.1e6
    assert parts.image["aspect_ratio"] == pytest.approx(math.log(7300 / 5479))
    assert extract(_png_event((7300, 5479))).image_pixels is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("size", "kept"),
    [
        ((7300, 5479), (682, 512)),
        ((5479, 7300), (512, 682)),
        ((20000, 2000), (VISION_MAX_SIDE, 205)),  # a panorama: the longer side is bounded too
        ((600, 500), (600, 500)),  # already small: never enlarged
        ((100, 30), (100, 30)),
    ],
)
def test_fit_for_vision_bounds_both_sides_and_never_enlarges(size: tuple[int, int], kept: tuple[int, int]) -> None:
    assert fit_for_vision(Image.new("RGB", size)).size == kept


def test_reduced_scale_decoding_keeps_the_full_images_aspect_ratio() -> None:
    # 8001 x 2001 decodes at 1/4 scale for the descriptor (2001 x 501) and at 1/2 for a
    # vision encoder (4001 x 1001): rounded sides, whose ratio is not the image's.
    buf = io.BytesIO()
    Image.new("RGB", (8001, 2001), (200, 120, 40)).save(buf, "JPEG")
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees
    Image.new("RGB", (8001, 2001), (200, 120, 40)).save(rotated, "JPEG", exif=exif)
    for data, sign in ((buf.getvalue(), 1.0), (rotated.getvalue(), -1.0)):
        for keep in (False, True):
            descriptor, kept = measure_image("jpeg", data, keep_for_vision=keep)
            assert descriptor["aspect_ratio"] == pytest.approx(sign * math.log(8001 / 2001), abs=1e-12)
            if keep:
                assert kept is not None and max(kept.size) <= VISION_MAX_SIDE and min(kept.size) <= VISION_SIDE
                assert (kept.size[0] > kept.size[1]) == (sign > 0)


# ---- measurements inside the result schema's ranges -------------------------------------------


def _gsr(level: float, seconds: float = 30.0, rate: float = 4.0) -> dict[str, object]:
    t = np.arange(int(seconds * rate)) / rate
    return {"sample_rate": rate, "values": (level + 0.5 * np.sin(2 * np.pi * t / 10.0)).tolist()}


def test_bounds_are_read_from_the_result_schema() -> None:
    bounds = published_bounds()
    assert bounds.features["gsr"]["tonic_level"] == Bound(-1e9, 1e9)
    assert bounds.features["audio"]["pitch_hz"] == Bound(-1e9, 1e9)
    assert bounds.features["ecg"]["heart_rate_bpm"] == Bound(0.0, 1e6)
    assert bounds.features["eeg"]["alpha"] == Bound(0.0, 1.0)
    assert bounds.features["image"]["brightness"] == Bound(-1e3, 1e3)
    for group, names in (("image", L.IMAGE_DESCRIPTOR), ("audio", L.AUDIO_FEATURES), ("eeg", L.EEG_BANDS),
                         ("ecg", L.ECG_FEATURES), ("gsr", L.GSR_FEATURES)):
        assert tuple(bounds.features[group]) == names, group
    assert bounds.spectrum_bin == Bound(0.0) and bounds.spectrum_bins == (L.DSP_BINS, L.DSP_BINS)
    assert bounds.spectrum_max_hz == Bound(0.0, lo_open=True) and str(bounds.spectrum_max_hz) == "(0, inf)"


def test_gsr_values_of_2e9_are_refused_at_extraction_naming_the_feature() -> None:
    gsr = _gsr(2e9)
    features = gsr_features(gsr["values"], gsr["sample_rate"])  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):  # what the worker met when building the result
        BiosignalAnalysis(gsr=features)
    event = _event(biosignals={"gsr": gsr})
    with pytest.raises(
        ModalityError, match=r"^gsr: measured tonic_level = 2e\+09 is outside the result's range \[-1e\+09, 1e\+09\]$"
    ):
        extract(event)


def test_gsr_inside_the_range_is_published() -> None:
    parts = extract(_event(biosignals={"gsr": _gsr(5e8)}))
    assert parts is not None and parts.biosignals is not None
    BiosignalAnalysis(gsr=parts.biosignals["gsr"])  # validates
    assert parts.biosignals["gsr"]["tonic_level"] == pytest.approx(5e8, rel=1e-6)
