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
import contextlib, io, sys
from harness import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = cli.main(["run", "--model", sys.argv[1], "--out", sys.argv[2], "--no-report", "--", "-k", "checklist"])
print(code, sorted(m for m in sys.argv[3:] if m in sys.modules))
"""


def test_runs_own_process_loads_no_pandas_matplotlib_or_onnx(tiny_model_dir: Path, tmp_path: Path) -> None:
    # `run` itself checks the model's graph (it reads the .onnx protobuf itself), starts the suites,
    # then judges the gate and prints it; the suites' child does the measuring, judging and drawing.
    # Deselecting every measuring test keeps the child short: the gate then fails (nothing measured).
    done = subprocess.run([sys.executable, "-c", _RUN_SCRIPT, str(tiny_model_dir), str(tmp_path / "r"), *HEAVY],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1 []"
