"""Report folders from results folders: a run's page, PNG plots and CSV tables, or a comparison page.

Reached through ``harness.report`` (build_report, build_run_report, build_comparison); this module
loads pandas, so the package imports it only when a report is built (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from harness.errors import HarnessError
from harness.measure.run_folder import atomic_write
from harness.report.gate import MIN_CHANGE_S, RunComparison, compare_runs
from harness.report.overview import goodput_table, run_files, slo_limits
from harness.report.sweep import sweep_table
from harness.report.runs import RUN_FILES, RunData, load_run
from harness.report.tables import RunTables, build_tables
from harness.stats import MIN_SAMPLES

if TYPE_CHECKING:
    from harness.report.compare import GateSettings

# The page and plot modules (html, plots, compare) load matplotlib: imported below where a page is drawn.

DEFAULT_LIMIT_PCT = 10.0  # the verdicts' limit on comparison pages when no gate limit is given


def build_report(run_dirs: str | Path | Sequence[str | Path], out_dir: str | Path | None = None) -> Path:
    """One folder: its report (in the folder itself by default). Several: a comparison page.

    Returns the path of the index.html written.
    """
    dirs = [Path(run_dirs)] if isinstance(run_dirs, (str, Path)) else [Path(d) for d in run_dirs]
    if not dirs:
        raise HarnessError("no results folder given: pass at least one reports/<run-id> folder")
    if len(dirs) == 1:
        return build_run_report(dirs[0], out_dir)
    return build_comparison(dirs, out_dir)[0]


def build_run_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path
    return _write_run_report(run, build_tables(run), out)


def _write_run_report(run: RunData, tables: RunTables, out: Path) -> Path:
    from harness.report.html import render_run_page
    from harness.report.plot_reuse import reuse_plots, write_manifest
    from harness.report.plots import render_plots

    out.mkdir(parents=True, exist_ok=True)
    csv_names = _write_csvs(tables, out)
    goodput = goodput_table(run.records, slo_limits(run.environment))
    if not goodput.empty:  # only under SLOs; the page says how to set one otherwise
        atomic_write(out / "goodput.csv", goodput.to_csv(index=False))
        csv_names.append("goodput.csv")
    sweep = sweep_table(run.records, slo_limits(run.environment))
    if not sweep.empty:
        atomic_write(out / "sweep.csv", sweep.to_csv(index=False))
    plots = reuse_plots(run, out) or render_plots(run, tables, out)  # `run` drew them already: see plot_reuse
    write_manifest(run, out, plots)
    index = out / "index.html"
    files = list(dict.fromkeys(["index.html", *run_files(out)]))  # written into the run folder: every run file
    atomic_write(index, render_run_page(run, tables, plots, files, goodput, sweep))
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


def build_comparison(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path | None = None,
    limit_pct: float | None = None,
    allow_mismatch: bool = False,
    gate: GateSettings | None = None,
    min_change_s: float = MIN_CHANGE_S,
) -> tuple[Path, list[RunComparison]]:
    """Compare every run against the first (the baseline) and write the comparison page.

    Refuses (HarnessError, nothing written) runs that are not comparable, and, with a ``gate``, a
    comparison in which no metric could be tested. Writes index.html, comparison.csv, the ratio
    plot(s) and each run's own page under ``<out>/runs/<n>-<run-id>/``.
    """
    from harness.report.compare import comparison_plot, render_compare_page

    if len(run_dirs) < 2:
        raise HarnessError("a comparison needs two results folders or more: pass them, or one with --baseline")
    limit = DEFAULT_LIMIT_PCT if limit_pct is None else limit_pct
    runs = [load_run(d) for d in run_dirs]
    comparisons = [compare_runs(runs[0], run, limit, allow_mismatch, min_change_s) for run in runs[1:]]
    for comparison in comparisons if gate else []:
        if not comparison.tested:
            raise HarnessError(
                f"no metric could be tested between {comparison.baseline} and {comparison.current} "
                f"({comparison.summary()}): a gate that tested nothing cannot pass; "
                f"use runs with >= {MIN_SAMPLES} warm requests per case"
            )
    out = Path(out_dir) if out_dir is not None else default_comparison_dir(runs)
    out.mkdir(parents=True, exist_ok=True)
    links = []
    for index, run in enumerate(runs):
        sub = out / "runs" / f"{index}-{_safe(run.run_id)}"
        _write_run_report(run, build_tables(run), sub)
        links.append(f"runs/{sub.name}/index.html")
    frames = pd.concat([c.frame() for c in comparisons], ignore_index=True)
    atomic_write(out / "comparison.csv", frames.to_csv(index=False))
    plots: list[str | None] = []
    for index, comparison in enumerate(comparisons, start=1):
        name = "comparison.png" if len(comparisons) == 1 else f"comparison-{index}.png"
        plots.append(name if comparison_plot(comparison, out / name) else None)
    index_path = out / "index.html"
    atomic_write(index_path, render_compare_page(runs, comparisons, links, plots, gate))
    return index_path, comparisons


def default_comparison_dir(runs: list[RunData]) -> Path:
    """Beside the last run: ``<parent>/compare-<first-id>-vs-<last-id>``."""
    name = f"compare-{_safe(runs[0].run_id)}-vs-{_safe(runs[-1].run_id)}"
    return runs[-1].path.parent / name[:120]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60] or "run"
