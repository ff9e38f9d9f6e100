"""Named failures of the pipeline.

The worker maps each to a precise action (refuse to start, dead-letter an event), so
they are distinct classes rather than a generic RuntimeError with a message.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of everything `pipeline/` raises on purpose."""


class ModelLoadError(PipelineError):
    """An encoder (or other external model) could not be loaded. There is no fallback:
    a missing model is an operator error, never a reason to emit made-up vectors."""


class CheckpointError(PipelineError):
    """A checkpoint is missing, does not match the profile or labels, or was altered."""


class InferenceError(PipelineError):
    """The network produced something that cannot be a valid result (e.g. NaN)."""


class ModalityError(PipelineError):
    """An image, audio or biosignal part that cannot be analyzed (undecodable, too short,
    a sample rate too low for what is measured). The worker dead-letters the event with
    `error.class` `invalid_modality` and this message as the reason."""
