"""`phi3-harness run`: the validation suites under pytest, then the checklist table, the report, the gate."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from harness.checklist import CHECKS, format_table, gate
from harness.config import load_config, parse_override
from harness.errors import HarnessError
from harness.results import CHECKLIST_FILE, Verdict, load_checklist, new_run_dir

HELP = "Run the validation suites (pytest), write the run folder and report, print the checklist; exit 1 when a gating check fails."

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="quick", help="TOML config file or a name in configs/ (default: quick)")
    parser.add_argument("--model", help="model folder (default: the embedded tiny Phi-3)")
    parser.add_argument("--provider", action="append", help="provider short name (cpu, dml, qnn, cuda, auto); repeat for several")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set thresholds.first_response_s=0.2")
    parser.add_argument("--out", help="run folder to write (default: reports/<run-id>)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML/PNG/CSV report")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: passed to pytest as is (e.g. -- -k latency)")


def run(args: argparse.Namespace) -> int:
    overrides = dict(parse_override(text) for text in args.overrides)
    load_config(args.config, overrides)  # a bad config is a one-line error here, not a pytest crash
    if not SUITES_DIR.is_dir():
        raise HarnessError(f"the suites folder {SUITES_DIR} is missing: install from a clone with pip install -e .")
    run_dir = Path(args.out) if args.out else new_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    status = _run_pytest(args, run_dir)
    verdicts = _checklist(run_dir)
    print(f"\nChecklist ({run_dir}):")
    print(format_table(_fold_unavailable(verdicts)))
    if not args.no_report:
        _report(run_dir)
    code = gate(verdicts)
    failed = [v for v in verdicts if v.verdict == "fail" and v.gating]
    for verdict in failed:
        print(f"FAIL {verdict.check} [{verdict.case}]: measured {verdict.measured} vs threshold "
              f"{verdict.comparison} {verdict.threshold} {verdict.unit}: {verdict.reason}", file=sys.stderr)
    if status == 130:
        print("interrupted: the run folder holds what was measured so far", file=sys.stderr)
        return 130
    if code == 0 and status not in (0, 5):
        print(f"the suites ended with pytest status {status} (errors outside the checklist): see the output above",
              file=sys.stderr)
        return 1
    return code


def _run_pytest(args: argparse.Namespace, run_dir: Path) -> int:
    command = [
        sys.executable, "-m", "pytest", str(SUITES_DIR), "-p", "no:cacheprovider",
        "--rootdir", str(SUITES_DIR.parent), "-v", "--tb=short", "-rs",
        "--config", args.config, "--results-dir", str(run_dir),
        "--benchmark-json", str(run_dir / "benchmark.json"), "--benchmark-columns=min,median,max,rounds",
    ]
    if args.model:
        command += ["--model", args.model]
    for provider in args.provider or []:
        command += ["--provider", provider]
    for text in args.overrides:
        command += ["--set", text]
    command += [a for a in args.pytest_args if a != "--"]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


def _checklist(run_dir: Path) -> list[Verdict]:
    """The suites' verdicts, plus a "skip: not run" line for any item no test judged."""
    verdicts = load_checklist(run_dir) if (run_dir / CHECKLIST_FILE).exists() else []
    judged = {v.check for v in verdicts}
    for check, title in CHECKS.items():
        if check not in judged:
            verdicts.append(Verdict(check, title, "skip", None, None, reason="not run (deselected or the run stopped early)"))
    return verdicts


def _fold_unavailable(verdicts: list[Verdict]) -> list[Verdict]:
    """One line for a provider whose every item skipped for the same reason (e.g. not installed)."""
    def provider(verdict: Verdict) -> str:
        return verdict.case.split("-", 1)[0]

    groups: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        groups.setdefault(provider(verdict), []).append(verdict)
    folded: list[Verdict] = []
    for verdict in verdicts:
        group = groups[provider(verdict)]
        reasons = {v.reason for v in group}
        if len(group) < len(CHECKS) or len(reasons) > 1 or any(v.verdict != "skip" for v in group):
            folded.append(verdict)
        elif verdict is group[0]:
            folded.append(Verdict("all", f"All {len(CHECKS)} items", "skip", None, None, case=verdict.case, reason=verdict.reason))
    return folded


def _report(run_dir: Path) -> None:
    from harness.report import build_report

    try:
        index = build_report(run_dir)
    except HarnessError as error:
        print(f"report not written: {error}", file=sys.stderr)
        return
    print(f"report: {index}")
