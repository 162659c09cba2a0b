"""Shared helpers for the report tests: fixture folders, PNG header reading, running the command."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from harness import cli

RUNS = Path(__file__).parent / "fixtures" / "runs"
FAST = RUNS / "cpu-fast"  # a CPU run of the quick matrix on the tiny model
SLOW = RUNS / "cpu-slow"  # the same matrix about 30 % slower, one concurrent request failed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG signature and IHDR chunk; raises AssertionError if not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path.name} has no IHDR chunk first"
    return struct.unpack(">II", head[16:24])


def copy_run(source: Path, tmp_path: Path, name: str | None = None) -> Path:
    target = tmp_path / (name or source.name)
    shutil.copytree(source, target)
    return target


def run_report_command(argv: list[str], capsys) -> tuple[int, str]:
    """`phi3-harness report ARGV` through ``harness.cli.main`` (its parser and its error boundary:
    an error is one line and exit 2); stdout and stderr together."""
    capsys.readouterr()  # drop whatever came before
    code = cli.main(["report", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err
