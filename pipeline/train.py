"""Deprecated alias of `python -m training.train`, kept for one release.

Training moved out of `pipeline/` (which now holds only what serving loads) into the
top-level `training/` package. `python -m pipeline.train ARGS` prints a deprecation
note on stderr and runs `training.train.main(ARGS)`; attributes (`run`, `select`, ...)
are forwarded to `training.train` with a `DeprecationWarning`. Use `python -m
training.train` instead; this module will be removed in the next release.

Nothing in `pipeline/` imports this module, so serving never loads `training`.
"""

from __future__ import annotations

import sys
from typing import Any

from pipeline import _moved

_OLD, _TARGET = "pipeline.train", "training.train"


def main(argv: list[str] | None = None) -> int:
    return _moved.run(_OLD, _TARGET, argv)


def __getattr__(name: str) -> Any:
    return _moved.attribute(_OLD, _TARGET, name)


if __name__ == "__main__":
    sys.exit(main())
