"""Reports rendered once per test session, shared by the report test modules.

A report of a fixture run costs about a second here, nearly all of it matplotlib drawing five PNGs;
most report tests read the same render. Each render below is made at most once per process (a
pytest-xdist worker renders its own), through the real CLI where the command is the point.

pytest creates one fixture definition per module that imports a fixture, so the session scope alone
would still render once per module: the renders are memoised here, in this module, instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from harness import cli
from report_helpers import FAST

SLO = {"ttft_s": 10.0, "tpot_s": None, "e2el_s": None}


@dataclass(frozen=True)
class Rendered:
    """One report: the run folder it was made from, its index.html, and what the command said."""

    run: Path
    index: Path
    code: int = 0
    stdout: str = ""
    before: dict[str, str] | None = None  # sha256 of each run-folder file before the report

    @property
    def page(self) -> str:
        return self.index.read_text()

    @property
    def out(self) -> Path:
        return self.index.parent


_RENDERED: dict[tuple[Path, str], Rendered] = {}


def _once(name: str, factory: pytest.TempPathFactory, render: Callable[[Path], Rendered]) -> Rendered:
    key = (factory.getbasetemp(), name)  # per session: a second session in this process renders anew
    if key not in _RENDERED:
        _RENDERED[key] = render(factory.mktemp(name))
    return _RENDERED[key]


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def cli_report(*argv: str) -> tuple[int, str]:
    """`phi3-harness report ARGV` through ``harness.cli.main`` (parser, command, error boundary);
    stdout and stderr together. For session fixtures, which cannot take capsys."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = cli.main(["report", *argv])
    return code, printed.getvalue()


def with_slo(run: Path, slo: dict | None) -> Path:
    """``run`` with ``slo`` written into its environment's config (None: left as it is)."""
    if slo is not None:
        path = run / "environment.json"
        environment = json.loads(path.read_text())
        config = environment.get("config") if isinstance(environment.get("config"), dict) else {}
        environment["config"] = {**config, "slo": slo}
        path.write_text(json.dumps(environment))
    return run


@pytest.fixture(scope="session")
def fast_in_place(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """`phi3-harness report RUN` on a copy of cpu-fast: the report written into the run folder."""

    def render(tmp: Path) -> Rendered:
        run = shutil.copytree(FAST, tmp / "cpu-fast")
        before = hashes(run)
        code, printed = cli_report(str(run))
        return Rendered(run, run / "index.html", code, printed, before)

    return _once("fast-in-place", tmp_path_factory, render)


@pytest.fixture(scope="session")
def fast_slo_out(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """`phi3-harness report RUN --out DIR` on cpu-fast with a TTFT SLO of 10 s in its config."""

    def render(tmp: Path) -> Rendered:
        run = with_slo(shutil.copytree(FAST, tmp / "cpu-fast-slo"), SLO)
        out = tmp / "out"
        code, printed = cli_report(str(run), "--out", str(out))
        return Rendered(run, out / "index.html", code, printed)

    return _once("fast-slo-out", tmp_path_factory, render)

