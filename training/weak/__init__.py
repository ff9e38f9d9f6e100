"""Weak supervision: labeling functions over lexicons and cue phrases (docs/DATA.md)."""

from training.weak.functions import WEAK_OUTPUTS, WeakLabels, label

__all__ = ["WEAK_OUTPUTS", "WeakLabels", "label"]
