"""Red Heart's analysis pipeline (SPEC §2): encoders -> backbone -> analyzers ->
integration -> auxiliary. The worker uses `Pipeline`; nothing here knows Kafka."""

from pipeline.api import Pipeline, PreparedBatch
from pipeline.config import EncoderSpec, ProfileConfig, get_profile
from pipeline.errors import CheckpointError, InferenceError, ModelLoadError, PipelineError

__all__ = [
    "CheckpointError",
    "EncoderSpec",
    "InferenceError",
    "ModelLoadError",
    "Pipeline",
    "PipelineError",
    "PreparedBatch",
    "ProfileConfig",
    "get_profile",
]
