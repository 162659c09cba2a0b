"""The suites run on the session that showed a provider usable: the model is opened once, not twice."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import pytest

from harness.config import load_config
from harness.providers import make_probe_fn
from harness.suite.session import SuiteSession

# harness.providers exports a function named probe: the attribute is not the module
probe_module = importlib.import_module("harness.providers.probe")
session_module = importlib.import_module("harness.providers.session")


@pytest.fixture
def opened(monkeypatch) -> list[tuple[object, float]]:
    """Every ONNX Runtime session opened while the test runs, with the seconds it took."""
    sessions: list[tuple[object, float]] = []
    real = session_module.open_session

    def counting(*args, **kwargs):
        started = time.perf_counter()
        session = real(*args, **kwargs)
        sessions.append((session, time.perf_counter() - started))
        return session

    monkeypatch.setattr(probe_module, "open_session", counting)  # the probe's
    monkeypatch.setattr(session_module, "open_session", counting)  # create_session's
    return sessions


def test_the_suites_engine_runs_on_the_probe_session_and_counts_its_load_time(tiny_model_dir: Path, tmp_path: Path,
                                                                             opened) -> None:
    config = load_config("quick", {"matrix.providers": ["cpu"], "matrix.max_new_tokens": 4})
    (tmp_path / "run").mkdir()
    suite = SuiteSession(config, tiny_model_dir, tmp_path / "run", ["cpu"])
    engine = suite.engine("cpu")
    assert [session for session, _ in opened] == [engine.session]
    assert suite.evidence("cpu").load_s >= opened[0][1]  # "model loads" still times the whole load
    engine.close()


def test_a_probe_hands_its_session_over_once_and_only_when_asked_to_keep_it(tiny_model_dir: Path, opened) -> None:
    keeping = make_probe_fn(tiny_model_dir, keep_sessions=True)
    assert keeping("cpu").usable
    assert keeping.take_session("cpu") is opened[0][0]
    assert keeping.take_session("cpu") is None  # handed over: the cache does not keep it alive
    assert keeping("CPUExecutionProvider").usable and len(opened) == 1  # the answer stays cached
    plain = make_probe_fn(tiny_model_dir)
    assert plain("cpu").usable and plain.take_session("cpu") is None
    assert keeping("dml").status == "not_installed" and keeping.take_session("dml") is None
