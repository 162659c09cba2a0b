"""`pytest suites/` refuses pytest-xdist: its workers would time cases side by side and share one run folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("split", [["-n", "2"], ["--dist", "load", "--tx", "popen"]])
def test_suites_on_xdist_workers_are_refused_in_one_line_before_measuring(tmp_path: Path, split: list[str]) -> None:
    pytest.importorskip("xdist")
    # xdist loaded by name, the other installed plugins not: their start-up (~1 s) is not what is tested
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "suites", "-p", "xdist.plugin", "-p", "pytest_benchmark.plugin",
         "-p", "no:cacheprovider", *split, "--results-dir", str(tmp_path / "out")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 4, output  # pytest's usage-error status
    assert "not on pytest-xdist workers: drop -n and --dist" in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()  # refused before any run folder was made
