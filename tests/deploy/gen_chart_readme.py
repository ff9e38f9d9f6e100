"""Regenerate the parameter tables of helm/redheart/README.md from values.yaml's `## @param` lines.

    python tests/deploy/gen_chart_readme.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "redheart"
MARKER = "## Parameters\n"


def tables(text: str) -> str:
    values = yaml.safe_load(text)
    rows: list[str] = ["Generated from the `## @param` lines of `values.yaml` by `tests/deploy/gen_chart_readme.py`."]
    for line in text.splitlines():
        if m := re.match(r"\s*## @section (.*)", line):
            rows.append(f"\n### {m.group(1)}\n\n| Name | Description | Default |\n|---|---|---|")
        elif m := re.match(r"\s*## @param (\S+) (.*)", line):
            key, desc = m.groups()
            v = values
            for part in key.split("."):
                v = v[part]
            shown = f'"{v}"' if v == "" else (v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
            if len(shown) > 60:
                shown = "see values.yaml"
            rows.append(f"| `{key}` | {desc.replace('|', chr(92) + '|')} | `{shown}` |")
    return "\n".join(rows) + "\n"


def main() -> None:
    readme = CHART / "README.md"
    head = readme.read_text().split(MARKER)[0]
    readme.write_text(head + MARKER + "\n" + tables((CHART / "values.yaml").read_text()))


if __name__ == "__main__":
    main()
