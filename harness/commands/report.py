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
    "page; --fail-on-regression PCT exits 1 when a gated metric is worse than the baseline by more than PCT percent."
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
        "--fail-on-regression", type=float, default=None, metavar="PCT",
        help="exit 1 when TTFT p50, E2E p50, decode tok/s p50 or concurrent output tok/s of a case is worse than "
        "the baseline (or the first RUN_DIR) by more than PCT percent",
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


def run(args: argparse.Namespace) -> int:
    # Imported here so `phi3-harness --help` does not pay for pandas and matplotlib.
    from harness.report import build_run_report, compare_runs

    dirs = ([args.baseline] if args.baseline else []) + list(args.run_dirs)
    gate = args.fail_on_regression is not None
    if gate and not 0 <= args.fail_on_regression < math.inf:  # NaN fails too
        raise HarnessError(f"--fail-on-regression {args.fail_on_regression:g} is not a percentage >= 0: give e.g. 10")
    if gate and len(dirs) < 2:
        raise HarnessError("--fail-on-regression needs something to compare: add --baseline RUN_DIR")
    with _claim_output(dirs, args.out, args.overwrite):
        if len(dirs) == 1:
            print(f"report: {build_run_report(dirs[0], args.out)}")
            return 0
        index, regressions = compare_runs(dirs, args.out, args.fail_on_regression, gate=gate)
    print(f"comparison: {index}")
    if not gate:
        return 0
    for regression in regressions or []:
        print(regression.message())
    if regressions:
        print(f"regression gate: FAIL ({len(regressions)} gated metric(s) worse by more than {args.fail_on_regression:g} %)")
        return 1
    print(f"regression gate: PASS (no gated metric worse by more than {args.fail_on_regression:g} %)")
    return 0
