"""`generate` and `run` start without the heavy libraries they do not use (a fresh interpreter is the point here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("pandas", "matplotlib", "onnx", "scipy")

_SCRIPT = """
import contextlib, io, json, sys
from harness import cli
with contextlib.redirect_stdout(io.StringIO()):
    code = cli.main(["generate", "hi", "--model", sys.argv[1], "--max-new-tokens", "2"])
print(json.dumps({"code": code, "loaded": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def test_generate_imports_no_pandas_matplotlib_or_onnx(tiny_model_dir: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tiny_model_dir), *HEAVY],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "loaded": []}


def test_what_run_and_the_suites_print_with_loads_no_matplotlib() -> None:
    # `run` (before and after the suites) and the suites' end print through these; only a page needs matplotlib
    script = ("import sys, harness.report, harness.report.terminal, harness.report.checklist_text, "
              "harness.report.checklist_table, harness.report.run_end; print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
