"""The harness's own HTTP target against `serve`: the same greedy text and token counts as the engine."""

from __future__ import annotations

from pathlib import Path

from fixtures_model import BuildFn

from harness.serve.server import RunningServer
from harness.serve.state import ServeOptions
from harness.targets.base import Request, TokenEvent, Usage
from harness.targets.engine import Engine
from harness.targets.http import HttpTarget


def test_http_target_through_serve_equals_the_engine(tiny_builds: BuildFn) -> None:
    model_dir: Path = tiny_builds()
    request = Request.chat("tell me about the sea", max_new_tokens=12)
    expected = Engine.load(model_dir).generate(request)
    with RunningServer(ServeOptions(model_dir=model_dir, port=0)) as server:
        target = HttpTarget(server.url)
        try:
            items = list(target.stream(request))
        finally:
            target.close()
    tokens = [item for item in items if isinstance(item, TokenEvent)]
    usage = items[-1]
    assert isinstance(usage, Usage) and usage.finish_reason == "length"
    assert (usage.prompt_tokens, usage.completion_tokens) == (len(expected.prompt_ids), 12) == (len(expected.prompt_ids), len(tokens))
    assert "".join(token.text for token in tokens) == expected.text
