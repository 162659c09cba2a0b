"""Fixtures of the harness's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_model import BuildFn

from harness.model.tiny.build import build_tiny_model


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own, which turns -n into workers
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The harness's own tests run on one pytest-xdist worker per CPU unless told otherwise (-n 0: serial),
    or unless only test files are named (their workers' start-up, seconds, would outweigh the gain).

    Set here, not in pyproject's addopts: those apply to `pytest suites/` as well, which must measure one
    case at a time and whose users may not have pytest-xdist (the `test` extra) installed.
    """
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return  # no xdist, or this is one of its workers
    if config.args and all(".py" in arg for arg in config.args):
        return  # `pytest tests/test_x.py[::test]`
    if config.option.numprocesses is None and config.option.dist == "no" and not config.option.usepdb:
        config.option.numprocesses = "logical"
        config.option.dist = "loadscope"  # a module's tests share its fixtures (one real run each) on one worker


# Packages that pytest assert-rewrites only because they ship a plugin: their own asserts are not the tests'.
# Rewriting hypothesis (73 modules) and anyio on every import cost ~0.9 s per process that loads them
# (1.0 s vs 0.1 s, measured), and nothing caches it here (PYTHONDONTWRITEBYTECODE=1).
NOT_REWRITTEN = {"hypothesis", "anyio"}


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module imports them. pytest keeps the names in a private set; where a later pytest
    has none, the packages are rewritten as before (slower, nothing else changes)."""
    marked = getattr(getattr(config.pluginmanager, "rewrite_hook", None), "_must_rewrite", None)
    if isinstance(marked, set):
        marked -= NOT_REWRITTEN


@pytest.fixture(scope="session")
def tiny_builds(tmp_path_factory: pytest.TempPathFactory) -> BuildFn:
    """``tiny_builds(precision, layout)`` -> a folder built once per session in a temp dir."""
    built: dict[tuple[str, str], Path] = {}

    def get(precision: str = "fp32", layout: str = "cpu") -> Path:
        if (precision, layout) not in built:
            base = tmp_path_factory.mktemp(f"tiny-{precision}-{layout}")
            built[(precision, layout)] = build_tiny_model(base / "model", precision=precision, layout=layout)
        return built[(precision, layout)]

    return get
