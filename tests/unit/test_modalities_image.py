"""Image part: decoding refuses what it must (with the reason), the classical descriptor
gives known answers on synthetic images, and `VisionEncoder` loads and pools a
`transformers` vision checkpoint from a directory without ever inventing weights."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.errors import ModalityError, ModelLoadError
from pipeline.modalities.image import (
    HUE_BINS,
    IMAGE_DESCRIPTOR,
    IMAGE_DESCRIPTOR_RANGES,
    MAX_IMAGE_PIXELS,
    VISION_SIDE,
    VisionEncoder,
    decode_image,
    fit_for_vision,
    image_descriptor,
)
from schemas import labels as L

HUES = tuple(name for name, _, _ in HUE_BINS)


def encode(img: Image.Image, fmt: str = "PNG", **save: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def checkerboard(n: int = 64, square: int = 8) -> Image.Image:
    # Squares of 8 px, not 1 px: a 1-px checkerboard is the Nyquist pattern, to which a
    # 3x3 Sobel operator is blind (its columns j-1 and j+1 are identical).
    cells = (np.indices((n // square, n // square)).sum(axis=0) % 2) * 255
    return Image.fromarray(np.kron(cells, np.ones((square, square))).astype(np.uint8)).convert("RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims `width` x `height` (valid CRC) with no pixel data: what a
    decompression bomb looks like before anything is decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# ---- descriptor --------------------------------------------------------------------------


def test_names_are_the_schema_labels_and_every_name_has_a_range() -> None:
    assert IMAGE_DESCRIPTOR == L.IMAGE_DESCRIPTOR
    assert tuple(IMAGE_DESCRIPTOR_RANGES) == IMAGE_DESCRIPTOR
    assert 16 <= len(IMAGE_DESCRIPTOR) <= 24


def _noise(seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (300, 500, 3), dtype=np.uint8))


def _gradient() -> Image.Image:
    x = np.linspace(0, 255, 640)
    rgb = np.stack([np.tile(x, (480, 1)), np.tile(x[::-1], (480, 1)), np.full((480, 640), 90.0)], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


@pytest.mark.parametrize(
    "img",
    [
        solid((255, 0, 0)),
        solid((128, 128, 128)),
        solid((0, 0, 0)),
        solid((255, 255, 255)),
        checkerboard(),
        _noise(),
        _gradient(),
        Image.new("L", (30, 3000), 77),
        Image.new("RGBA", (40, 20), (0, 0, 255, 100)),
        Image.new("RGB", (1, 1), (10, 200, 30)),
    ],
    ids=["red", "gray", "black", "white", "checker", "noise", "gradient", "tall-L", "rgba", "1px"],
)
def test_every_value_is_finite_and_inside_its_documented_range(img: Image.Image) -> None:
    d = image_descriptor(img)
    assert tuple(d) == IMAGE_DESCRIPTOR
    for name, value in d.items():
        lo, hi = IMAGE_DESCRIPTOR_RANGES[name]
        assert math.isfinite(value), name
        assert lo <= value <= hi, (name, value)
    hue_total = sum(d[h] for h in HUES)
    assert hue_total == pytest.approx(1.0, abs=1e-5) or hue_total == 0.0


def test_pure_red_is_saturated_colourful_warm_and_red() -> None:
    d = image_descriptor(decode_image("png", encode(solid((255, 0, 0)))))
    assert d["hue_red"] == pytest.approx(1.0)
    assert max(HUES, key=d.__getitem__) == "hue_red"
    assert d["saturation"] == pytest.approx(1.0)
    # Hasler & Suesstrunk M/255 = 0.3*sqrt(1 + 0.25); above their "highly colourful" 82/255.
    assert d["colorfulness"] == pytest.approx(0.3 * math.sqrt(1.25), rel=1e-5)
    assert d["colorfulness"] > 82 / 255
    assert d["warmth"] == pytest.approx(1.0)
    assert d["brightness"] == pytest.approx(76 / 255, abs=1 / 255)  # Rec. 601: 0.299 * 255
    assert d["contrast"] == 0.0 and d["edge_density"] == 0.0 and d["entropy"] == 0.0


@pytest.mark.parametrize(
    ("rgb", "hue"),
    [
        ((255, 128, 0), "hue_orange"),
        ((255, 255, 0), "hue_yellow"),
        ((0, 200, 0), "hue_green"),
        ((0, 255, 255), "hue_cyan"),
        ((0, 0, 255), "hue_blue"),
        ((128, 0, 255), "hue_purple"),
        ((255, 0, 255), "hue_magenta"),
    ],
)
def test_each_hue_lands_in_its_named_bin(rgb: tuple[int, int, int], hue: str) -> None:
    assert image_descriptor(solid(rgb))[hue] == pytest.approx(1.0)


def test_hue_shares_follow_the_coloured_area() -> None:
    arr = np.zeros((64, 64, 3), dtype=np.uint8)
    arr[:, :48] = (255, 0, 0)  # 3/4 red
    arr[:, 48:] = (0, 0, 255)  # 1/4 blue
    d = image_descriptor(Image.fromarray(arr))
    assert d["hue_red"] == pytest.approx(0.75, abs=0.02)
    assert d["hue_blue"] == pytest.approx(0.25, abs=0.02)


def test_pure_gray_has_no_colour_at_all() -> None:
    d = image_descriptor(solid((128, 128, 128)))
    assert d["saturation"] == 0.0
    assert d["colorfulness"] == 0.0
    assert d["warmth"] == 0.0
    assert all(d[h] == 0.0 for h in HUES)
    assert d["brightness"] == pytest.approx(128 / 255)


def test_black_and_white_are_the_ends_of_brightness() -> None:
    assert image_descriptor(solid((0, 0, 0)))["brightness"] == 0.0
    assert image_descriptor(solid((255, 255, 255)))["brightness"] == 1.0


def test_blue_is_cool() -> None:
    assert image_descriptor(solid((0, 0, 255)))["warmth"] == pytest.approx(-1.0)


def test_checkerboard_has_edges_contrast_and_one_bit_of_entropy() -> None:
    flat = image_descriptor(solid((90, 90, 90)))
    board = image_descriptor(checkerboard())
    assert flat["edge_density"] == 0.0
    # Pixels next to a square boundary: about 1 - (6/8)^2 = 0.44, less the image frame.
    assert board["edge_density"] > 0.3
    assert board["contrast"] == pytest.approx(0.5)
    assert board["entropy"] == pytest.approx(1 / 8)  # two equally likely grey levels
    assert board["brightness"] == pytest.approx(0.5)


def test_uniform_grey_noise_has_near_maximal_entropy() -> None:
    # 256 equally likely grey levels = 8 bits; 200 px needs no downscale (which would
    # average neighbouring pixels and narrow the histogram).
    grey = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    assert image_descriptor(Image.fromarray(grey))["entropy"] > 0.99


def test_aspect_ratio_is_the_log_of_the_full_image_and_clipped() -> None:
    assert image_descriptor(solid((1, 2, 3), (200, 100)))["aspect_ratio"] == pytest.approx(math.log(2))
    assert image_descriptor(solid((1, 2, 3), (100, 200)))["aspect_ratio"] == pytest.approx(-math.log(2))
    # Downscaling for speed must not change it: measured on the original size.
    assert image_descriptor(solid((1, 2, 3), (3000, 1000)))["aspect_ratio"] == pytest.approx(math.log(3))
    assert image_descriptor(solid((1, 2, 3), (5, 500)))["aspect_ratio"] == -3.0


def test_large_image_gives_the_same_colour_answers_as_small() -> None:
    small = image_descriptor(solid((200, 60, 20), (64, 48)))
    large = image_descriptor(solid((200, 60, 20), (2048, 1536)))
    for name in ("brightness", "saturation", "colorfulness", "warmth", *HUES):
        assert large[name] == pytest.approx(small[name], abs=1e-5), name


# ---- decoding ----------------------------------------------------------------------------


def test_decodes_png_and_jpeg_to_rgb() -> None:
    img = decode_image("png", encode(Image.new("P", (20, 10))))
    assert img.mode == "RGB" and img.size == (20, 10)
    img = decode_image("jpeg", encode(solid((10, 120, 240), (33, 17)), "JPEG", quality=95))
    assert img.mode == "RGB" and img.size == (33, 17)
    assert np.abs(np.asarray(img).astype(int) - (10, 120, 240)).max() <= 6


def test_exif_orientation_is_applied() -> None:
    img = solid((200, 30, 30), (80, 40))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    assert decode_image("jpeg", encode(img, "JPEG", exif=exif)).size == (40, 80)


def test_transparency_is_composited_over_white() -> None:
    out = decode_image("png", encode(Image.new("RGBA", (8, 8), (0, 0, 0, 0))))
    assert np.asarray(out).min() == 255


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    arr = np.full((16, 16), 32896, dtype=np.uint16)  # 128 * 257: mid grey in 16 bits
    out = decode_image("png", encode(Image.fromarray(arr)))
    assert np.asarray(out).ravel().tolist() == [128] * (16 * 16 * 3)


def test_jpeg_draft_decodes_at_reduced_scale_but_not_below_the_asked_side() -> None:
    data = encode(solid((50, 100, 150), (1024, 768)), "JPEG")
    img = decode_image("jpeg", data, draft_side=256)
    assert img.size == (512, 384)


def test_garbage_is_refused_with_its_first_bytes() -> None:
    with pytest.raises(ModalityError, match=r"^image: declared png but data is not a PNG \(first bytes 67 61 72"):
        decode_image("png", b"garbage, not an image at all")


@pytest.mark.parametrize(
    ("declared", "data", "actual"),
    [
        ("jpeg", encode(solid((1, 2, 3))), "PNG"),
        ("png", encode(solid((1, 2, 3)), "JPEG"), "JPEG"),
        ("png", encode(solid((1, 2, 3)), "GIF"), "GIF"),
        ("jpeg", encode(solid((1, 2, 3)), "BMP"), "BMP"),
        ("png", encode(solid((1, 2, 3)), "WEBP"), "WEBP"),
    ],
)
def test_declared_format_must_match_the_magic_bytes(declared: str, data: bytes, actual: str) -> None:
    with pytest.raises(ModalityError, match=rf"^image: declared {declared} but data is a {actual}$"):
        decode_image(declared, data)


def test_unknown_format_and_empty_data() -> None:
    with pytest.raises(ModalityError, match=r"unsupported format 'gif'"):
        decode_image("gif", b"GIF89a")
    with pytest.raises(ModalityError, match=r"^image: empty png data$"):
        decode_image("png", b"")


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_truncated_data_is_refused_not_padded(fmt: str) -> None:
    data = encode(_noise(), fmt.upper())
    with pytest.raises(ModalityError, match=rf"^image: not a decodable {fmt} \("):
        decode_image(fmt, data[: len(data) // 2])


def test_corrupted_png_is_refused() -> None:
    data = bytearray(encode(checkerboard()))
    data[40] ^= 0xFF  # inside the first IDAT: breaks the CRC / the zlib stream
    with pytest.raises(ModalityError, match=r"^image: not a decodable png \("):
        decode_image("png", bytes(data))


def test_header_claiming_too_many_pixels_is_refused_before_decoding() -> None:
    assert MAX_IMAGE_PIXELS == 40_000_000
    with pytest.raises(ModalityError, match=r"^image: 12000x12000 = 144 MP exceeds 40 MP$"):
        decode_image("png", png_header_only(12000, 12000))


def test_pillows_own_bomb_refusal_is_reported_as_a_size_limit() -> None:
    # 200 MP is past Pillow's own hard limit (~179 MP), which refuses it at open.
    with pytest.raises(ModalityError, match=r"^image: exceeds 40 MP \("):
        decode_image("png", png_header_only(20000, 10000))


def test_pixel_limit_is_a_parameter() -> None:
    data = encode(solid((5, 5, 5), (100, 100)))
    assert decode_image("png", data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ModalityError, match=r"^image: 100x100 = 0.01 MP exceeds 0.005 MP$"):
        decode_image("png", data, max_pixels=5_000)


# ---- VisionEncoder -----------------------------------------------------------------------
# The checkpoints below have RANDOM weights, built here only to exercise the loading,
# preprocessing, batching and pooling path; nothing in them is a trained vision model,
# and nothing outside these tests may ever use randomly initialised encoder weights.

CPU = torch.device("cpu")
TINY = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _images() -> list[Image.Image]:
    return [solid((255, 0, 0), (50, 40)), checkerboard(), _noise(1)]


@pytest.fixture(scope="module")
def vit_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    root = tmp_path_factory.mktemp("vit")
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    dirs = {}
    for name, pooler in (("pooled", True), ("no_pooler", False)):
        torch.manual_seed(0)
        ViTModel(ViTConfig(**TINY), add_pooling_layer=pooler).save_pretrained(root / name)
        processor.save_pretrained(root / name)
        dirs[name] = root / name
    return dirs


def test_vit_loads_and_encodes_a_batch(vit_dirs: dict[str, Path]) -> None:
    enc = VisionEncoder(str(vit_dirs["pooled"]), CPU)
    assert enc.dim == 32 and enc.pooling == "pooler_output"
    assert not any(p.requires_grad for p in enc.model.parameters()) and not enc.model.training
    images = _images()
    batch = enc.encode(images)
    assert batch.shape == (3, 32) and batch.dtype == torch.float32
    assert torch.isfinite(batch).all()
    assert torch.equal(batch, enc.encode(images))  # deterministic
    one_by_one = torch.cat([enc.encode([im]) for im in images])
    assert torch.allclose(batch, one_by_one, atol=1e-5)
    assert not torch.allclose(batch[0], batch[1])  # different images, different vectors
    info = enc.describe()
    assert info["dim"] == 32 and info["model_type"] == "vit" and info["id"] == str(vit_dirs["pooled"])
    assert info["parameters"] == sum(p.numel() for p in enc.model.parameters()) > 0


def test_checkpoint_without_pooler_is_mean_pooled_never_through_a_random_pooler(vit_dirs: dict[str, Path]) -> None:
    # transformers fills a missing pooler with fresh random numbers; if the encoder read
    # it, two loads under different seeds would disagree.
    torch.manual_seed(1)
    a = VisionEncoder(str(vit_dirs["no_pooler"]), CPU)
    torch.manual_seed(2)
    b = VisionEncoder(str(vit_dirs["no_pooler"]), CPU)
    assert a.pooling == b.pooling == "mean" and a.describe()["pooling"] == "mean"
    images = _images()
    assert torch.equal(a.encode(images), b.encode(images))
    assert a.encode(images).shape == (3, 32)


def test_clip_checkpoint_uses_its_vision_tower(tmp_path: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        vision_config=TINY,
        text_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=64),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    enc = VisionEncoder(str(tmp_path), CPU)
    assert type(enc.model).__name__ == "CLIPVisionModel"
    assert enc.dim == 32 and enc.pooling == "pooler_output" and enc.describe()["model_type"] == "clip"
    images = _images()
    batch = enc.encode(images)
    assert batch.shape == (3, 32) and torch.isfinite(batch).all()
    assert torch.allclose(batch, torch.cat([enc.encode([im]) for im in images]), atol=1e-5)


def test_missing_directory_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not an existing model directory"):
        VisionEncoder(str(tmp_path / "nope"), CPU)


def test_directory_without_weights_is_a_load_error(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTImageProcessor

    ViTConfig(**TINY).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match=rf"cannot load .* from {str(tmp_path)!r}"):
        VisionEncoder(str(tmp_path), CPU)


def test_checkpoint_missing_encoder_weights_is_refused(vit_dirs: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    src = vit_dirs["pooled"]
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(tmp_path / "model.safetensors"))
    dropped = [k for k in weights if "encoder.layer.1." in k]
    assert dropped
    kept = {k: v for k, v in weights.items() if k not in dropped}
    save_file(kept, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="lacks weights the model needs"):
        VisionEncoder(str(tmp_path), CPU)


def test_expected_dim_is_checked(vit_dirs: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError, match="yields 32-d vectors, profile expects 768"):
        VisionEncoder(str(vit_dirs["pooled"]), CPU, expected_dim=768)


def test_processor_reading_more_than_the_kept_side_is_refused(tmp_path: Path) -> None:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    ViTModel(ViTConfig(**TINY)).save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": VISION_SIDE + 1, "width": VISION_SIDE + 1}).save_pretrained(tmp_path)
    kept_at = rf"reads {VISION_SIDE + 1}-px images, but event images are kept at most {VISION_SIDE} px"
    with pytest.raises(ModelLoadError, match=kept_at):
        VisionEncoder(str(tmp_path), CPU)


def test_kept_pixels_encode_like_the_full_image(vit_dirs: dict[str, Path]) -> None:
    # The encoder's processor resizes either way; the kept copy only spares the memory.
    enc = VisionEncoder(str(vit_dirs["pooled"]), CPU)
    y, x = np.mgrid[0:1500, 0:2000]
    full = Image.fromarray(np.stack([x * 255 // 2000, y * 255 // 1500, (x + y) % 256], -1).astype(np.uint8))
    kept = fit_for_vision(full)
    assert kept.size == (683, VISION_SIDE)
    a, b = enc.encode([full]), enc.encode([kept])
    assert torch.allclose(a, b, atol=1e-3), (a - b).abs().max()  # measured 1.6e-4
    mirrored = enc.encode([full.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    assert not torch.allclose(a, mirrored, atol=1e-2)  # (another image differs by ~5e-2)
