"""The README's quick start is what CI runs, and the base install never pins an ONNX Runtime build."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_test_command() -> None:
    install_and_run, install_and_test = _quick_start_commands()
    assert "phi3-harness run" in install_and_run and install_and_test.endswith("&& pytest")
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert install_and_test in ci_lines


def test_base_install_has_no_onnxruntime_and_each_extra_brings_exactly_one() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not any(re.match(r"onnxruntime", dep) for dep in project["dependencies"])
    extras = project["optional-dependencies"]
    for extra, package in (("cpu", "onnxruntime"), ("directml", "onnxruntime-directml"), ("qnn", "onnxruntime-qnn"),
                           ("cuda", "onnxruntime-gpu")):
        names = [re.split(r"[<>=;\s\[]", dep, maxsplit=1)[0] for dep in extras[extra]]
        assert names == [package], extra
    assert "win32" in extras["directml"][0] and "AMD64" in extras["directml"][0]
