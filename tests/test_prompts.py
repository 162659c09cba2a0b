"""Prompts have exactly the requested number of tokens, in the Phi-3 chat frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.model.folder import load_model_folder
from harness.model.tokenizer import Phi3Tokenizer
from harness.measure.prompts import chat_frame, exact_length_prompt


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Phi3Tokenizer:
    return Phi3Tokenizer(load_model_folder(tiny_model_dir).tokenizer_path)


@pytest.mark.parametrize("length", [16, 17, 128, 1000, 3000])
def test_prompt_has_the_exact_length(tokenizer: Phi3Tokenizer, length: int) -> None:
    ids = exact_length_prompt(tokenizer, length)
    head, tail = chat_frame(tokenizer)
    assert len(ids) == length
    assert list(ids[: len(head)]) == head and head[:2] == [1, 32010]
    assert list(ids[-len(tail) :]) == tail and 32001 in tail


def test_variants_are_distinct_prompts_of_the_same_length(tokenizer: Phi3Tokenizer) -> None:
    prompts = [exact_length_prompt(tokenizer, 64, variant=v) for v in range(8)]
    assert len(set(prompts)) == 8 and {len(p) for p in prompts} == {64}


def test_too_short_for_the_template_is_a_clear_error(tokenizer: Phi3Tokenizer) -> None:
    with pytest.raises(HarnessError, match="too short for the chat template"):
        exact_length_prompt(tokenizer, 3)
