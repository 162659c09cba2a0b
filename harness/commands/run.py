"""`phi3-harness run`: the validation suites under pytest, then the checklist table, the report, the gate."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.commands.matrix_flags import add_matrix_flags, flag_overrides
from harness.errors import HarnessError
from harness.model.default_model import resolve_model
from harness.model.folder import load_model_folder
from harness.measure.run_folder import claim_run_folder
from harness.providers import AUTO, EXECUTION_PROVIDERS, make_probe_fn, require_usable
from harness.suite.runner import SuiteOutcome, run_suites

if TYPE_CHECKING:
    from harness.config import Config

HELP = ("Run the validation suites (pytest), write the run folder and report, print the checklist; exit 1 when a "
        "gating check fails or a required provider has a gating check that was not measured.")

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
    parser.add_argument("--require", action="append", metavar="PROVIDER",
                        help="provider that must be proven: every applicable gating check measured, else exit 1; "
                             "repeat for several (default: gate.require, else the --provider ones, else at least one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set thresholds.first_response_s=0.2")
    add_matrix_flags(parser)
    parser.add_argument("--out", help="run folder to write (default: reports/<run-id>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="let --out be the folder of an earlier run: its files are deleted first")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML/PNG/CSV report")
    parser.add_argument("--json", action="store_true",
                        help="print the serving summary, verdicts and gate as one JSON object on stdout "
                             "(the suites' own output goes to stderr)")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: passed to pytest as is (e.g. -- -k latency)")


def run(args: argparse.Namespace) -> int:
    # imported here: the CLI imports every command module to build its parser
    from harness.config import load_config, parse_override
    from harness.measure.results import CHECKLIST_FILE, load_checklist, load_environment, new_run_dir

    args.overrides = [*args.overrides, *flag_overrides(args)]  # the suites get them as --set too
    overrides = dict(parse_override(text) for text in args.overrides)
    # A bad config, model folder or explicitly named provider is a one-line error here, not a pytest crash.
    config = load_config(args.config, overrides)
    _check_required(args.require or [])
    if args.model or not args.target_url:  # a remote server's model is its own business
        _check_model(args, config)
    if args.target_url:
        _check_target_url(args)
    else:
        _check_named_providers(args, config)
    if not SUITES_DIR.is_dir():
        raise HarnessError(f"the suites folder {SUITES_DIR} is missing: install from a clone with pip install -e .")
    run_dir = Path(args.out) if args.out else new_run_dir()
    from harness.report.terminal import COLOUR_ENV, UNDER_RUN_ENV, use_colour

    env = {COLOUR_ENV: "1" if not args.json and use_colour(sys.stdout) else "0", UNDER_RUN_ENV: "1",
           # the suites need pytest-benchmark alone (loaded with -p below); other installed plugins cost
           # start-up and can change how they run (pytest-xdist's -n, a plugin's own options)
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with claim_run_folder(run_dir, args.overwrite):  # held until the report is written: one run per folder
        # the suites print the summary and checklist and write the report; with --json all that goes to stderr
        outcome = run_suites(_pytest_command(args, run_dir), out=sys.stderr if args.json else sys.stdout,
                             progress=sys.stderr.isatty(), env=env)
    if outcome.errors:
        return 2  # the suites stopped on an error and said which (one line, already on stderr)
    if outcome.signal is not None:
        return _interrupted(run_dir, outcome)
    status = outcome.status
    if not (run_dir / CHECKLIST_FILE).exists():
        print(f"phi3-harness run: the suites stopped before judging anything (pytest status {status}): "
              "see the output above", file=sys.stderr)
        return 1
    verdicts = load_checklist(run_dir)
    for verdict in verdicts:
        if verdict.verdict == "fail" and verdict.gating:
            print(f"FAIL {verdict.check} [{verdict.case}]: measured {verdict.measured} vs threshold "
                  f"{verdict.comparison} {verdict.threshold} {verdict.unit}: {verdict.reason}", file=sys.stderr)
    from harness.judge.gate import gate  # after the suites, not before them

    required = load_environment(run_dir).get("required_providers") or []
    result = gate(verdicts, required)
    if result.code == 0 and status not in (0, 5):
        print(f"the suites ended with pytest status {status} (errors outside the checklist): see the output above",
              file=sys.stderr)
    _print_end(args, run_dir, verdicts, result, config, outcome)
    return result.code or (1 if status not in (0, 5) else 0)


def _print_end(args: argparse.Namespace, run_dir: Path, verdicts: list, result: Any, config: Config,
               outcome: SuiteOutcome) -> None:
    """The run ends on the gate's verdict: on stdout when it passes, on stderr (what the user must
    act on) when it fails; with --json, one JSON object on stdout instead."""
    import json

    from harness.report.run_end import as_json
    from harness.report.terminal import gate_line, use_colour

    if args.json:
        print(json.dumps(as_json(run_dir, verdicts, result.code, result.message, config.slo.limits(),
                                 outcome.status), default=str))
        return
    if outcome.stats:
        print(f"pytest: {outcome.stats}", flush=True)
    stream = sys.stderr if result.code else sys.stdout
    print(gate_line(result.code, result.message, use_colour(stream)), file=stream)


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


def _interrupted(run_dir: Path, outcome: SuiteOutcome) -> int:
    """One line on what the interrupted run left; exit 128 + the signal (130 for Ctrl-C, 143 for SIGTERM)."""
    from harness.measure.results import CHECKLIST_FILE, RESULTS_FILE, mark_interrupted

    name = signal.Signals(outcome.signal).name
    if outcome.forced:
        mark_interrupted(run_dir, name, forced=True)  # the child was killed before it could say so
    left = [n for n in (CHECKLIST_FILE, "index.html") if (run_dir / n).exists()]
    what = f"{' and '.join(left)} cover what was measured" if left else "nothing was judged"
    how = "stopped at once by a second signal" if outcome.forced else "unreached items are skipped as interrupted"
    if not (run_dir / RESULTS_FILE).exists():
        what, how = "nothing was measured yet", "run again to measure"
    print(f"phi3-harness run: interrupted by {name}: {run_dir}: {what}; {how}", file=sys.stderr)
    return 128 + outcome.signal


def _check_model(args: argparse.Namespace, config: Config) -> None:
    """The model folder loads, and every matrix prompt (with its new tokens) fits its template and context."""
    from harness.measure.prompts import check_matrix_fits
    from harness.model.graph_check import check_graph_file
    from harness.model.tokenizer import Phi3Tokenizer

    folder = load_model_folder(resolve_model(args.model))
    check_graph_file(folder.onnx_path, folder.config)
    limit = min(folder.config.context_length, folder.config.max_length)
    tokenizer = Phi3Tokenizer(folder.tokenizer_path, folder.config.bos_token_id)
    check_matrix_fits(tokenizer, config.matrix.prompt_lengths, config.matrix.max_new_tokens, limit)


def _check_required(names: list[str]) -> None:
    known = (*EXECUTION_PROVIDERS, "remote")
    for name in names:
        if name not in known:
            raise HarnessError(f"--require names unknown provider {name!r}: use {', '.join(known)}")


def _check_named_providers(args: argparse.Namespace, config: Config) -> None:
    """A provider named on the command line must be usable; the config's matrix may list absent ones (they skip)."""
    named = [name for name in args.provider or [] if name != AUTO]
    if not named:
        return
    probe = make_probe_fn(resolve_model(args.model), config.provider_settings)
    for name in named:
        require_usable(name, probe, config.fallback.disabled)


def _pytest_command(args: argparse.Namespace, run_dir: Path) -> list[str]:
    command = [
        # -q: one character per test (the relay drops those lines); skip reasons are in the checklist table
        sys.executable, "-m", "pytest", str(SUITES_DIR), "-p", "pytest_benchmark.plugin", "-p", "no:cacheprovider",
        "--no-header",
        "--rootdir", str(SUITES_DIR.parent), "-q", "--tb=short", "-rfE", "--benchmark-quiet",
        "--config", args.config, "--results-dir", str(run_dir),
        "--benchmark-json", str(run_dir / "benchmark.json"), "--benchmark-columns=min,median,max,rounds",
        # a run without latency cases is judged by the gate; pytest-benchmark's "nothing saved" is noise
        "-W", "ignore::pytest_benchmark.logger.PytestBenchmarkWarning",
    ]
    if args.model:
        command += ["--model", args.model]
    for provider in args.provider or []:
        command += ["--provider", provider]
    for provider in args.require or []:
        command += ["--require", provider]
    for option in ("target_url", "api_key", "model_name"):
        if getattr(args, option):
            command += [f"--{option.replace('_', '-')}", getattr(args, option)]
    for text in args.overrides:
        command += ["--set", text]
    if args.no_report:
        command.append("--no-report")
    command += [a for a in args.pytest_args if a != "--"]
    return command
