"""Reports from results folders: HTML page, PNG plots, CSV tables, run comparison, regression gate.

Reads only results folders (see harness/results.py); never measures. Entry points:

    build_report(run_dir_or_dirs, out_dir=None) -> Path of index.html
    check_regressions(baseline_dir, run_dir, limit_pct) -> list[Regression]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from harness.errors import HarnessError
from harness.measure.run_folder import atomic_write
from harness.report.compare import (
    Regression,
    comparison_plot,
    comparison_table,
    find_regressions,
    render_compare_page,
    run_metrics,
)
from harness.report.html import render_run_page
from harness.report.plots import render_plots
from harness.report.runs import RUN_FILES, RunData, load_run
from harness.report.tables import RunTables, build_tables

__all__ = [
    "Regression",
    "build_comparison_report",
    "build_report",
    "build_run_report",
    "check_regressions",
    "compare_runs",
]

DEFAULT_LIMIT_PCT = 10.0  # colouring on comparison pages when no gate limit is given


def build_report(run_dirs: str | Path | Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """One folder: its report (in the folder itself by default). Several: a comparison page.

    Returns the path of the index.html written.
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise HarnessError("no results folder given: pass at least one reports/<run-id> folder")
    if len(dirs) == 1:
        return build_run_report(dirs[0], out_dir)
    return build_comparison_report(dirs, out_dir)


def build_run_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path
    return _write_run_report(run, build_tables(run), out)


def _write_run_report(run: RunData, tables: RunTables, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    csv_names = _write_csvs(tables, out)
    plots = render_plots(run, tables, out)
    index = out / "index.html"
    atomic_write(index, render_run_page(run, tables, plots, csv_names))
    return index


def _write_csvs(tables: RunTables, out: Path) -> list[str]:
    files = {
        "checklist.csv": tables.checklist,
        "latency.csv": tables.latency,
        "concurrency.csv": tables.concurrency,
        "provider_share.csv": tables.providers,
        "benchmark_stats.csv": tables.benchmark,
        "failed_requests.csv": tables.failures,
    }
    for name, frame in files.items():
        # The report may be written into the run folder itself: never over a results file.
        assert name not in RUN_FILES, name
        atomic_write(out / name, frame.to_csv(index=False))
    return list(files)


def build_comparison_report(run_dirs: Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """Compare runs against the first; returns the comparison page's index.html."""
    return compare_runs(run_dirs, out_dir)[0]


def compare_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path | None = None,
    limit_pct: float | None = None,
    gate: bool = False,
) -> tuple[Path, list[Regression] | None]:
    """Compare runs against the first (the baseline); with ``gate``, also check for regressions.

    Writes the comparison page, comparison.csv/.png, and each run's own page under
    ``<out>/runs/<n>-<run-id>/`` so the folder is complete. Returns (index.html, regressions or None).
    """
    if len(run_dirs) < 2:
        raise HarnessError("a comparison needs two results folders or more: pass them, or one with --baseline")
    if limit_pct is not None and limit_pct < 0:
        raise HarnessError(f"--fail-on-regression {limit_pct:g} is negative: give a percentage >= 0, e.g. 10")
    runs = [load_run(d) for d in run_dirs]
    out = Path(out_dir) if out_dir is not None else default_comparison_dir(runs)
    out.mkdir(parents=True, exist_ok=True)
    tables = [build_tables(run) for run in runs]
    links = []
    for index, (run, table) in enumerate(zip(runs, tables)):
        sub = out / "runs" / f"{index}-{_safe(run.run_id)}"
        _write_run_report(run, table, sub)
        links.append(f"runs/{sub.name}/index.html")
    metrics = [run_metrics(run, table) for run, table in zip(runs, tables)]
    names = [run.run_id for run in runs]
    pct = DEFAULT_LIMIT_PCT if limit_pct is None else limit_pct
    wide = comparison_table(metrics, names)
    atomic_write(out / "comparison.csv", wide.to_csv(index=False))
    plot_name = "comparison.png" if comparison_plot(wide, names, pct, out / "comparison.png") else None
    regressions = None
    if gate:
        regressions = [r for current in metrics[1:] for r in find_regressions(metrics[0], current, pct)]
    index = out / "index.html"
    atomic_write(index, render_compare_page(runs, tables, wide, links, plot_name, regressions, pct, baseline_given=gate))
    return index, regressions


def check_regressions(baseline_dir: str | Path, run_dir: str | Path, limit_pct: float) -> list[Regression]:
    """Gated metrics of ``run_dir`` worse than ``baseline_dir`` by more than ``limit_pct`` percent."""
    if limit_pct < 0:
        raise HarnessError(f"--fail-on-regression {limit_pct:g} is negative: give a percentage >= 0, e.g. 10")
    baseline, current = load_run(baseline_dir), load_run(run_dir)
    return find_regressions(
        run_metrics(baseline, build_tables(baseline)), run_metrics(current, build_tables(current)), limit_pct
    )


def default_comparison_dir(runs: list[RunData]) -> Path:
    """Beside the last run: ``<parent>/compare-<first-id>-vs-<last-id>``."""
    name = f"compare-{_safe(runs[0].run_id)}-vs-{_safe(runs[-1].run_id)}"
    return runs[-1].path.parent / name[:120]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60] or "run"
