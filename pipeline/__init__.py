"""Red Heart's analysis pipeline (docs/PIPELINE.md): encoders -> backbone -> analyzers ->
integration -> auxiliary. The worker uses `Pipeline`; nothing here knows Kafka.

The names below load on first use, so what does not need torch (the temporal math that
the worker's state store uses, the label tables) imports without it."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.api import Pipeline, PreparedBatch
    from pipeline.config import EncoderSpec, ProfileConfig, get_profile
    from pipeline.errors import CheckpointError, InferenceError, ModelLoadError, PipelineError

_WHERE = {
    "Pipeline": "pipeline.api",
    "PreparedBatch": "pipeline.api",
    "EncoderSpec": "pipeline.config",
    "ProfileConfig": "pipeline.config",
    "get_profile": "pipeline.config",
    "CheckpointError": "pipeline.errors",
    "InferenceError": "pipeline.errors",
    "ModelLoadError": "pipeline.errors",
    "PipelineError": "pipeline.errors",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
