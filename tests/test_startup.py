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


_RUN_SCRIPT = """
import sys
from harness.model.folder import load_model_folder
from harness.model.graph_check import check_graph_file
import harness.report, harness.report.terminal, harness.report.checklist_text, harness.report.run_end
folder = load_model_folder(sys.argv[1])
check_graph_file(folder.onnx_path, folder.config)  # run's graph check, before the suites start
print(sorted(m for m in ("matplotlib", "onnx") if m in sys.modules))
"""


def test_runs_graph_check_and_what_it_prints_with_load_no_matplotlib_or_onnx(tiny_model_dir: Path) -> None:
    # `run` (before and after the suites) and the suites' end print through these; only a page needs
    # matplotlib, and the graph check reads the .onnx protobuf itself
    done = subprocess.run([sys.executable, "-c", _RUN_SCRIPT, str(tiny_model_dir)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
