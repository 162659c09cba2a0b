"""Prompts of an exact token length, built with the model's own tokenizer.

A chat prompt is ``<s><|user|>\\n{body}<|end|>\\n<|assistant|>\\n``; the body is cut from a tokenized
text so that the whole prompt is exactly the requested number of ids. Variants start the body at
different places, so concurrent requests get distinct prompts of the same length.
"""

from __future__ import annotations

from typing import Sequence

from harness.errors import HarnessError
from harness.model.tokenizer import Phi3Tokenizer

SOURCE_TEXT = (
    "Local language models are judged by how quickly they answer and how much of the machine they "
    "take while doing it. A laptop that answers the first question in under half a second feels "
    "instant; one that takes three seconds feels broken, whatever the benchmark tables say. The "
    "engineers who ship these models measure the time to the first token, the time between tokens, "
    "the memory the process holds, and whether the graphics chip or the neural processor is really "
    "doing the work. They write down the driver version, the runtime version and the model hash, "
    "because a number without its context cannot be compared with anything. Rivers carry sand to "
    "the sea, bakers rise before dawn, and trains leave the station at seven minutes past the hour. "
    "Ask a question about gardens, planets, recipes, music or the history of bridges, and the model "
    "should answer in plain words, one token after another, without repeating itself. "
)

DISTINCT_QUESTIONS = (
    "Name three colours of the rainbow.",
    "What is the capital of France?",
    "Write one sentence about the sea.",
    "How many legs does a spider have?",
    "Suggest a name for a grey cat.",
    "What do bees make?",
    "Give me a word that rhymes with light.",
    "Why is the sky blue?",
)


def chat_frame(tokenizer: Phi3Tokenizer) -> tuple[list[int], list[int]]:
    """Ids before and after the user message body in the Phi-3 chat template (with ``<s>``)."""
    head = tokenizer.encode_template("<|user|>\n", add_bos=True)
    tail = tokenizer.encode_template("<|end|>\n<|assistant|>\n")
    return head, tail


def exact_length_prompt(tokenizer: Phi3Tokenizer, length: int, variant: int = 0) -> tuple[int, ...]:
    """A chat prompt of exactly ``length`` ids; ``variant`` picks a different body."""
    head, tail = chat_frame(tokenizer)
    body_length = length - len(head) - len(tail)
    if body_length < 1:
        raise HarnessError(
            f"prompt length {length} is too short for the chat template ({len(head) + len(tail) + 1} tokens at least): "
            "raise matrix.prompt_lengths"
        )
    source = tokenizer.encode(SOURCE_TEXT)
    start = (variant * 37) % len(source)
    repeats = (start + body_length) // len(source) + 1
    body = (source * (repeats + 1))[start : start + body_length]
    return tuple(head + body + tail)


def check_matrix_fits(tokenizer: Phi3Tokenizer, prompt_lengths: Sequence[int], max_new_tokens: int,
                      context: int) -> None:
    """Every matrix prompt length fits the chat template and, with its new tokens, the model's context."""
    head, tail = chat_frame(tokenizer)
    shortest = len(head) + len(tail) + 1
    for length in prompt_lengths:
        if length < shortest:
            raise HarnessError(f"matrix.prompt_lengths has {length}, shorter than the chat template allows "
                               f"({shortest} tokens at least): use lengths >= {shortest}")
        if length + max_new_tokens > context:
            raise HarnessError(f"matrix.prompt_lengths {length} + matrix.max_new_tokens {max_new_tokens} exceeds the "
                               f"model's context of {context} tokens: keep their sum <= {context}")
