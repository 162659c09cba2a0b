"""Reports from results folders: HTML page, PNG plots, CSV tables, run comparison, regression gate.

Reads only results folders (see harness/measure/results.py); never measures. Entry points:

    build_report(run_dir_or_dirs, out_dir=None) -> Path of index.html
    build_comparison(run_dirs, out_dir, limit_pct, allow_mismatch, gate) -> (index.html, comparisons)

They live in build.py and are loaded on first use (PEP 562): the modules that only print
(terminal.py, checklist_text.py, run_end.py) are imported by `run` before it starts the suites, and
importing this package must not cost them pandas (~0.5 s of start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.report.build import build_comparison, build_report, build_run_report
    from harness.report.compare import GateSettings
    from harness.report.gate import RunComparison

__all__ = ["GateSettings", "RunComparison", "build_comparison", "build_report", "build_run_report"]

_LAZY = {
    "build_report": "harness.report.build",
    "build_run_report": "harness.report.build",
    "build_comparison": "harness.report.build",
    "GateSettings": "harness.report.compare",  # it lives with the comparison page
    "RunComparison": "harness.report.gate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
