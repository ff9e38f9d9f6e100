"""`worker.client` is for producing services in slim images: importing it never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_client_leaves_torch_out_of_sys_modules() -> None:
    code = "import worker.client, sys; assert 'torch' not in sys.modules, 'torch was imported'"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_cli_client_commands_and_the_mcp_server_do_not_import_torch_either() -> None:
    code = (
        "import sys, worker.__main__, worker.summary, worker.stream_view, worker.mcp_server\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
