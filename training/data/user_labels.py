"""Real labels from users: one JSON object per line, any subset of heads labeled.

`python -m training.train --labels FILE.jsonl` validates every row against
`LabeledText` before anything trains and stops with the line numbers and the
pydantic messages of every bad row: a typo in a label name must not silently train
a head on nothing. Mappings are keyed by the label names of `schemas.labels`; a
mapping may name some labels only (the others are then not supervised for that row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas import labels as L
from schemas.input import AudioPart, Biosignals, ImagePart

Unit = float  # a score in [0, 1]


def _check_names(value: dict[str, float] | None, allowed: tuple[str, ...], what: str) -> dict[str, float] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {what} name(s) {unknown}; allowed: {list(allowed)}")
    bad = {k: v for k, v in value.items() if not 0.0 <= v <= 1.0}
    if bad:
        raise ValueError(f"{what} scores must be in [0, 1], got {bad}")
    return value


class LabeledText(BaseModel):
    """One labeled example: a text and/or non-text parts (the input schema's `image`, `audio`,
    `biosignals`: each becomes a modality token, so labeled multimodal rows train the modality
    projections); every other field labels one head."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=8192)
    lang: str | None = None
    image: ImagePart | None = None
    audio: AudioPart | None = None
    biosignals: Biosignals | None = None
    sentiment: Literal["negative", "neutral", "positive"] | None = None
    emotion: str | dict[str, float] | None = Field(
        default=None, description="one of the 7 emotion names (dominant), or a distribution over them"
    )
    cultural: dict[str, float] | None = None
    bentham_scores: dict[str, float] | None = None
    context_weights: dict[str, float] | None = None
    legal_risks: dict[str, float] | None = None
    regret_potential: float | None = Field(default=None, ge=0.0, le=1.0)
    regret_factors: dict[str, float] | None = None
    counterfactuals: dict[str, float] | None = None
    surd_kind: Literal["redundant", "unique", "synergistic", "leak"] | None = None
    surd_cues: dict[str, float] | None = None

    @field_validator("emotion")
    @classmethod
    def _emotion(cls, value: str | dict[str, float] | None) -> str | dict[str, float] | None:
        if isinstance(value, str) and value not in L.EMOTIONS:
            raise ValueError(f"unknown emotion {value!r}; allowed: {list(L.EMOTIONS)}")
        if isinstance(value, dict):
            _check_names(value, L.EMOTIONS, "emotion")
            total = sum(value.values())
            if abs(total - 1.0) > 1e-3:
                raise ValueError(f"an emotion distribution must sum to 1, got {total:.4f}")
        return value

    @model_validator(mode="after")
    def _something(self) -> "LabeledText":
        if self.text is None and self.image is None and self.audio is None and self.biosignals is None:
            raise ValueError("a row needs text or at least one of image, audio, biosignals")
        return self

    @model_validator(mode="after")
    def _mappings(self) -> "LabeledText":
        _check_names(self.cultural, L.CULTURAL, "cultural")
        _check_names(self.bentham_scores, L.BENTHAM_SCORES, "bentham_scores")
        _check_names(self.context_weights, L.BENTHAM_CONTEXT, "context_weights")
        _check_names(self.legal_risks, L.LEGAL_RISKS, "legal_risks")
        _check_names(self.regret_factors, L.REGRET_FACTORS, "regret_factors")
        _check_names(self.counterfactuals, L.COUNTERFACTUALS, "counterfactuals")
        _check_names(self.surd_cues, L.SURD_CUES, "surd_cues")
        return self


# field of LabeledText -> (output key, label names) for the mapping-valued fields
MAPPED_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "cultural": ("emotion.cultural", L.CULTURAL),
    "bentham_scores": ("bentham.scores", L.BENTHAM_SCORES),
    "context_weights": ("bentham.context_weights", L.BENTHAM_CONTEXT),
    "legal_risks": ("bentham.legal_risks", L.LEGAL_RISKS),
    "regret_factors": ("regret.factors", L.REGRET_FACTORS),
    "counterfactuals": ("regret.counterfactuals", L.COUNTERFACTUALS),
    "surd_cues": ("surd.cues", L.SURD_CUES),
}


class LabelsFileError(ValueError):
    """A labels file with invalid rows; the message lists every bad line."""


def read_labels(path: Path | str, max_errors: int = 20) -> list[LabeledText]:
    path = Path(path)
    if not path.is_file():
        raise LabelsFileError(f"{path}: no such labels file")
    rows: list[LabeledText] = []
    errors: list[str] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {lineno}: not valid JSON ({exc.msg})")
                continue
            try:
                rows.append(LabeledText.model_validate(obj))
            except ValidationError as exc:
                for err in exc.errors():
                    where = ".".join(str(p) for p in err["loc"]) or "row"
                    errors.append(f"line {lineno}: {where}: {err['msg']}")
    if errors:
        shown = errors[:max_errors]
        more = f"\n... and {len(errors) - max_errors} more" if len(errors) > max_errors else ""
        raise LabelsFileError(f"{path}: {len(errors)} invalid field(s):\n" + "\n".join(shown) + more)
    if not rows:
        raise LabelsFileError(f"{path}: no labeled rows")
    return rows
