"""Write the JSON Schema of every message into `schemas/json/` (`python -m schemas.export`).

The files are checked in; `tests/unit/test_schemas.py` regenerates them in memory and
fails when they drift, so the published contract never silently differs from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.dead_letter import DeadLetter
from schemas.input import InputEvent
from schemas.result import ResultEvent
from schemas.state import StreamState

MODELS: dict[str, type[BaseModel]] = {
    "input_event": InputEvent,
    "result_event": ResultEvent,
    "dead_letter": DeadLetter,
    "stream_state": StreamState,
}
OUT_DIR = Path(__file__).parent / "json"


def render() -> dict[str, str]:
    """File name -> exact file text (sorted keys, trailing newline)."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(mode="validation"), indent=2, sort_keys=True)
        + "\n"
        for name, model in MODELS.items()
    }


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for fname, text in render().items():
        (OUT_DIR / fname).write_text(text, encoding="utf-8")
        print(OUT_DIR / fname)
    return 0


if __name__ == "__main__":
    sys.exit(main())
