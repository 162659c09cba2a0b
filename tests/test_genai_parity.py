"""Our greedy tokens equal onnxruntime-genai's on the same folder and the same input ids."""

from __future__ import annotations

import importlib.util

import pytest

from harness.model.default_model import default_model_dir
from harness.targets.engine import Engine
from harness.targets.base import Request, TokenEvent
from harness.targets.genai import GenaiTarget

# Found, not imported: importing onnxruntime-genai takes ~1 s, which every pytest-xdist worker
# would pay at collection; GenaiTarget imports it when a test here first makes one.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime_genai") is None,
                                reason="onnxruntime-genai not installed (pip install '.[cpu,genai]')")

PROMPTS = [
    [1, 32010, 450, 4996, 17354, 32007, 32001],
    [1, 32006, 900, 32007, 32010, 1234, 5678, 91, 32007, 32001],
]


def _tokens(target, ids: list[int], n: int) -> list[int]:
    events = target.stream(Request(prompt_ids=tuple(ids), max_new_tokens=n))
    return [e.token_id for e in events if isinstance(e, TokenEvent)]


@pytest.mark.parametrize("precision,layout", [("fp32", "cpu"), ("int4", "cpu"), ("fp16", "dml")])
def test_greedy_tokens_equal_genai(precision: str, layout: str) -> None:
    model_dir = default_model_dir(precision=precision, layout=layout)
    ours, theirs = Engine.load(model_dir), GenaiTarget(model_dir)
    for ids in PROMPTS:
        assert _tokens(ours, ids, 16) == _tokens(theirs, ids, 16)


def test_greedy_tokens_after_a_3900_token_prompt_equal_genai() -> None:
    # our engine feeds it in chunks of 256 tokens; genai in one Run
    model_dir = default_model_dir(precision="fp32", layout="cpu")
    prompt = [1, 32010] + [(i * 7919) % 30000 + 300 for i in range(3897)] + [32001]
    ours = Engine.load(model_dir)
    assert ours.prefill_chunk and len(prompt) > ours.prefill_chunk
    assert _tokens(ours, prompt, 8) == _tokens(GenaiTarget(model_dir), prompt, 8)
