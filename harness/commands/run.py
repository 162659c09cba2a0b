"""`phi3-harness run`: the validation suites under pytest, then the checklist table, the report, the gate."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.model.default_model import resolve_model
from harness.model.folder import load_model_folder
from harness.providers import AUTO, make_probe_fn, require_usable

if TYPE_CHECKING:
    from harness.config import Config

HELP = "Run the validation suites (pytest), write the run folder and report, print the checklist; exit 1 when a gating check fails."

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="quick", help="TOML config file or a name in configs/ (default: quick)")
    parser.add_argument("--model", help="model folder, or a preset: tiny (the default) or small (memory-bound int4)")
    parser.add_argument("--provider", action="append", help="provider short name (cpu, dml, qnn, cuda, auto); repeat for several")
    parser.add_argument("--target-url", metavar="URL",
                        help="validate this OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000) instead of the "
                             "in-process engine; --model then names the folder the server runs")
    parser.add_argument("--api-key", help="bearer key for --target-url")
    parser.add_argument("--model-name", help="model name to send to --target-url (default: the first of its /v1/models)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set thresholds.first_response_s=0.2")
    parser.add_argument("--out", help="run folder to write (default: reports/<run-id>)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML/PNG/CSV report")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: passed to pytest as is (e.g. -- -k latency)")


def run(args: argparse.Namespace) -> int:
    # imported here: the CLI imports every command module to build its parser, and these pull in
    # pandas (~150 ms) that `generate` and `doctor` never need
    from harness.config import load_config, parse_override
    from harness.judge.checklist import gate
    from harness.measure.results import CHECKLIST_FILE, load_checklist, new_run_dir

    overrides = dict(parse_override(text) for text in args.overrides)
    # A bad config, model folder or explicitly named provider is a one-line error here, not a pytest crash.
    config = load_config(args.config, overrides)
    if args.model:
        load_model_folder(resolve_model(args.model))
    if args.target_url:
        _check_target_url(args)
    else:
        _check_named_providers(args, config)
    if not SUITES_DIR.is_dir():
        raise HarnessError(f"the suites folder {SUITES_DIR} is missing: install from a clone with pip install -e .")
    run_dir = Path(args.out) if args.out else new_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    status = _run_pytest(args, run_dir)  # the suites print the checklist table and write the report
    if not (run_dir / CHECKLIST_FILE).exists():
        print(f"the suites stopped before judging anything (pytest status {status}): see the output above",
              file=sys.stderr)
        return 130 if status == 130 else 1
    verdicts = load_checklist(run_dir)
    for verdict in verdicts:
        if verdict.verdict == "fail" and verdict.gating:
            print(f"FAIL {verdict.check} [{verdict.case}]: measured {verdict.measured} vs threshold "
                  f"{verdict.comparison} {verdict.threshold} {verdict.unit}: {verdict.reason}", file=sys.stderr)
    if status == 130:
        print(f"interrupted: {run_dir} holds what was measured so far", file=sys.stderr)
        return 130
    code = gate(verdicts)
    if code == 0 and status not in (0, 5):
        print(f"the suites ended with pytest status {status} (errors outside the checklist): see the output above",
              file=sys.stderr)
        return 1
    return code


def _check_target_url(args: argparse.Namespace) -> None:
    """The URL parses and something listens there; --provider belongs to the server, not to us."""
    import socket

    from harness.targets.http_conn import parse_endpoint

    if args.provider:
        raise HarnessError("--provider and --target-url do not go together: the server picks its provider "
                           "(start it with e.g. phi3-harness serve --provider dml)")
    endpoint = parse_endpoint(args.target_url)
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=5).close()
    except OSError as error:
        raise HarnessError(f"nothing answers at {endpoint.url} ({error.strerror or error}): start the server first, "
                           "e.g. phi3-harness serve --port 8000") from None


def _check_named_providers(args: argparse.Namespace, config: Config) -> None:
    """A provider named on the command line must be usable; the config's matrix may list absent ones (they skip)."""
    named = [name for name in args.provider or [] if name != AUTO]
    if not named:
        return
    from harness.model.default_model import default_model_dir

    probe = make_probe_fn(resolve_model(args.model) or default_model_dir(), config.provider_settings)
    for name in named:
        require_usable(name, probe, config.fallback.disabled)


def _run_pytest(args: argparse.Namespace, run_dir: Path) -> int:
    command = [
        sys.executable, "-m", "pytest", str(SUITES_DIR), "-p", "no:cacheprovider",
        "--rootdir", str(SUITES_DIR.parent), "-v", "--tb=short", "-rfE",  # skip reasons are in the checklist table
        "--config", args.config, "--results-dir", str(run_dir),
        "--benchmark-json", str(run_dir / "benchmark.json"), "--benchmark-columns=min,median,max,rounds",
    ]
    if args.model:
        command += ["--model", args.model]
    for provider in args.provider or []:
        command += ["--provider", provider]
    for option in ("target_url", "api_key", "model_name"):
        if getattr(args, option):
            command += [f"--{option.replace('_', '-')}", getattr(args, option)]
    for text in args.overrides:
        command += ["--set", text]
    if args.no_report:
        command.append("--no-report")
    command += [a for a in args.pytest_args if a != "--"]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
