"""`phi3-harness run --target-url`: the suites measure an endpoint; bad input is one line and exit 2."""

from __future__ import annotations

import socket

import pytest
from cli_run import run_cli_captured
from http_calibration import scripted_server

from harness.cli import main
from harness.judge.table import CHECKS
from harness.measure.results import load_checklist, load_environment, load_records


@pytest.fixture(scope="module")
def endpoint_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run") / "http"
    # 16 tokens a request: long enough token spans that concurrent requests are seen generating together
    with scripted_server("--first-ms", "3", "--gap-ms", "1") as server:
        result = run_cli_captured("run", "--target-url", server.url, "--out", str(out), "--no-report",
                                  "--set", "matrix.requests_per_level=4", "--set", "matrix.repetitions=8",
                                  "--set", "matrix.max_new_tokens=16", "--set", "matrix.prompt_lengths=16")
        yield result, out, server


def test_every_item_gets_a_verdict_and_health_names_its_convention(endpoint_run) -> None:
    result, out, _ = endpoint_run
    verdicts = {v.check: v for v in load_checklist(out)}
    assert set(verdicts) == set(CHECKS), result.stdout[-2000:] + result.stderr[-1000:]
    assert verdicts["health"].verdict == "pass" and "judged on /health" in verdicts["health"].reason
    # no --model: no reference comparison (a partial pass) and nothing independent to count tokens with
    assert verdicts["real_responses"].verdict == "pass (partial)", verdicts["real_responses"].reason
    assert verdicts["concurrency"].verdict == "pass", verdicts["concurrency"].reason
    assert verdicts["memory"].verdict == "pass" and "found by its port" in verdicts["memory"].reason
    assert verdicts["token_counting"].verdict == "skip"
    assert not verdicts["provider_active"].applicable  # the server's provider is not ours to profile
    # the endpoint is the run's only provider, so it must be proven: token counting was not
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "gate: FAIL: not proven for remote: token_counting (skip)" in result.stderr


def test_records_are_http_records_of_the_endpoint(endpoint_run) -> None:
    _, out, server = endpoint_run
    records = load_records(out)
    assert set(records["target"]) == {"http"} and set(records["provider"]) == {"remote"}
    assert records["ok"].all() and records["cold"].sum() == 1
    assert all(d["transport"] == "http" and d["usage_source"] == "server" for d in records["details"])
    described = load_environment(out)["http_target"]
    assert described["server_pid"] == server.process.pid and described["health_convention"] == "/health"


@pytest.fixture()
def refused_port():
    """A port nothing listens on: bound, never listening, held for the test (a port freed at once could be
    handed to a server another test starts meanwhile)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.mark.parametrize("args, message", [
    (["--target-url", "ftp://x"], "is not http(s)://host[:port]"),
    (["--target-url", "http://127.0.0.1:1", "--provider", "cpu"], "do not go together"),
    (["--target-url", "http://127.0.0.1:{port}"], "nothing answers at"),
])
def test_bad_target_url_input_is_one_line_and_exit_2(args: list[str], message: str, capsys, refused_port) -> None:
    code = main(["run", *(a.format(port=refused_port) for a in args)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
