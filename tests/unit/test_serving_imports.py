"""`pipeline/` is what serving loads and nothing else: importing the network and the worker
never imports `training` (train/eval, training data, labeling functions), nor `peft` (tuned
encoder layers are merged by `pipeline.adapters` itself)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The deprecated `python -m pipeline.train` / `pipeline.eval` aliases forward to `training` when run.
ALIASES = {ROOT / "pipeline" / "train.py", ROOT / "pipeline" / "eval.py"}


def test_importing_pipeline_and_worker_leaves_training_out_of_sys_modules() -> None:
    code = (
        "import json, sys, torch; torch.set_num_threads(1)\n"
        "import pipeline, worker.driver\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'peft'))))"
    )
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_serving_code_has_no_training_import() -> None:
    """Also the imports inside functions, which importing a module does not execute."""
    pattern = re.compile(r"^\s*(from\s+training\b|import\s+training\b)", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("pipeline", "worker", "schemas")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path not in ALIASES and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    assert not (ROOT / "pipeline" / "data").exists() and not (ROOT / "pipeline" / "weak").exists()


def test_deprecated_aliases_forward_to_training() -> None:
    for name in ("train", "eval"):
        proc = subprocess.run([sys.executable, "-m", f"pipeline.{name}", "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"use `python -m training.{name}`" in proc.stderr
        assert f"usage: python -m training.{name}" in proc.stdout
