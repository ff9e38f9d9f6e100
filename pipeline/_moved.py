"""The one implementation behind the deprecated `pipeline.train` / `pipeline.eval` aliases.

Training moved to the top-level `training/` package; the aliases live one release. Both do
the same two things, so both call this: run the new module's `main` with a note on stderr,
and forward attribute access with a `DeprecationWarning`. `training` is imported by name,
only when an alias is used, so serving never loads it.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any


def run(old: str, target: str, argv: list[str] | None) -> int:
    """`python -m OLD ARGS`: the deprecation note, then `TARGET.main(ARGS)`; exit 2 with a
    clear line where `training` is not installed (the worker image ships without it)."""
    print(f"note: `python -m {old}` is deprecated and will be removed; use `python -m {target}`", file=sys.stderr)
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name != "training":
            raise
        print("error: the `training` package is not installed here (the worker image ships without it)",
              file=sys.stderr)
        return 2
    return int(module.main(argv))


def attribute(old: str, target: str, name: str) -> Any:
    """`OLD.name` for a module-level `__getattr__`: TARGET's attribute, with a warning."""
    if name.startswith("__"):
        raise AttributeError(name)
    warnings.warn(f"{old}.{name}: {old} moved to {target}", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(target), name)
