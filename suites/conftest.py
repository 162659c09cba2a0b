"""Fixtures and parametrization of the validation suites: provider x prompt length x concurrency.

The matrix comes from the config (``--config``, default configs/quick.toml, then ``--set`` and
``--provider``). Checklist judgements (test_checklist.py) run after every measurement.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from harness.report.checklist_table import fold_unavailable
from harness.report.checklist_text import checklist_lines
from harness.report.terminal import UNDER_RUN_ENV, gate_line, use_colour
from harness.config import Config, load_config, parse_override
from harness.errors import HarnessError, one_line
from harness.providers import Choice
from harness.targets.engine import Engine
from harness.report import build_report
from harness.measure.results import new_run_dir
from harness.measure.run_folder import adopt_or_claim
from harness.suite.progress import ticker
from harness.suite.stopping import StopState
from harness.suite.remote_target import REMOTE, RemoteOptions
from harness.suite.targets import SuiteTarget
from harness.suite.session import ModelLoadFailed, ProviderUnavailable, SuiteSession

DEFAULT_CONFIG = "quick"
_CONFIG_KEY = pytest.StashKey[Config]()
_PROVIDERS_KEY = pytest.StashKey[list]()
_SESSION_KEY = pytest.StashKey[SuiteSession]()
_CHOICES_KEY = pytest.StashKey[list]()  # how each "auto" was resolved
_STOP_KEY = pytest.StashKey[StopState]()
_LOCK_KEY = pytest.StashKey[object]()
_TEST_ORDER: dict[str, int] = {}  # node id -> position, for the progress line (logstart gets no config)


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C / SIGTERM stop measuring but still judge and report (harness.suite.stopping)."""
    if config.getoption("dist", default="no") != "no" or hasattr(config, "workerinput"):
        # pytest-xdist workers would time cases side by side on one machine and share one run folder
        raise pytest.UsageError(
            "the suites time one case at a time, not on pytest-xdist workers: drop -n and --dist"
        )
    config.stash[_STOP_KEY] = StopState()
    config.stash[_STOP_KEY].install()


def pytest_collection_finish(session: pytest.Session) -> None:
    _TEST_ORDER.update({item.nodeid: index for index, item in enumerate(session.items)})


def pytest_runtest_logstart(nodeid: str, location: tuple) -> None:  # noqa: ARG001 - pytest's signature
    """The live progress line (harness/suite/progress.py): which test, how far through the run."""
    ticker().start_test(nodeid.rsplit("::", 1)[-1], _TEST_ORDER.get(nodeid, 0), len(_TEST_ORDER))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201 - a hook wrapper
    """A file error (disk full, read-only folder) stops the session: the next test would fail alike."""
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, OSError):
        item.session.shouldstop = item.config.stash[_STOP_KEY].file_error(call.excinfo.value)
    return report


def _config(pytest_config: pytest.Config) -> Config:
    if _CONFIG_KEY not in pytest_config.stash:
        overrides = dict(parse_override(text) for text in pytest_config.getoption("overrides"))
        providers = pytest_config.getoption("provider")
        if providers:
            overrides["matrix.providers"] = list(providers)
        try:
            config = load_config(pytest_config.getoption("config") or DEFAULT_CONFIG, overrides)
        except HarnessError as error:
            raise pytest.UsageError(str(error)) from None
        pytest_config.stash[_CONFIG_KEY] = config
    return pytest_config.stash[_CONFIG_KEY]


def _remote_options(pytest_config: pytest.Config) -> RemoteOptions | None:
    url = pytest_config.getoption("target_url")
    if not url:
        return None
    from harness.model.default_model import resolve_model

    model = pytest_config.getoption("model")
    return RemoteOptions(url, pytest_config.getoption("api_key"), pytest_config.getoption("model_name"),
                         resolve_model(model) if model else None)


def _providers(pytest_config: pytest.Config) -> list[str]:
    """Matrix providers; ``auto`` resolves through the fallback chain (recorded in the run folder).
    With --target-url the one axis value is "remote": the endpoint is measured, not a provider."""
    if _PROVIDERS_KEY not in pytest_config.stash and _remote_options(pytest_config) is not None:
        pytest_config.stash[_PROVIDERS_KEY] = [REMOTE]
    if _PROVIDERS_KEY not in pytest_config.stash:
        config = _config(pytest_config)
        names: list[str] = []
        for name in config.matrix.providers:
            if name == "auto":
                choice = _resolve_auto(pytest_config, config)
                pytest_config.stash.setdefault(_CHOICES_KEY, []).append(choice.to_dict())
                names.append(choice.chosen)
            elif name not in names:
                names.append(name)
        pytest_config.stash[_PROVIDERS_KEY] = names
    return pytest_config.stash[_PROVIDERS_KEY]


def _resolve_auto(pytest_config: pytest.Config, config: Config) -> Choice:
    from harness.measure.proof import verifier
    from harness.model.default_model import resolve_model
    from harness.providers import choose_provider, make_probe_fn

    model = resolve_model(pytest_config.getoption("model"))
    try:
        # auto takes a provider only after a profiled generation shows it runs enough of the graph
        choice = choose_provider("auto", config.fallback.chain, make_probe_fn(model, config.provider_settings),
                                 config.fallback.disabled, verifier(model, config.provider_settings),
                                 config.thresholds.provider_share_min)
    except HarnessError as error:
        raise pytest.UsageError(str(error)) from None
    return choice


def _required(pytest_config: pytest.Config) -> list[str]:
    """Providers the gate needs proven: --require, else gate.require, else the --provider ones
    (``auto`` as resolved); empty means at least one provider of the run."""
    named = pytest_config.getoption("require") or list(_config(pytest_config).gate.require)
    if named:
        return list(dict.fromkeys(named))
    if not pytest_config.getoption("provider"):
        return []
    chosen = [c["chosen"] for c in pytest_config.stash.get(_CHOICES_KEY, [])]
    explicit = [name for name in pytest_config.getoption("provider") if name != "auto"]
    return list(dict.fromkeys(explicit + chosen))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = _config(metafunc.config)
    providers = _providers(metafunc.config)
    names = metafunc.fixturenames
    if "arrival_rate" in names:
        cases = [(p, n, r) for p in providers for n in config.matrix.prompt_lengths for r in config.matrix.arrival_rates]
        metafunc.parametrize(("provider", "prompt_length", "arrival_rate"), cases,
                             ids=[f"{p}-p{n}-r{r:g}" for p, n, r in cases])
    elif "concurrency" in names:
        levels = [c for c in config.matrix.concurrency if c > 1]
        cases = [(p, n, c) for p in providers for n in config.matrix.prompt_lengths for c in levels]
        metafunc.parametrize(("provider", "prompt_length", "concurrency"), cases, ids=[f"{p}-p{n}-c{c}" for p, n, c in cases])
    elif "prompt_length" in names:
        cases = [(p, n) for p in providers for n in config.matrix.prompt_lengths]
        metafunc.parametrize(("provider", "prompt_length"), cases, ids=[f"{p}-p{n}-c1" for p, n in cases])
    elif "check" in names:
        from harness.judge.table import CHECKS

        cases = [(p, check) for p in providers for check in CHECKS]
        metafunc.parametrize(("provider", "check"), cases, ids=[f"{p}-{check}" for p, check in cases])
    elif "provider" in names:
        metafunc.parametrize("provider", providers)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Judge after measuring: checklist items go last, whatever order the files were collected in."""
    items.sort(key=lambda item: item.module.__name__.endswith("test_checklist"))


@pytest.fixture(scope="session")
def suite(request: pytest.FixtureRequest) -> SuiteSession:
    pytest_config = request.config
    if _SESSION_KEY not in pytest_config.stash:
        results_dir = pytest_config.getoption("results_dir")
        run_dir = Path(results_dir) if results_dir else new_run_dir()
        try:  # a folder of its own; under `phi3-harness run`, the parent's (it claimed and checked it)
            pytest_config.stash[_LOCK_KEY] = adopt_or_claim(run_dir)
        except (HarnessError, OSError) as error:
            pytest.exit(pytest_config.stash[_STOP_KEY].file_error(error) if isinstance(error, OSError) else str(error), 4)
        from harness.model.default_model import resolve_model

        session = SuiteSession(_config(pytest_config), resolve_model(pytest_config.getoption("model")), run_dir,
                               _providers(pytest_config), pytest_config.stash.get(_CHOICES_KEY, []),
                               remote=_remote_options(pytest_config), required=_required(pytest_config))
        pytest_config.stash[_SESSION_KEY] = session
        print(f"\nphi3-harness: writing results to {run_dir}")
    return pytest_config.stash[_SESSION_KEY]


@contextlib.contextmanager
def _usable(provider: str) -> Iterator[None]:
    """An unusable provider skips the test with the reason; a model that did not load on it fails it."""
    try:
        yield
    except ProviderUnavailable as unavailable:
        pytest.skip(str(unavailable))
    except ModelLoadFailed as failed:
        pytest.fail(f"the model did not load on {provider}: {failed}", pytrace=False)


@pytest.fixture()
def target(suite: SuiteSession, provider: str) -> SuiteTarget:
    """What the provider's cases measure (its engine, or the HTTP endpoint)."""
    with _usable(provider):
        return suite.target(provider)


@pytest.fixture()
def engine(suite: SuiteSession, provider: str) -> Engine:
    """The provider's in-process engine; an unusable provider skips the test with the reason."""
    if provider == REMOTE and suite.remote_options is not None:
        pytest.skip("needs the in-process engine (an ONNX Runtime profile); the HTTP target's server runs elsewhere")
    with _usable(provider):
        return suite.engine(provider)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop = session.config.stash[_STOP_KEY]
    suite_session = session.config.stash.get(_SESSION_KEY, None)
    if suite_session is not None:
        interrupted = stop.signal_name  # a file error stops the session too, but is no interrupt
        if interrupted is None and stop.error is None and exitstatus == pytest.ExitCode.INTERRUPTED:
            interrupted = "KeyboardInterrupt"  # raised by something other than our handler
        try:
            suite_session.finish(interrupted=interrupted)
        except OSError as error:  # the disk filled up: checklist.json keeps its last whole version
            stop.file_error(error)
        finally:
            suite_session.close()
        # a gate that fails on evidence (nothing measured for a required provider) fails plain pytest too
        if interrupted is None and suite_session.gate().code and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if stop.error is not None:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def pytest_unconfigure(config: pytest.Config) -> None:
    lock = config.stash.get(_LOCK_KEY, None)
    if lock is not None:
        lock.close()
    stop = config.stash.get(_STOP_KEY, None)  # None when pytest_configure refused the session
    if stop is not None:
        stop.uninstall()
        stop.report_error()  # last, so it is the one line on stderr


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's table: the checklist is the verdict
def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    """The checklist table and the report, as `phi3-harness run` shows them."""
    suite_session = config.stash.get(_SESSION_KEY, None)
    if suite_session is None:
        return
    write = terminalreporter.write_line
    _write_serving_summary(write, suite_session)
    write(" phi3-harness checklist ".center(100, "="))  # as wide as the summary block, whatever the pipe says
    for choice in suite_session.provider_choices:
        for passed in choice["passed_over"]:
            write(f"auto passed over {passed['provider']}: {passed['reason']}")
        write(f"auto chose {choice['chosen']}")
    colour = use_colour(sys.stdout)
    for line in checklist_lines(fold_unavailable(suite_session.verdicts()), colour):
        write(line)
    if os.environ.get(UNDER_RUN_ENV) != "1":  # under `run`, the gate line is run's last line instead
        result = suite_session.gate()
        write(gate_line(result.code, result.message, colour))
    write(f"run folder: {suite_session.run_dir}")
    if config.getoption("no_report"):
        return
    if config.stash[_STOP_KEY].error is not None:
        write("report not written: the run stopped on a file error (below)")
        return
    try:
        write(f"report: {build_report(suite_session.run_dir)}")
    except (HarnessError, OSError) as error:
        write(f"report not written: {one_line(error)}")


def _write_serving_summary(write, suite_session: SuiteSession) -> None:
    """Per target and provider: throughput and mean/p50/p99 latencies, read back from the run folder."""
    from harness.measure.results import load_records
    from harness.report.summary import summarize_run
    from harness.report.terminal import summary_lines

    try:
        records = load_records(suite_session.run_dir)
    except (HarnessError, OSError) as error:
        write(f"no serving summary: {one_line(error)}")
        return
    limits = suite_session.config.slo.limits()
    for summary in summarize_run(records, limits):
        for line in summary_lines(summary, limits):
            write(line)
