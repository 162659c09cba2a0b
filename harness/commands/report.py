"""`phi3-harness report`: render results folders into HTML/PNG/CSV; compare runs; gate on regressions."""

from __future__ import annotations

import argparse
import contextlib
import math
from pathlib import Path
from typing import Iterator

from harness.errors import HarnessError
from harness.measure.run_folder import RunFolderLock, claim_run_folder

# No bare percent signs: argparse %-formats help strings (write %% where one is needed).
HELP = (
    "Render a results folder as index.html + PNG + CSV; several folders (or --baseline) give a comparison "
    "page and a table in the terminal; --fail-on-regression PCT exits 1 when a gated metric of a case is "
    "worse than the baseline by more than PCT percent with statistical confidence."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="results folder(s), reports/<run-id>")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="where to write the report (default: the run folder itself; for a comparison, "
        "a compare-<first>-vs-<last> folder beside the last run)",
    )
    parser.add_argument("--overwrite", action="store_true",
                        help="let --out be a folder that holds an earlier report (its report files are replaced)")
    parser.add_argument(
        "--baseline", type=Path, default=None, metavar="RUN_DIR",
        help="results folder to compare against (becomes the first column of the comparison)",
    )
    parser.add_argument(
        "--fail-on-regression", type=str, default=None, metavar="PCT",
        help="exit 1 when TTFT, E2E or decode tok/s of a case is worse than the baseline (or the first RUN_DIR) "
        "by more than PCT percent: the 95%% interval of the ratio of medians lies wholly beyond PCT and the "
        "Holm-adjusted Mann-Whitney test is significant",
    )
    parser.add_argument(
        "--fail-on-inconclusive", action="store_true",
        help="with --fail-on-regression: also exit 1 when a metric's interval straddles the limit",
    )
    parser.add_argument(
        "--min-change-ms", type=str, default="1", metavar="MS",
        help="the smallest change that counts, in the time a metric measures, when PCT percent of it is less "
        "(default 1 ms: run-to-run scheduling spread on a busy machine; 0 for dedicated hardware)",
    )
    parser.add_argument(
        "--allow-mismatch", action="store_true",
        help="compare runs of different models or ONNX Runtime versions anyway (flagged on the page)",
    )


@contextlib.contextmanager
def _claim_output(dirs: list[Path], out: Path | None, overwrite: bool) -> Iterator[None]:
    """A report written into a run folder locks that folder; a separate --out must be new or empty."""
    in_place = out is None or any(_same(out, d) for d in dirs)
    target = dirs[0] if out is None and len(dirs) == 1 else out
    if target is None or in_place and not target.is_dir():  # a comparison's default folder; or no run folder,
        yield                                                  # which loading it names in one line
        return
    lock = RunFolderLock(target) if in_place else claim_run_folder(target, overwrite)
    with lock:
        yield


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.resolve() == b.resolve()
    except OSError:
        return False


def parse_non_negative(text: str | None, flag: str, example: str) -> float | None:
    """A finite number >= 0, or a one-line error naming the flag and the value (NaN, inf, -5, "ten")."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise HarnessError(f"{flag} {text!r} is not a finite number >= 0: give e.g. {flag} {example}")
    return value


def run(args: argparse.Namespace) -> int:
    # Imported here so `phi3-harness --help` does not pay for pandas and matplotlib.
    from harness.report import GateSettings, build_comparison, build_run_report
    from harness.report.compare_text import comparison_lines

    limit = parse_non_negative(args.fail_on_regression, "--fail-on-regression", "10")
    min_change_ms = parse_non_negative(args.min_change_ms, "--min-change-ms", "1")
    if args.fail_on_inconclusive and limit is None:
        raise HarnessError("--fail-on-inconclusive needs a limit: add --fail-on-regression PCT")
    dirs = ([args.baseline] if args.baseline else []) + list(args.run_dirs)
    if limit is not None and len(dirs) < 2:
        raise HarnessError("--fail-on-regression needs something to compare: add --baseline RUN_DIR")
    gate = GateSettings(limit, args.fail_on_inconclusive) if limit is not None else None
    with _claim_output(dirs, args.out, args.overwrite):
        if len(dirs) == 1:
            print(f"report: {build_run_report(dirs[0], args.out)}")
            return 0
        index, comparisons = build_comparison(dirs, args.out, limit, args.allow_mismatch, gate,
                                              (min_change_ms or 0) / 1000)
    for comparison in comparisons:
        print("\n".join(comparison_lines(comparison)))
    print(f"comparison: {index}")
    if gate is None:
        return 0
    failed = [c for c in comparisons if c.failed(gate.fail_on_inconclusive)]
    for comparison in comparisons:
        verdict = "FAIL" if comparison in failed else "PASS"
        print(f"regression gate {comparison.current} vs {comparison.baseline}: {verdict} at {limit:g} % "
              f"({comparison.count('regression')} regression, {comparison.count('inconclusive')} inconclusive)")
    return 1 if failed else 0
