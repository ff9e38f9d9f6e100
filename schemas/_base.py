"""Shared pydantic configuration for every wire message."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a producer must not vanish silently."""

    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=False)


def named(names: tuple[str, ...], lo: float, hi: float) -> dict:
    """JSON-Schema fragment for a mapping keyed exactly by `names` with bounded values."""
    return {
        "type": "object",
        "properties": {n: {"type": "number", "minimum": lo, "maximum": hi} for n in names},
        "required": list(names),
        "additionalProperties": False,
    }
