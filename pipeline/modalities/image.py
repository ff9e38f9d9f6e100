"""An event's image part: decoding, a classical descriptor, and a vision encoder.

Two ways an image becomes the backbone's image token (`ImageSpec`):

- `descriptor` (profile `small`): `image_descriptor`, 16 named colour/texture
  measurements. No PyPI package ships vision-transformer weights that `transformers`
  can load offline (we checked: the packages that do ship image weights carry
  torchvision/EfficientNet `.pth` state dicts for other code bases), so the small profile
  uses a documented classical descriptor rather than a network with made-up weights.
- `transformers` (profile `production`): `VisionEncoder`, a ViT/CLIP/DINO-class model from
  a mounted directory, frozen, one pooled vector per image.

Every way an image part can be unusable -- not the declared format, undecodable,
truncated, too many pixels, too many JPEG scans -- raises `ModalityError` with a precise
message, so the worker dead-letters that event alone (`error.class` `invalid_modality`).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from typing import Any

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps

from pipeline.errors import ModalityError, ModelLoadError
from pipeline.encoders import looks_like_path
from pipeline.modalities.jpeg import count_scans
from schemas import labels as L

# ---- decoding -------------------------------------------------------------------------

# Decompression-bomb guard. The schema caps an image at 4 MiB *compressed*, but PNG and
# JPEG compress flat areas by 1000x and more, so 4 MiB can claim a gigapixel: decoded as
# RGB that is gigabytes, per event, on a worker decoding many events at once. The claimed
# size is in the header, so we refuse before any pixel is decoded. 40 MP (120 MB as RGB)
# admits every camera's default output (12-24 MP) and most full-resolution modes; it is
# stricter than Pillow's own `Image.MAX_IMAGE_PIXELS` (~89 MP warns, ~179 MP errors),
# which we leave alone because it is process-global. Pillow's check still runs first as
# a backstop and is reported with the same message prefix.
MAX_IMAGE_PIXELS = 40_000_000

# Scan-bomb guard (see `pipeline.modalities.jpeg`): the decoder walks every block of the
# components a scan covers, data or not, so decode time grows with scans x pixels while
# the file stays tiny. Encoders write 1 scan (baseline), 3-5 (Photoshop's progressive
# settings), 6 (greyscale) or 10 (libjpeg's, Pillow's and most tools' standard progressive
# script); 64 is over 6x the most any standard script writes. Measured on a shared 2-core
# machine: the worst image it admits (40 MP, 4:4:4, 10 real scans plus 54 empty ones over
# all three components, the costliest kind) takes ~1.1 s in `measure_image` (1.3 s for a
# full-scale `decode_image`), against ~0.35 s for an ordinary 40 MP progressive JPEG;
# without the limit 10,000 empty scans took 24 s at 16 MP. Refusing costs <= 0.2 s (the
# marker walk over 4 MiB of nothing but scans).
MAX_JPEG_SCANS = 64

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG"}


def _sniff(data: bytes) -> str | None:
    """The format `data`'s magic bytes announce, or None when they announce none we know."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.3g} MP"


def decode_image(
    fmt: str,
    data: bytes,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_scans: int = MAX_JPEG_SCANS,
    draft_side: int | None = None,
) -> Image.Image:
    """Decode an event's image part into an 8-bit RGB Pillow image.

    Steps, each failing with `ModalityError`:
    1. The declared format must be "jpeg" or "png" and the magic bytes must agree with
       it -- a producer that labels a JPEG "png" has a bug worth naming, and restricting
       Pillow to the declared decoder keeps its other (less hardened) plugins out of reach.
    2. The header's claimed size must be at most `max_pixels` (see `MAX_IMAGE_PIXELS`),
       checked before decoding.
    3. A JPEG must hold at most `max_scans` scans (see `MAX_JPEG_SCANS`), counted from its
       marker segments before decoding.
    4. The pixels must decode completely (truncated files are refused, never padded).
    Then the EXIF orientation is applied (phones store portrait photos rotated; the
    aspect ratio and content should be what a viewer shows), transparency is composited
    over white, and 16-bit greyscale is scaled (Pillow would clip it) to 8-bit RGB.

    `draft_side` (JPEG only): let libjpeg decode at 1/2, 1/4 or 1/8 scale as long as both
    sides stay >= `draft_side`; 10-60x faster for photos when only a small version is
    needed (the descriptor works at <= 256 px, vision encoders at ~224 px).
    """
    return _decode(fmt, data, max_pixels=max_pixels, max_scans=max_scans, draft_side=draft_side)[0]


def measure_image(
    fmt: str, data: bytes, *, keep_for_vision: bool = False
) -> tuple[dict[str, float], Image.Image | None]:
    """Decode an event's image once and return (its descriptor, the pixels a vision encoder
    will read or None).

    Both uses need a small image only, so a JPEG is decoded at reduced scale (`draft_side`:
    `DESCRIPTOR_SIDE`, or `VISION_SIDE` when the pixels are kept) and the kept pixels are
    reduced at once by `fit_for_vision`: a 40 MP image would otherwise be held as 120 MB
    of RGB until its batch runs. `aspect_ratio` is still that of the full image."""
    side = VISION_SIDE if keep_for_vision else DESCRIPTOR_SIDE
    img, full_size = _decode(fmt, data, draft_side=side)
    return image_descriptor(img, full_size=full_size), fit_for_vision(img) if keep_for_vision else None


def _decode(
    fmt: str,
    data: bytes,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_scans: int = MAX_JPEG_SCANS,
    draft_side: int | None = None,
) -> tuple[Image.Image, tuple[int, int]]:
    """`decode_image`, plus the full (EXIF-rotated) size, which reduced-scale decoding loses."""
    img = _open(fmt, data, max_pixels=max_pixels, max_scans=max_scans)
    try:
        full_size = _oriented_size(img)
        if draft_side is not None and fmt == "jpeg":
            img.draft("RGB", (draft_side, draft_side))
        img.load()
        rgb = _to_rgb(ImageOps.exif_transpose(img))
    except Exception as exc:  # noqa: BLE001 -- truncated data, bad CRC, broken Huffman table, ...
        raise ModalityError(f"image: not a decodable {fmt} ({type(exc).__name__}: {exc})") from None
    return rgb, full_size


def _open(fmt: str, data: bytes, *, max_pixels: int, max_scans: int) -> Image.Image:
    """Steps 1-3 of `decode_image`: everything refused before a pixel is decoded."""
    if fmt not in _PIL_FORMAT:
        raise ModalityError(f"image: unsupported format {fmt!r} (expected 'jpeg' or 'png')")
    if not data:
        raise ModalityError(f"image: empty {fmt} data")
    actual = _sniff(data)
    if actual != fmt:
        if actual is None:
            head = data[:8].hex(" ")
            raise ModalityError(f"image: declared {fmt} but data is not a {fmt.upper()} (first bytes {head})")
        raise ModalityError(f"image: declared {fmt} but data is a {actual.upper()}")
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own ~89 MP limit; we refuse far below that, right
            # after, so the warning would be noise. (catch_warnings is process-wide state;
            # a concurrent thread may at worst see one warning filtered or not.)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[fmt]])
    except Image.DecompressionBombError as exc:
        raise ModalityError(f"image: exceeds {_megapixels(max_pixels)} ({exc})") from None
    except Exception as exc:  # noqa: BLE001 -- any decoder failure is this event's problem
        raise ModalityError(f"image: not a decodable {fmt} ({type(exc).__name__}: {exc})") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ModalityError(f"image: {fmt} claims an empty size {width}x{height}")
    if width * height > max_pixels:
        raise ModalityError(
            f"image: {width}x{height} = {_megapixels(width * height)} exceeds {_megapixels(max_pixels)}"
        )
    if fmt == "jpeg":
        scans = count_scans(data)
        if scans > max_scans:
            raise ModalityError(f"image: jpeg has {scans} scans, more than the limit of {max_scans}")
    return img


def _oriented_size(img: Image.Image) -> tuple[int, int]:
    """The stored size as a viewer shows it: EXIF orientations 5-8 turn the image by 90 deg
    (the same tag `ImageOps.exif_transpose` applies)."""
    width, height = img.size
    orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB, whatever the stored mode."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale PNG: Pillow's convert("RGB") clips at 255 (almost all white).
        arr = np.asarray(img, dtype=np.float32)
        grey = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        # What a transparent pixel "is" is undefined; its stored colour is often black or
        # garbage. Compositing over white (what most viewers show) is deterministic.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


# ---- classical descriptor (profile `small`) ------------------------------------------

IMAGE_DESCRIPTOR: tuple[str, ...] = L.IMAGE_DESCRIPTOR
"""Names and order of `image_descriptor`'s values (single source: `schemas.labels`)."""

DESCRIPTOR_SIDE = 256
"""The descriptor is measured on a copy downscaled to at most this many pixels on the long
side: colour statistics do not need more, and it bounds the cost (< 20 ms whatever the
input). Edge density is therefore a property of the image *at this scale*: texture finer
than ~1/256 of the image averages out."""

EDGE_THRESHOLD = 0.1
"""Sobel magnitude (normalised so a unit luma step gives 1.0) above which a pixel is an
edge: a step of ~10% of the luma range (~25 grey levels), above JPEG noise."""

MAX_LOG_ASPECT = 3.0
"""`aspect_ratio` is ln(width/height) clipped to +-3 (about 20:1), so a freak panorama
cannot produce an input far outside the other features' unit scale."""

# Hue bins in degrees [start, end); red wraps around 0. Perceptual, not uniform: the
# eye splits 0-90 deg (red/orange/yellow) much more finely than 90-180 (greens).
HUE_BINS: tuple[tuple[str, float, float], ...] = (
    ("hue_red", 345.0, 15.0),
    ("hue_orange", 15.0, 45.0),
    ("hue_yellow", 45.0, 75.0),
    ("hue_green", 75.0, 165.0),
    ("hue_cyan", 165.0, 195.0),
    ("hue_blue", 195.0, 255.0),
    ("hue_purple", 255.0, 285.0),
    ("hue_magenta", 285.0, 345.0),
)

# Upper bound of colorfulness on [0,1] channels: sqrt(s2) + 0.3*sqrt(m2) with
# s2 + m2 = E[rg^2 + yb^2] <= 1.25 (pure red/green/magenta/cyan) is at most
# sqrt(1.25 * (1 + 0.3^2)) by Cauchy-Schwarz.
_COLORFULNESS_MAX = math.sqrt(1.25 * (1.0 + 0.09))

IMAGE_DESCRIPTOR_RANGES: dict[str, tuple[float, float]] = {
    # mean Rec. 601 luma Y = 0.299R + 0.587G + 0.114B (Pillow's "L"), divided by 255
    "brightness": (0.0, 1.0),
    # RMS contrast: standard deviation of that luma / 255 (0.5 = half black, half white)
    "contrast": (0.0, 0.5),
    # mean HSV saturation (max - min) / max per pixel, 0 for black pixels
    "saturation": (0.0, 1.0),
    # Hasler & Suesstrunk (2003) M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2),
    # rg = R - G, yb = (R + G)/2 - B, on channels in [0, 1], i.e. the paper's M / 255
    # (their "highly colourful" 82 -> 0.32, "extremely" 109 -> 0.43)
    "colorfulness": (0.0, _COLORFULNESS_MAX),
    # mean(R - B) on [0, 1] channels: + warm (red/orange), - cool (blue)
    "warmth": (-1.0, 1.0),
    # share of pixels whose Sobel luma gradient magnitude (/4, so a unit step = 1) > 0.1
    "edge_density": (0.0, 1.0),
    # Shannon entropy of the 256-bin luma histogram in bits, / 8
    "entropy": (0.0, 1.0),
    # ln(width / height) of the full (EXIF-rotated) image, clipped to +-3
    "aspect_ratio": (-MAX_LOG_ASPECT, MAX_LOG_ASPECT),
    # hue bins: share of the image's chroma (max - min) whose HSV hue falls in the bin;
    # sum to 1, or all 0 for an achromatic image (see `HUE_BINS` for the degrees)
    **{name: (0.0, 1.0) for name, _, _ in HUE_BINS},
}
assert tuple(IMAGE_DESCRIPTOR_RANGES) == IMAGE_DESCRIPTOR, "descriptor names drifted from schemas.labels"


def _downscale(img: Image.Image, side: int) -> Image.Image:
    return _scaled(img, side / max(img.size))


def _scaled(img: Image.Image, scale: float) -> Image.Image:
    """`img` resized by `scale` when that shrinks it, else `img` itself (never enlarged)."""
    if scale >= 1.0:
        return img
    width, height = img.size
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap: box-reduce by an integer factor first, then a bilinear resample --
    # several times faster than a full-quality resize, and anti-aliased.
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def _sobel_magnitude(luma: np.ndarray) -> np.ndarray:
    """|gradient| of a 2-D array by the 3x3 Sobel operator (edge-replicated borders, so the
    image frame itself is not an edge), divided by 4 so a unit step gives 1."""
    p = np.pad(luma, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return np.hypot(gx, gy) / 4.0


def image_descriptor(img: Image.Image, full_size: tuple[int, int] | None = None) -> dict[str, float]:
    """The 16 named values of `IMAGE_DESCRIPTOR` for one image (formulas and ranges in
    `IMAGE_DESCRIPTOR_RANGES`). All finite and inside their ranges. `full_size`: the
    image's size before a reduced-scale decode, whose rounding would shift `aspect_ratio`.

    Why these: they are cheap, deterministic, and the colour/light/texture cues that the
    affective-image literature links to valence and arousal (brightness and saturation to
    pleasantness, colourfulness and warm hues to arousal, edges/entropy to complexity).
    They describe *how* an image looks, not *what* it shows -- that needs the vision
    encoder of the production profile.
    """
    width, height = full_size or img.size
    rgb = _to_rgb(img) if img.mode != "RGB" else img
    small = _downscale(rgb, DESCRIPTOR_SIDE)
    luma8 = np.asarray(small.convert("L"))
    luma = luma8.astype(np.float32) / 255.0
    px = np.asarray(small, dtype=np.float32).reshape(-1, 3) / 255.0
    r, g, b = (np.ascontiguousarray(px[:, i]) for i in range(3))

    # Elementwise max/min of three planes: much faster than reductions over a 3-wide axis.
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    chroma = mx - mn
    saturation = np.divide(chroma, mx, out=np.zeros_like(mx), where=mx > 0)

    rg = r - g
    yb = 0.5 * (r + g) - b
    colorfulness = math.sqrt(float(rg.var() + yb.var())) + 0.3 * math.sqrt(
        float(rg.mean()) ** 2 + float(yb.mean()) ** 2
    )

    # Brightness, contrast and entropy from the exact 256-bin luma histogram (float64):
    # exact zeros for flat images, and cheaper than float reductions over every pixel.
    hist = np.bincount(luma8.ravel(), minlength=256).astype(np.float64)
    p_all = hist / hist.sum()
    levels = np.arange(256, dtype=np.float64) / 255.0
    brightness = float(p_all @ levels)
    contrast = math.sqrt(max(float(p_all @ (levels - brightness) ** 2), 0.0))
    prob = p_all[p_all > 0]
    entropy = float(-(prob * np.log2(prob)).sum()) / 8.0 + 0.0  # + 0.0: no -0.0

    edge_density = float((_sobel_magnitude(luma) > EDGE_THRESHOLD).mean())

    out: dict[str, float] = {
        "brightness": brightness,
        "contrast": contrast,
        "saturation": float(saturation.mean()),
        "colorfulness": colorfulness,
        "warmth": float((r - b).mean()),
        "edge_density": edge_density,
        "entropy": entropy,
        "aspect_ratio": float(np.clip(math.log(width / height), -MAX_LOG_ASPECT, MAX_LOG_ASPECT)),
    }
    out.update(_hue_shares(r, g, b, mx, chroma))
    # Clamp float round-off (e.g. entropy 1.0000001) into the documented ranges.
    for name, (lo, hi) in IMAGE_DESCRIPTOR_RANGES.items():
        out[name] = min(max(out[name], lo), hi)
    return {name: out[name] for name in IMAGE_DESCRIPTOR}


def _hue_shares(
    r: np.ndarray, g: np.ndarray, b: np.ndarray, mx: np.ndarray, chroma: np.ndarray
) -> dict[str, float]:
    """Chroma-weighted hue histogram. Weights are chroma (max - min), not HSV saturation
    ((max - min) / max): saturation of a near-black pixel is 1/max-unstable (RGB (3,0,0) is
    "fully saturated red"), so JPEG noise in shadows would dominate; chroma lets a pixel
    count as much as it is visibly coloured."""
    total = float(chroma.sum())
    if total <= 1e-6:
        return {name: 0.0 for name, _, _ in HUE_BINS}
    safe = np.where(chroma > 0, chroma, 1.0)
    # HSV hue in degrees, the standard piecewise formula.
    hue = np.where(
        mx == r,
        ((g - b) / safe) % 6.0,
        np.where(mx == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    ) * 60.0
    # Whole degree -> bin index through a 360-entry table, then one weighted bincount.
    degree = np.minimum(hue.astype(np.int64), 359)
    sums = np.bincount(_HUE_BIN_OF_DEGREE[degree], weights=chroma, minlength=len(HUE_BINS))
    return {name: float(sums[i]) / total for i, (name, _, _) in enumerate(HUE_BINS)}


def _hue_table() -> np.ndarray:
    table = np.full(360, -1, dtype=np.int64)
    for i, (_, start, end) in enumerate(HUE_BINS):
        degrees = np.arange(360)
        inside = (degrees >= start) | (degrees < end) if start > end else (degrees >= start) & (degrees < end)
        table[inside] = i
    assert (table >= 0).all(), "HUE_BINS must cover 0-360 degrees"
    return table


_HUE_BIN_OF_DEGREE = _hue_table()


# ---- vision encoder (profile `production`) -------------------------------------------

VISION_SIDE = 512
"""Kept event images are reduced to this many pixels on their shorter side (never
enlarged), right after decoding; the encoder's own processor then resizes them to its
input. Vision processors either squash to a fixed square (ViT, SigLIP: height x width)
or resize the shorter side and centre-crop (CLIP, DINOv2, ConvNeXt: `shortest_edge`), so
a shorter side at least their input size loses nothing either way. The production
profile's ViT-B/16 reads 224 px; 512 also covers the 768-wide checkpoints that read 384
or 512 px. `VisionEncoder` refuses at load a processor that reads more."""

VISION_MAX_SIDE = 4 * VISION_SIDE
"""...and to at most this on the longer side, which bounds what a panorama keeps (the
shorter side then drops below `VISION_SIDE` beyond 4:1, where a squashing processor
crushes the long side anyway and a cropping one keeps only its centre). Worst case kept:
2048 x 512 x 3 bytes = 3 MiB per image, ~1 MiB for a 4:3 photo, instead of 120 MB for
40 MP."""


def fit_for_vision(img: Image.Image) -> Image.Image:
    """`img` reduced to what a vision encoder reads (`VISION_SIDE`, `VISION_MAX_SIDE`),
    aspect ratio kept. Done per event right after decoding, because the pixels wait in
    memory until the event's batch runs (64 events x 120 MB at 40 MP would be 7 GiB)."""
    width, height = img.size
    return _scaled(img, min(VISION_SIDE / min(width, height), VISION_MAX_SIDE / max(width, height)))


def _processor_side(processor: Any) -> int | None:
    """The largest side a `transformers` image processor resizes or crops to (None when it
    names none we know). Reads `size` and `crop_size`, dicts or `SizeDict`s."""
    sides: list[int] = []
    for attr in ("size", "crop_size"):
        spec = getattr(processor, attr, None)
        for key in ("height", "width", "shortest_edge"):
            value = spec.get(key) if isinstance(spec, dict) else getattr(spec, key, None)
            if isinstance(value, int):
                sides.append(value)
    return max(sides, default=None)


# Composite (image + text) checkpoints whose vision tower has its own class: AutoModel
# would build the two-tower model, whose forward needs text too.
_VISION_TOWERS = {"clip": "CLIPVisionModel", "siglip": "SiglipVisionModel", "siglip2": "Siglip2VisionModel"}


class VisionEncoder:
    """A frozen `transformers` vision model from a local directory: images -> `[N, dim]`.

    Pooling: the model's `pooler_output` when it has one with trained weights (ViT: tanh
    dense on [CLS]; CLIP: post-LayerNorm [CLS], the representation CLIP's projection
    reads; DINOv2: LayerNorm'd [CLS]); otherwise the mean of `last_hidden_state` over all
    tokens (ViT-style sequences: patches plus the one [CLS] or few register tokens, which
    barely move a mean over 196+; conv feature maps `[N, C, H, W]`: mean over H, W).

    No fallback: any load failure raises `ModelLoadError` with the path and the cause,
    and so does a checkpoint lacking weights the forward would use -- `transformers`
    would fill them with random numbers and merely log it. The one tolerated gap is a
    missing pooler (common: ViT/DINO checkpoints saved without it), which switches
    pooling to the mean so the random pooler is never read.
    """

    def __init__(
        self, path: str, device: torch.device, *, name: str = "image", expected_dim: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.name = name
        self.path = path
        self.device = device
        # Like the text encoders: a directory, or a hub id (resolved through the hub cache /
        # network where there is one). Something that looks like a path must exist.
        local = os.path.isdir(path)
        if not local and looks_like_path(path):
            raise ModelLoadError(f"image encoder {name!r}: {path!r} is not an existing model directory")
        try:
            import transformers
            from transformers import AutoConfig, AutoImageProcessor, AutoModel

            config = AutoConfig.from_pretrained(path, local_files_only=local)
            tower = _VISION_TOWERS.get(config.model_type)
            model_cls = getattr(transformers, tower) if tower else AutoModel
            model, info = model_cls.from_pretrained(path, local_files_only=local, output_loading_info=True)
            self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=local)
        except Exception as exc:  # re-raised as the named error, with the cause chained
            raise ModelLoadError(
                f"image encoder {name!r}: cannot load a transformers vision model from {path!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        needed = _processor_side(self.processor)
        if needed is not None and needed > VISION_SIDE:
            raise ModelLoadError(
                f"image encoder {name!r}: {path!r} reads {needed}-px images, but event images are kept "
                f"at most {VISION_SIDE} px on their shorter side (pipeline.modalities.image.VISION_SIDE)"
            )
        missing = set(info.get("missing_keys") or ())
        pooler_missing = {k for k in missing if "pooler" in k.split(".")}
        untrained = sorted(missing - pooler_missing)
        if untrained:
            shown = ", ".join(untrained[:8]) + (f" (+{len(untrained) - 8} more)" if len(untrained) > 8 else "")
            raise ModelLoadError(
                f"image encoder {name!r}: checkpoint {path!r} lacks weights the model needs "
                f"({shown}); refusing randomly initialised weights"
            )
        self.pooling = "mean" if pooler_missing else "pooler_output"
        self.model_type: str = config.model_type
        self.model = model.eval().requires_grad_(False).to(device, dtype)
        self.parameter_count = sum(p.numel() for p in self.model.parameters())
        # Probe: one forward on a grey image at load time, so a processor/model mismatch
        # fails the worker's start, not every image event; it also measures `dim` for
        # models whose width is not a single `hidden_size` (conv nets: `hidden_sizes`).
        try:
            probe = self.encode([Image.new("RGB", (64, 64), (128, 128, 128))])
        except Exception as exc:  # re-raised as the named error, with the cause chained
            raise ModelLoadError(
                f"image encoder {name!r}: {path!r} loaded but cannot encode an image: {type(exc).__name__}: {exc}"
            ) from exc
        self.dim: int = int(probe.shape[1])
        if expected_dim is not None and self.dim != expected_dim:
            raise ModelLoadError(
                f"image encoder {name!r}: {path!r} yields {self.dim}-d vectors, profile expects {expected_dim}"
            )

    @torch.inference_mode()
    def encode(self, images: list[Image.Image]) -> torch.Tensor:
        """`[N, dim]` float32 on the encoder's device, one row per image, in one batch.

        The processor resizes every image to the model's input size, so a batch has no
        padding and each row is independent of its batch-mates."""
        if not images:
            return torch.empty((0, getattr(self, "dim", 0)), device=self.device)
        rgb = [im if im.mode == "RGB" else _to_rgb(im) for im in images]
        pixels = self.processor(images=rgb, return_tensors="pt")["pixel_values"]
        dtype = next(self.model.parameters()).dtype
        out = self.model(pixel_values=pixels.to(self.device, dtype=dtype, non_blocking=True))
        pooled = getattr(out, "pooler_output", None) if self.pooling == "pooler_output" else None
        if pooled is None:
            # Either the pooler is untrained (see __init__) or the architecture has none;
            # the latter is recorded at the load-time probe so describe() tells the truth.
            self.pooling = "mean"
            hidden = out.last_hidden_state
            pooled = hidden.mean(dim=(2, 3)) if hidden.ndim == 4 else hidden.mean(dim=1)
        return pooled.flatten(1).float()

    def describe(self) -> dict[str, Any]:
        """What `/status` shows for this encoder (same keys as the text encoders')."""
        return {
            "name": self.name,
            "kind": "transformers-vision",
            "id": self.path,
            "model_type": self.model_type,
            "dim": self.dim,
            "pooling": self.pooling,
            "parameters": self.parameter_count,
            "parameters_source": "measured",
            "frozen": True,
        }
