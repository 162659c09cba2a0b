"""The official `openai` client against `serve`: streaming with usage, whole replies, errors as APIError."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
from fixtures_model import BuildFn

from harness.serve.server import RunningServer
from harness.serve.state import ServeOptions

if TYPE_CHECKING:
    import openai as openai_types

KEY = "client-key"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def openai() -> ModuleType:
    """The client, imported by the tests that use it: at collection it would cost every pytest-xdist
    worker 0.6 s, most of which run none of these tests."""
    import openai

    return openai


@pytest.fixture(scope="module")
def model_dir(tiny_builds: BuildFn) -> Path:
    return tiny_builds()


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[RunningServer]:
    with RunningServer(ServeOptions(model_dir=model_dir, port=0, api_key=KEY, max_body_bytes=65536)) as running:
        yield running


def client_for(server: RunningServer, key: str = KEY) -> openai_types.OpenAI:
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=20)


def test_streaming_with_usage_matches_the_whole_reply(server: RunningServer) -> None:
    client = client_for(server)
    whole = client.chat.completions.create(model="phi3", messages=MESSAGES, max_tokens=10, temperature=0)
    chunks = list(client.chat.completions.create(model="phi3", messages=MESSAGES, max_tokens=10, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content and text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_models_list_through_the_client(server: RunningServer) -> None:
    assert [m.id for m in client_for(server).models.list()] == [server.state.model_name]


def test_bad_request_is_a_bad_request_error_with_the_param(server: RunningServer, openai: ModuleType) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(server).chat.completions.create(model="phi3", messages=MESSAGES, temperature=-1)
    assert caught.value.status_code == 400 and caught.value.param == "temperature"
    assert "temperature" in caught.value.message


def test_wrong_key_is_an_authentication_error(server: RunningServer, openai: ModuleType) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(server, key="wrong").chat.completions.create(model="phi3", messages=MESSAGES, max_tokens=1)
    assert caught.value.code == "invalid_api_key"


def test_body_over_the_cap_is_an_api_status_error_413(server: RunningServer, openai: ModuleType) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client_for(server).chat.completions.create(model="phi3", messages=[{"role": "user", "content": "x" * 70_000}])
    assert caught.value.status_code == 413 and caught.value.code == "request_too_large"


def test_over_context_prompt_in_a_stream_is_a_bad_request_error(server: RunningServer, openai: ModuleType) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(server).chat.completions.create(model="phi3", messages=[{"role": "user", "content": "w " * 5000}],
                                                   stream=True)
    assert caught.value.code == "context_length_exceeded"


def test_shutdown_mid_stream_reaches_the_client_as_an_api_error(model_dir: Path, openai: ModuleType) -> None:
    server = RunningServer(ServeOptions(model_dir=model_dir, port=0)).start()
    stopper = threading.Thread(target=server.stop)
    try:
        stream = client_for(server).chat.completions.create(model="phi3", messages=MESSAGES, max_tokens=3000, stream=True)
        with pytest.raises(openai.APIError, match="shutting down"):
            for index, _chunk in enumerate(stream):
                if index == 3:
                    stopper.start()
        stopper.join(15)
        assert not stopper.is_alive() and server.state.pool.recent[-1].outcome == "cancelled"
    finally:
        if not stopper.is_alive():
            server.stop()
