"""The validation suites (suites/) run by ``pytest.main`` in this process, as plain `pytest suites/` runs them.

For tests whose point is what the suites record and the exit status they end with, not the process:
a fresh interpreter loading every installed pytest plugin costs seconds here. A real `pytest suites`
process is started where a signal reaching it is the point (test_run_command.py, the interrupted run).
``--import-mode=importlib`` keeps the suites' conftest and test modules apart from the tests' own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUITES = REPO / "suites"


def run_suites_in_process(*args: str | Path) -> int:
    """pytest's exit status for `pytest ARGS` from the repository root (name suites/ or its files in ARGS).

    In a pytest-xdist worker pytest-benchmark switches itself off and warns, into this session's
    summary; these sessions read the run folder, never benchmark timings, so the warning is dropped.
    """
    return int(pytest.main([*map(str, args), "--rootdir", str(REPO), "-c", str(REPO / "pyproject.toml"),
                            "-p", "no:cacheprovider", "-q", "--import-mode=importlib",
                            "-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning"]))
