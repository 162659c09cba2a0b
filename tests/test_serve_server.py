"""`serve` as a server: loading, keys, body cap, concurrency, disconnects, sockets. Real sockets on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fixtures_model import BuildFn
from serve_client import chat, connect, request

from harness.serve.server import RunningServer
from harness.serve.state import ModelState, ServeOptions
from harness.targets.base import Request

KEY = "test-key-123"


@pytest.fixture(scope="module")
def model_dir(tiny_builds: BuildFn) -> Path:
    return tiny_builds()


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[RunningServer]:
    with RunningServer(ServeOptions(model_dir=model_dir, port=0)) as running:
        yield running


@pytest.fixture(scope="module")
def keyed_server(model_dir: Path) -> Iterator[RunningServer]:
    with RunningServer(ServeOptions(model_dir=model_dir, port=0, api_key=KEY, max_body_bytes=4096)) as running:
        yield running


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_health_is_503_with_an_error_body_while_loading_then_200(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real_load = ModelState.load

    def held_load(state: ModelState) -> None:  # the load waits for the test: "loading" lasts as long as needed
        gate.wait(30)
        real_load(state)

    monkeypatch.setattr(ModelState, "load", held_load)
    server = RunningServer(ServeOptions(model_dir=model_dir, port=0)).start(wait=False)
    try:
        reply = request(server.url, "GET", "/health")
        assert reply.status == 503 and reply.json()["error"]["code"] == "model_loading"
        assert chat(server.url).status == 503
        assert request(server.url, "GET", "/v1/models").status == 503
        gate.set()
        assert server.state.loaded.wait(30)
        assert request(server.url, "GET", "/health").json()["status"] == "ok"
    finally:
        gate.set()
        server.stop()


def test_a_model_that_does_not_load_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    server = RunningServer(ServeOptions(model_dir=tmp_path, port=0)).start()
    try:
        assert server.state.status == "failed" and str(tmp_path) in (server.state.error or "")
        assert wait_until(lambda: not server._thread.is_alive())
    finally:
        server.stop()


def test_api_key_guards_v1_but_not_health(keyed_server: RunningServer) -> None:
    url = keyed_server.url
    assert request(url, "GET", "/health").status == 200
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": KEY}):
        reply = chat(url, max_tokens=1, headers=headers)
        assert reply.status == 401 and reply.json()["error"]["code"] == "invalid_api_key"
    assert request(url, "GET", "/v1/models").status == 401
    assert chat(url, max_tokens=1, headers={"authorization": f"Bearer {KEY}"}).status == 200


def test_body_over_the_cap_is_413_declared_or_chunked(keyed_server: RunningServer) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    assert chat(keyed_server.url, "x" * 5000, headers=auth).status == 413
    body = json.dumps({"messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    connection = connect(keyed_server.url)
    try:  # no Content-Length: the cap is enforced while reading
        connection.request("POST", "/v1/chat/completions", body=iter([body[:3000], body[3000:]]),
                           headers={**auth, "content-type": "application/json"}, encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413 and json.loads(response.read())["error"]["code"] == "request_too_large"
    finally:
        connection.close()


def test_concurrent_requests_overlap_and_each_equals_its_single_stream_reply(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = [f"prompt number {i} about {'abcdefgh'[i]}" for i in range(8)]

    def reply(prompt: str) -> str:
        return chat(server.url, prompt, max_tokens=24, temperature=0).json()["choices"][0]["message"]["content"]

    alone = [reply(p) for p in prompts]
    assert len(set(alone)) == len(prompts)  # distinct prompts, distinct answers: cross-talk would show
    engine = server.state.engine
    inside = threading.Barrier(len(prompts))
    real_stream = engine.stream

    def stream_after_all_arrive(request):  # proof of overlap: no generation starts until 8 run at once
        inside.wait(20)
        yield from real_stream(request)

    monkeypatch.setattr(engine, "stream", stream_after_all_arrive)
    together: list[str | None] = [None] * len(prompts)
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(i, reply(prompts[i]))) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert together == alone


def _outcome_with(server: RunningServer, max_new_tokens: int):
    assert wait_until(lambda: server.state.pool.active == 0)
    return next(o for o in server.state.pool.recent if o.max_new_tokens == max_new_tokens)


def test_client_disconnect_mid_stream_stops_the_generation_early(server: RunningServer) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "go on"}], "stream": True, "max_tokens": 2999}).encode()
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(body), body))
        received = b""
        while received.count(b'"content":"') < 4:  # the role chunk's content is "", so 3 tokens
            received += sock.recv(65536)
    outcome = _outcome_with(server, 2999)
    assert outcome.outcome == "cancelled" and outcome.generated < 2999


def test_client_disconnect_while_waiting_for_a_whole_reply_stops_it(server: RunningServer) -> None:
    connection = connect(server.url)
    connection.request("POST", "/v1/chat/completions", headers={"content-type": "application/json"},
                       body=json.dumps({"messages": [{"role": "user", "content": "go"}], "max_tokens": 2998}))
    # generating, not only in flight: a request gone before a worker took it ends as cancelled with
    # no token budget (max_new_tokens 0), which a loaded machine made this test find instead
    assert wait_until(lambda: server.state.pool.active == 1 and server.state.pool.kv.reserved_tokens > 0)
    connection.close()
    outcome = _outcome_with(server, 2998)
    assert outcome.outcome == "cancelled" and outcome.generated < 2998


def test_eos_ends_with_stop_and_ignore_eos_keeps_generating(model_dir: Path) -> None:
    with RunningServer(ServeOptions(model_dir=model_dir, port=0)) as server:
        # the tiny model never emits EOS on its own: make its first greedy token count as one
        engine = server.state.engine
        engine._eos = frozenset(engine.generate(Request.chat("hi", max_new_tokens=1)).output_ids)
        stopped = chat(server.url, "hi", max_tokens=8, temperature=0).json()
        ignored = chat(server.url, "hi", max_tokens=8, temperature=0, ignore_eos=True).json()
    assert stopped["choices"][0]["finish_reason"] == "stop" and stopped["usage"]["completion_tokens"] == 1
    assert stopped["choices"][0]["message"]["content"] == ""
    assert ignored["choices"][0]["finish_reason"] == "length" and ignored["usage"]["completion_tokens"] == 8


@pytest.mark.skipif(not hasattr(socket, "TCP_NODELAY"), reason="no TCP_NODELAY on this platform")
def test_accepted_connections_have_tcp_nodelay(server: RunningServer) -> None:
    connection = connect(server.url)
    try:
        connection.request("GET", "/health")
        connection.getresponse().read()  # keep-alive: the server side stays open
        client_port = connection.sock.getsockname()[1]
        server_side = [c for c in psutil.Process().net_connections(kind="tcp")
                       if c.raddr and c.raddr.port == client_port and c.laddr.port == int(server.url.rsplit(":", 1)[1])]
        if not server_side or server_side[0].fd < 0:
            pytest.skip("this platform does not say which descriptor holds a connection")
        probe = socket.socket(fileno=os.dup(server_side[0].fd))
        try:
            assert probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            probe.close()
    finally:
        connection.close()


def test_listening_on_a_port_in_use_is_a_one_line_error(server: RunningServer) -> None:
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="pick another --port"):
        RunningServer(ServeOptions(port=int(server.url.rsplit(":", 1)[1])))


def test_http_connection_reuse_keeps_one_socket(server: RunningServer) -> None:
    connection: http.client.HTTPConnection = connect(server.url)
    try:
        ports = set()
        for _ in range(3):
            connection.request("GET", "/health")
            connection.getresponse().read()
            ports.add(connection.sock.getsockname()[1])
        assert len(ports) == 1
    finally:
        connection.close()


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> bool:
    return not any(record.exc_info or "Traceback" in record.getMessage() for record in caplog.records)


def test_client_gone_while_sending_its_body_leaves_no_traceback(server: RunningServer,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"messages"')
        time.sleep(0.05)
    assert request(server.url, "GET", "/health").status == 200  # serves the next request
    # the server notices the hang-up on its own time: give a traceback, if any, the time to appear
    assert not wait_until(lambda: not no_tracebacks(caplog), timeout_s=0.3)


def test_an_engine_failure_mid_stream_is_an_error_event_and_one_log_line(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = server.state.engine
    real_stream = engine.stream

    def failing_stream(request):
        for index, item in enumerate(real_stream(request)):
            if index == 2:
                raise RuntimeError("device lost\nsecond line")
            yield item

    monkeypatch.setattr(engine, "stream", failing_stream)
    streamed = chat(server.url, max_tokens=10, stream=True)
    whole = chat(server.url, max_tokens=10)
    events = streamed.events()
    assert streamed.status == 200 and "[DONE]" not in events
    assert events[-1]["error"]["type"] == "server_error" and "RuntimeError" in events[-1]["error"]["message"]
    assert whole.status == 500 and whole.json()["error"]["type"] == "server_error"
    lines = [r.getMessage() for r in caplog.records if r.name == "harness.serve"]
    assert lines.count("generation failed: RuntimeError: device lost") == 2 and no_tracebacks(caplog)


def test_a_bug_in_the_app_is_a_json_500_and_one_log_line(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import harness.serve.app as app_module

    def broken(body: bytes):
        raise KeyError("oops")

    monkeypatch.setattr(app_module, "parse_chat_request", broken)
    reply = chat(server.url)
    assert reply.status == 500 and "KeyError" in reply.json()["error"]["message"]

    def served_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "harness.serve"]

    # the 500 goes out before the server logs the failure: wait for the line, then check it is the only one
    assert wait_until(lambda: bool(served_lines()), timeout_s=5)
    assert served_lines() == ["POST /v1/chat/completions failed: KeyError: 'oops'"]
    assert no_tracebacks(caplog)
