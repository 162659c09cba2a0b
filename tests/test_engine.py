"""The engine generates what an independent float64 forward pass says, on every path it has."""

from __future__ import annotations

import dataclasses
import functools
import threading
from pathlib import Path

import pytest
from phi3_reference import reference_greedy

from harness.errors import HarnessError
from harness.model.default_model import default_model_dir
from harness.model.folder import load_model_folder
from harness.providers import ProviderSettings, create_session
from harness.targets.engine import Engine
from harness.targets.base import Request, TokenEvent, Usage

PROMPT = [1, 32010, 450, 4996, 17354, 1701, 29916, 32007, 32001]  # <s><|user|> ... <|end|><|assistant|>


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Engine:
    return Engine.load(tiny_model_dir)


def _every_position_engine(model_dir: Path, **options: object) -> Engine:
    """An engine on the folder's graph as it is (logits for every position), not its last-position edit."""
    session = create_session(load_model_folder(model_dir).onnx_path, ProviderSettings())
    engine = Engine.load(model_dir, session=session, **options)
    assert not engine.last_logits_only
    return engine


def _greedy(engine: Engine, ids: list[int], n: int = 12) -> list[int]:
    return engine.generate(Request(prompt_ids=tuple(ids), max_new_tokens=n)).output_ids


@pytest.mark.parametrize("strategy", ["shared", "growing"])
def test_greedy_tokens_equal_the_numpy_reference(tiny_model_dir: Path, strategy: str) -> None:
    engine = Engine.load(tiny_model_dir, kv_strategy=strategy)
    assert _greedy(engine, PROMPT) == _reference(tiny_model_dir, tuple(PROMPT), 12)


@pytest.mark.parametrize("precision,layout", [("fp16", "dml"), ("int4", "cpu"), ("fp16", "cpu"), ("int4", "dml")])
def test_both_kv_strategies_give_identical_tokens(precision: str, layout: str) -> None:
    model_dir = default_model_dir(precision=precision, layout=layout)
    shared = Engine.load(model_dir, kv_strategy="shared")
    growing = Engine.load(model_dir, kv_strategy="growing")
    assert shared.kv_strategy == "shared" and growing.kv_strategy == "growing"
    assert _greedy(shared, PROMPT, 16) == _greedy(growing, PROMPT, 16)


def test_dml_layout_feeds_position_ids_and_keeps_fp16_kv() -> None:
    engine = Engine.load(default_model_dir(precision="fp16", layout="dml"))
    assert engine.config.names.position_ids == "position_ids"
    assert engine._kv_dtype.itemsize == 2
    assert len(_greedy(engine, PROMPT, 8)) == 8


def test_dml_layout_greedy_follows_the_reference(tiny_model_dir: Path) -> None:
    # fp16 rounding may flip a near-tie late in a sequence; the first tokens must agree.
    model_dir = default_model_dir(precision="fp16", layout="dml")
    engine = Engine.load(model_dir)
    assert _greedy(engine, PROMPT, 4) == reference_greedy(model_dir, PROMPT, 4)


def test_stream_yields_timestamped_tokens_then_usage(engine: Engine) -> None:
    items = list(engine.stream(Request(prompt_ids=tuple(PROMPT), max_new_tokens=6)))
    tokens, usage = items[:-1], items[-1]
    assert all(isinstance(t, TokenEvent) for t in tokens) and isinstance(usage, Usage)
    assert usage.prompt_tokens == len(PROMPT) and usage.completion_tokens == len(tokens) == 6
    assert usage.finish_reason == "length"
    stamps = [t.t_ns for t in tokens]
    assert stamps == sorted(stamps)
    assert "".join(t.text for t in tokens) == engine.tokenizer.decode([t.token_id for t in tokens])


def test_stops_at_an_eos_id(engine: Engine) -> None:
    first_three = _greedy(engine, PROMPT, 3)
    config = dataclasses.replace(engine.config, eos_token_ids=(first_three[2],))
    stopping = Engine(dataclasses.replace(engine.folder, config=config), engine.session, engine.settings)
    result = stopping.generate(Request(prompt_ids=tuple(PROMPT), max_new_tokens=10))
    assert result.output_ids == first_three and result.finish_reason == "stop"


def test_chat_request_renders_the_template_with_bos(engine: Engine) -> None:
    ids = engine.prompt_ids(Request.chat("Hello"))
    assert ids[:2] == [1, 32010] and 32001 in ids[-3:]  # Llama-style tokenizers may put "▁" before "\n"
    assert engine.tokenizer.id_to_token(ids[-1]) == "<0x0A>"  # the newline after <|assistant|>


def test_prompt_longer_than_the_context_is_a_clear_error(engine: Engine) -> None:
    too_long = tuple([450] * engine.config.context_length)
    with pytest.raises(HarnessError, match="context is 4096"):
        list(engine.stream(Request(prompt_ids=too_long)))


@pytest.fixture(scope="module")
def near_the_context(tiny_model_dir: Path) -> tuple[Engine, list[int]]:
    """A fresh engine after one generation asking for 50 tokens after a prompt 3 short of the
    context: the two tests below read it (its prefill, 4093 tokens, is most of their cost). On the
    graph as it is, whose every-position logits are what the chunks bound."""
    engine = _every_position_engine(tiny_model_dir)
    prompt = tuple([1] + [(i * 7919) % 30000 + 300 for i in range(engine.config.context_length - 4)])
    return engine, engine.generate(Request(prompt_ids=prompt, max_new_tokens=50)).output_ids


def test_generation_is_capped_at_the_context(near_the_context: tuple[Engine, list[int]]) -> None:
    _, output_ids = near_the_context
    assert len(output_ids) <= 3


def test_seeded_sampling_repeats_and_seeds_differ(engine: Engine) -> None:
    def sample(seed: int) -> list[int]:
        request = Request(prompt_ids=tuple(PROMPT), max_new_tokens=12, greedy=False, temperature=1.5, seed=seed)
        return engine.generate(request).output_ids

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_top_k_one_is_greedy(engine: Engine) -> None:
    request = Request(prompt_ids=tuple(PROMPT), max_new_tokens=8, greedy=False, temperature=0.7, top_k=1, seed=3)
    assert engine.generate(request).output_ids == _greedy(engine, PROMPT, 8)


def test_concurrent_requests_do_not_share_state(engine: Engine) -> None:
    prompts = [PROMPT[:-2] + [400 + i] + PROMPT[-2:] for i in range(4)]
    expected = [_greedy(engine, p) for p in prompts]
    got: dict[int, list[int]] = {}

    def worker(i: int) -> None:
        got[i] = _greedy(engine, prompts[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [got[i] for i in range(4)] == expected
    assert len({tuple(e) for e in expected}) == 4, "distinct prompts should give distinct outputs"


def test_unknown_provider_is_a_one_line_error(tiny_model_dir: Path) -> None:
    from harness.providers import ProviderSettings

    with pytest.raises(HarnessError, match="unknown provider 'tpu'"):
        Engine.load(tiny_model_dir, ProviderSettings(name="tpu"))


LONG_PROMPT = tuple([1] + [(i * 7919) % 30000 + 300 for i in range(300)])  # 301 tokens: 256 + 45


@functools.lru_cache(maxsize=None)
def _reference(model_dir: Path, prompt: tuple[int, ...], n: int) -> list[int]:
    return reference_greedy(model_dir, list(prompt), n)


@pytest.mark.parametrize("graph", ["last position", "every position"])
@pytest.mark.parametrize("strategy", ["shared", "growing"])
@pytest.mark.parametrize("chunk", [4, 256, 0])
def test_chunked_prefill_gives_the_reference_tokens(tiny_model_dir: Path, strategy: str, chunk: int, graph: str) -> None:
    if graph == "last position":
        engine = Engine.load(tiny_model_dir, kv_strategy=strategy, prefill_chunk=chunk)
        assert engine.last_logits_only
    else:
        engine = _every_position_engine(tiny_model_dir, kv_strategy=strategy, prefill_chunk=chunk)
    prompt = LONG_PROMPT[:41] if chunk == 4 else LONG_PROMPT  # chunk 4: 10 full chunks and one of 1
    assert _greedy(engine, list(prompt), 6) == _reference(tiny_model_dir, prompt, 6)


def test_a_long_prompt_never_takes_more_than_one_chunk_of_logits(near_the_context: tuple[Engine, list[int]]) -> None:
    engine, _ = near_the_context
    assert engine.prefill_chunk == 256
    held = engine._prefill_buffers
    assert len(held) == 1 and held[0].shape == (1, 256, engine.config.vocab_size)
    kept = held[0]
    engine.generate(Request(prompt_ids=tuple(PROMPT), max_new_tokens=2))  # a short prompt reuses it
    assert len(engine._prefill_buffers) == 1 and engine._prefill_buffers[0] is kept


def test_the_last_position_graph_holds_no_prompt_logits(tiny_model_dir: Path) -> None:
    engine = Engine.load(tiny_model_dir)
    assert engine.last_logits_only
    assert _greedy(engine, list(LONG_PROMPT), 3) == _reference(tiny_model_dir, LONG_PROMPT, 3)
    assert engine._prefill_buffers == []  # every prefill Run wrote its one row into the step buffer


def test_a_negative_prefill_chunk_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(HarnessError, match="prefill_chunk must be >= 0"):
        Engine.load(tiny_model_dir, prefill_chunk=-1)
