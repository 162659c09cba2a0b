"""Run the CLI in this process (the parser, the command and its error boundary: exactly `main`).

A fresh interpreter costs seconds here; tests whose point is the process boundary (exit status of a
real process, signals, imports at start-up) start one, the others call ``main`` through this.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

from harness import cli


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(capture, *argv: str) -> Result:
    """``capture``: pytest's capsys, or capfd where a child process writes too (`run` starts pytest)."""
    capture.readouterr()  # drop whatever came before
    code = cli.main(list(argv))
    captured = capture.readouterr()
    return Result(code, captured.out, captured.err)


def run_cli_captured(*argv: str) -> Result:
    """``run_cli`` for a fixture shared by several tests (no capsys there): Python-level capture is
    enough, since `run` relays its child's output through print (the child writes to pipes)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return Result(code, out.getvalue(), err.getvalue())


# The least a `run` needs to measure every item on cpu (each item's minimum samples,
# harness/judge/table.py): one short prompt, one concurrency level, 8 repetitions, 4 concurrent
# requests, no open-loop rates. Tests whose point is one verdict or one exit path use it.
SMALL_MATRIX = (
    "--set", "matrix.providers=cpu", "--set", "matrix.prompt_lengths=16", "--set", "matrix.concurrency=1,2",
    "--set", "matrix.repetitions=8", "--set", "matrix.warmup=0", "--set", "matrix.requests_per_level=4",
    "--set", "matrix.arrival_rates=[]", "--set", "matrix.max_new_tokens=8",
)
