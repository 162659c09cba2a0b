"""pytest options shared by the harness's tests (tests/) and the validation suites (suites/)."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("phi3-harness")
    group.addoption("--model", default=None,
                    help="model folder, or a preset: tiny (the embedded default) or small (memory-bound int4)")
    group.addoption(
        "--provider", action="append", default=None,
        help="provider short name (cpu, dml, qnn, cuda, auto); repeat for several; default: the config's",
    )
    group.addoption(
        "--require", action="append", default=None,
        help="provider that must be proven (every applicable gating item measured); repeat for several; "
             "default: gate.require, else the --provider ones, else at least one",
    )
    group.addoption("--config", default=None, help="TOML config (default: configs/quick.toml for suites)")
    group.addoption("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key, e.g. --set thresholds.first_response_s=0.2")
    group.addoption("--results-dir", default=None, help="run folder to write (default: reports/<run-id>)")
    group.addoption("--target-url", default=None,
                    help="measure this OpenAI-compatible endpoint instead of the in-process engine")
    group.addoption("--api-key", default=None, help="bearer key for --target-url")
    group.addoption("--model-name", default=None, help="model name to send to --target-url (default: its /v1/models)")
    group.addoption("--no-report", action="store_true", help="write the run folder but no HTML/PNG/CSV report")


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The embedded tiny Phi-3 (fp32, cpu layout), built once into the cache."""
    from harness.model.default_model import default_model_dir

    return default_model_dir()
