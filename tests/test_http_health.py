"""Health conventions: /health first, then /v1/health, /v1/models, Ollama's GET /; the server's process by port."""

from __future__ import annotations

import os

import pytest
from http_calibration import scripted_server

from harness.suite.remote import listening_process, model_names, probe_health
from harness.targets.http_conn import parse_endpoint

CASES = {
    "llama": (True, "/health", "GET /health -> 200"),
    "loading": (False, "/health", "GET /health -> 503"),
    "models": (True, "/v1/models", "GET /v1/models -> 200"),
    "ollama": (True, "ollama /", "GET / -> 200"),
    "none": (None, "", "GET / -> 404"),
}


@pytest.mark.parametrize("style", list(CASES))
def test_health_names_what_was_tried_and_what_answered(style: str) -> None:
    loaded, convention, said = CASES[style]
    with scripted_server("--health", style) as server:
        health = probe_health(parse_endpoint(server.url), wait_s=0.2, poll_s=0.05)
    assert (health.model_loaded, health.convention) == (loaded, convention)
    assert said in health.detail
    if style != "llama":
        assert "GET /health -> " in health.detail  # the first try is always named


def test_no_server_is_no_verdict_with_the_reason() -> None:
    health = probe_health(parse_endpoint("http://127.0.0.1:9"), wait_s=0)
    assert health.model_loaded is None and "no answer" in health.detail


def test_serving_process_is_found_by_its_port_and_model_names_are_listed() -> None:
    with scripted_server() as server:
        endpoint = parse_endpoint(server.url)
        process, reason = listening_process(endpoint)
        assert reason == "" and process is not None and process.pid == server.process.pid != os.getpid()
        assert model_names(endpoint) == ["scripted"]


def test_a_server_on_another_machine_is_not_sampled() -> None:
    process, reason = listening_process(parse_endpoint("http://192.0.2.1:8000"))
    assert process is None and "not on this machine" in reason


def test_http_timeouts_come_from_the_config_and_reach_the_target(tmp_path) -> None:
    from harness.config import load_config
    from harness.suite.remote_target import RemoteOptions, connect

    config = load_config("quick", {"http.first_byte_s": 0.25, "http.total_s": 0.5, "http.health_wait_s": 0})
    with scripted_server() as server:
        remote = connect(RemoteOptions(server.url), _tiny_dir(), config.http)
        timeouts = remote.suite_target.target.timeouts
        remote.suite_target.target.close()
    assert (timeouts.first_byte_s, timeouts.total_s) == (0.25, 0.5)


def _tiny_dir():
    from harness.model.default_model import default_model_dir

    return default_model_dir()
