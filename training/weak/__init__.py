"""Weak supervision: labeling functions over lexicons and cue phrases (SPEC §8)."""

from training.weak.functions import WEAK_OUTPUTS, WeakLabels, label

__all__ = ["WEAK_OUTPUTS", "WeakLabels", "label"]
