"""Deprecated alias of `python -m training.eval`, kept for one release.

Training moved out of `pipeline/` (which now holds only what serving loads) into the
top-level `training/` package. `python -m pipeline.eval ARGS` prints a deprecation
note on stderr and runs `training.eval.main(ARGS)`; attributes (`recompute`,
`first_difference`, ...) are forwarded to `training.eval` with a `DeprecationWarning`.
Use `python -m training.eval` instead; this module will be removed in the next release.

Nothing in `pipeline/` imports this module, so serving never loads `training`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

_TARGET = "training.eval"
NOTE = f"note: `python -m pipeline.eval` is deprecated and will be removed; use `python -m {_TARGET}`"


def main(argv: list[str] | None = None) -> int:
    print(NOTE, file=sys.stderr)
    try:
        from training.eval import main as target
    except ModuleNotFoundError as exc:
        if exc.name != "training":
            raise
        print("error: the `training` package is not installed here (the worker image ships without it)",
              file=sys.stderr)
        return 2
    return target(argv)


def __getattr__(name: str) -> Any:
    import importlib

    if name.startswith("__"):
        raise AttributeError(name)
    warnings.warn(f"pipeline.eval.{name}: pipeline.eval moved to {_TARGET}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_TARGET), name)


if __name__ == "__main__":
    sys.exit(main())
