"""`serve` on a real socket (127.0.0.1, ephemeral port) over the tiny model: what each route answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_model import BuildFn
from serve_client import chat, request, streamed_text

from harness.serve.server import RunningServer
from harness.serve.state import ServeOptions
from harness.targets.base import Request
from harness.targets.engine import Engine


@pytest.fixture(scope="module")
def model_dir(tiny_builds: BuildFn) -> Path:
    return tiny_builds()


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[RunningServer]:
    with RunningServer(ServeOptions(model_dir=model_dir, port=0, model_name="phi3-test")) as running:
        yield running


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Engine:
    return Engine.load(model_dir)


def test_health_names_the_model_and_the_provider_actually_executing(server: RunningServer) -> None:
    reply = request(server.url, "GET", "/health")
    body = reply.json()
    assert reply.status == 200 and body["status"] == "ok"
    assert body["model"] == "phi3-test" and body["provider"] == "cpu"
    assert body["execution_providers"][0] == "CPUExecutionProvider"
    assert body["context_length"] == 4096 and body["active_requests"] == 0
    assert body["kv_budget_tokens"] > 4096 and body["kv_reserved_tokens"] == 0  # the tiny model's KV is small


def test_models_lists_the_one_served_model(server: RunningServer) -> None:
    body = request(server.url, "GET", "/v1/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["phi3-test"]


def test_greedy_reply_equals_the_engines_greedy_tokens(server: RunningServer, engine: Engine) -> None:
    reply = chat(server.url, "tell me a story", max_tokens=12, temperature=0)
    body = reply.json()
    expected = engine.generate(Request.chat("tell me a story", max_new_tokens=12))
    assert reply.status == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": expected.text}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": len(expected.prompt_ids), "completion_tokens": 12,
                             "total_tokens": len(expected.prompt_ids) + 12}
    assert body["model"] == "phi3-test" and body["id"].startswith("chatcmpl-")


def test_stream_is_role_chunk_content_finish_usage_then_done(server: RunningServer, engine: Engine) -> None:
    reply = chat(server.url, "tell me a story", max_tokens=12, temperature=0, stream=True,
                 stream_options={"include_usage": True})
    events = reply.events()
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-1] == "[DONE]"
    usage_chunk, finish_chunk, content = events[-2], events[-3], events[1:-3]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 12
    assert finish_chunk["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "length"}
    assert all(e["choices"][0]["delta"]["content"] and e["usage"] is None for e in content)
    expected = engine.generate(Request.chat("tell me a story", max_new_tokens=12))
    assert streamed_text(events) == expected.text
    assert usage_chunk["usage"]["prompt_tokens"] == len(expected.prompt_ids)
    assert {e["id"] for e in events[:-1]} == {events[0]["id"]}


def test_stream_without_include_usage_has_no_usage_anywhere(server: RunningServer) -> None:
    events = chat(server.url, max_tokens=3, stream=True).events()
    assert events[-1] == "[DONE]" and all("usage" not in e for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_continuous_usage_puts_the_running_token_count_on_every_chunk(server: RunningServer) -> None:
    events = chat(server.url, max_tokens=6, temperature=0, stream=True,
                  stream_options={"include_usage": True, "continuous_usage_stats": True}).events()
    content = [e for e in events[1:-2] if e["choices"][0]["delta"].get("content")]
    running = [e["usage"]["completion_tokens"] for e in content]
    assert running == sorted(running) and running[-1] == 6 and len(running) == 6  # one token per chunk here
    assert events[0]["usage"]["completion_tokens"] == 0
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 6
    assert {e["usage"]["prompt_tokens"] for e in events[:-1]} == {events[-2]["usage"]["prompt_tokens"]}


def test_stop_string_ends_the_reply_before_it(server: RunningServer) -> None:
    full = chat(server.url, "a story", max_tokens=20, temperature=0).json()["choices"][0]["message"]["content"]
    words = full.split(" ")
    stop = " " + words[3]  # a string the greedy reply is known to contain
    for stream in (False, True):
        reply = chat(server.url, "a story", max_tokens=20, temperature=0, stop=[stop], stream=stream,
                     stream_options={"include_usage": True} if stream else None)
        if stream:
            events = reply.events()
            text, finish, usage = streamed_text(events), events[-3]["choices"][0]["finish_reason"], events[-2]["usage"]
        else:
            body = reply.json()
            text, finish, usage = body["choices"][0]["message"]["content"], body["choices"][0]["finish_reason"], body["usage"]
        assert text == full[: full.index(stop)] and finish == "stop"
        assert usage["completion_tokens"] < 20


def test_seed_repeats_a_sampled_reply_and_another_seed_differs(server: RunningServer) -> None:
    def sampled(seed: int) -> str:
        return chat(server.url, "x", max_tokens=16, temperature=1.0, top_p=0.9, seed=seed).json()["choices"][0]["message"]["content"]

    assert sampled(7) == sampled(7)
    assert sampled(7) != sampled(8)


def test_max_tokens_is_capped_by_the_context(server: RunningServer, engine: Engine) -> None:
    per_word = len(engine.prompt_ids(Request.chat("word " * 101))) - len(engine.prompt_ids(Request.chat("word " * 100)))
    prompt = "word " * (4000 // per_word)  # a prompt that leaves under 100 tokens of room
    prompt_tokens = len(engine.prompt_ids(Request.chat(prompt)))
    assert 3900 < prompt_tokens < 4096
    body = chat(server.url, prompt, max_tokens=100_000, temperature=0).json()
    assert body["usage"]["completion_tokens"] == 4096 - prompt_tokens
    assert body["choices"][0]["finish_reason"] == "length"


def test_prompt_over_the_context_is_a_400_before_any_stream(server: RunningServer) -> None:
    for stream in (False, True):
        reply = chat(server.url, "word " * 5000, stream=stream)
        error = reply.json()["error"]
        assert reply.status == 400 and reply.headers["content-type"] == "application/json"
        assert error["code"] == "context_length_exceeded" and "4096" in error["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "invalid_json"), (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}', "invalid_value")],
)
def test_malformed_json_and_bad_fields_are_400_with_an_openai_error(server: RunningServer, body: bytes, code: str) -> None:
    reply = request(server.url, "POST", "/v1/chat/completions", body)
    assert reply.status == 400 and reply.json()["error"]["code"] == code


def test_unknown_route_and_wrong_method_are_json_errors(server: RunningServer) -> None:
    assert request(server.url, "GET", "/v2/nothing").json()["error"]["type"] == "not_found_error"
    reply = request(server.url, "GET", "/v1/chat/completions")
    assert reply.status == 405 and "error" in reply.json()


def test_user_text_that_looks_like_control_tokens_stays_text(server: RunningServer) -> None:
    def prompt_tokens(content: str) -> int:
        return chat(server.url, content, max_tokens=1).json()["usage"]["prompt_tokens"]

    # as the control token 32007, "<|end|>" would add exactly one token; as text it takes several
    assert prompt_tokens("x<|end|>") - prompt_tokens("x") > 1
