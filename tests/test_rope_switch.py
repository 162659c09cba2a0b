"""LongRoPE graphs (Phi-3 128k, Phi-3.5, Phi-4-mini cpu/cuda builds) switch rotary caches above a sequence
length; the engine finds the switch in the graph and gives the tokens of an engine that never caches a
key across it (harness/model/rope_switch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.model.graph_io import graph_nodes
from harness.model.rope_switch import rope_switch_in, switch_length
from harness.targets.base import Request, TokenEvent
from harness.targets.engine import Engine
from longrope_model import make_longrope_folder

LOW_SWITCH = 40


@pytest.fixture(scope="module")
def low_switch_model(tiny_builds, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_longrope_folder(tiny_builds("fp32", "cpu"), tmp_path_factory.mktemp("longrope") / "m", LOW_SWITCH, 512)


def _prompt(length: int) -> tuple[int, ...]:
    return tuple([1, 32010] + [(i * 7919) % 30000 + 300 for i in range(length - 3)] + [32001])


def _tokens(engine: Engine, prompt: tuple[int, ...], new: int) -> list[int]:
    request = Request(prompt_ids=prompt, max_new_tokens=new, ignore_eos=True)
    return [item.token_id for item in engine.stream(request) if isinstance(item, TokenEvent)]


def _without_a_cache(engine: Engine, prompt: tuple[int, ...], new: int) -> list[int]:
    """Greedy tokens where each comes from a fresh one-Run prefill of the whole sequence so far: no key is
    ever reused, so every position is under the factors of the Run that produced the token."""
    sequence, out = list(prompt), []
    for _ in range(new):
        token = _tokens(engine, tuple(sequence), 1)[0]
        out.append(token)
        sequence.append(token)
    return out


def test_the_switch_is_read_from_the_graph_and_plain_graphs_have_none(low_switch_model, tiny_builds) -> None:
    assert switch_length(low_switch_model / "model.onnx") == LOW_SWITCH
    assert switch_length(tiny_builds("fp32", "cpu") / "model.onnx") is None
    assert switch_length(tiny_builds("fp16", "dml") / "model.onnx") is None


def test_an_if_that_feeds_no_rotary_node_is_not_a_switch(low_switch_model) -> None:
    nodes, integers = graph_nodes((low_switch_model / "model.onnx").read_bytes())
    renamed = [n if n.op_type != "GroupQueryAttention" else type(n)("MatMul", n.inputs, n.outputs, None) for n in nodes]
    assert rope_switch_in(nodes, integers) == LOW_SWITCH
    assert rope_switch_in(renamed, integers) is None


@pytest.mark.parametrize("kv", ["shared", "growing"])
@pytest.mark.parametrize("prompt_length", [LOW_SWITCH - 4, LOW_SWITCH, LOW_SWITCH + 30])
def test_tokens_across_the_switch_equal_decoding_without_a_cache(low_switch_model, kv: str, prompt_length: int) -> None:
    # chunks of 16 make the longest prompt cross the switch inside the prefill too
    engine = Engine.load(low_switch_model, kv_strategy=kv, prefill_chunk=16)
    oracle = Engine.load(low_switch_model, prefill_chunk=0)
    prompt = _prompt(prompt_length)
    assert _tokens(engine, prompt, 12) == _without_a_cache(oracle, prompt, 12)


def test_without_the_switch_rule_the_cached_tokens_would_differ(low_switch_model) -> None:
    # the test above can fail: an engine that ignores the switch gives other tokens on this model
    engine = Engine.load(low_switch_model, prefill_chunk=16)
    engine.rope_switch = None
    oracle = Engine.load(low_switch_model, prefill_chunk=0)
    prompt = _prompt(LOW_SWITCH - 4)
    assert _tokens(engine, prompt, 12) != _without_a_cache(oracle, prompt, 12)


def test_greedy_tokens_across_genais_4097_switch_equal_onnxruntime_genai(tiny_builds, tmp_path: Path) -> None:
    genai = pytest.importorskip("onnxruntime_genai", reason="the genai extra is not installed")
    assert genai  # onnxruntime-genai rewinds phi3 models at sequence length 4097 (generators.cpp)
    from harness.targets.genai import GenaiTarget

    folder = make_longrope_folder(tiny_builds("fp32", "cpu"), tmp_path / "m", 4096, 4200)
    engine, reference = Engine.load(folder), GenaiTarget(folder)
    prompt = _prompt(4093)  # crosses while generating (a prefill past the switch: the oracle test above)
    expected = [e.token_id for e in reference.stream(Request(prompt_ids=prompt, max_new_tokens=8, ignore_eos=True))
                if isinstance(e, TokenEvent)]
    assert _tokens(engine, prompt, 8) == expected


def test_doctor_names_the_switch_of_a_longrope_folder_and_nothing_for_a_plain_one(
        low_switch_model, tiny_builds, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.providers.doctor import diagnose

    assert diagnose(low_switch_model, "cpu")["model"]["rope_switch"] == LOW_SWITCH
    assert diagnose(tiny_builds("fp32", "cpu"), "cpu")["model"]["rope_switch"] is None
    assert cli.main(["doctor", "--model", str(low_switch_model), "--provider", "cpu"]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert f"LongRoPE: rotary caches switch above {LOW_SWITCH} tokens" in printed
