"""Phi-3 tokenizer on the `tokenizers` library: chat template, explicit BOS, streaming decode.

HF `tokenizers` adds ``<s>`` through its post-processor and onnxruntime-genai's tokenizer does not;
here nothing is added implicitly: callers say ``add_bos`` and get exactly the ids they asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from harness.errors import HarnessError

ROLES = ("system", "user", "assistant")
END = "<|end|>"
GENERATION_PROMPT = "<|assistant|>\n"
REPLACEMENT_CHAR = "\ufffd"


def render_chat(messages: Iterable[tuple[str, str]], add_generation_prompt: bool = True) -> str:
    """The Phi-3 chat template: ``<|role|>\\n{content}<|end|>\\n`` per turn, then ``<|assistant|>\\n``."""
    parts = []
    for role, content in messages:
        if role not in ROLES:
            raise HarnessError(f"unknown chat role {role!r}: use one of {', '.join(ROLES)}")
        parts.append(f"<|{role}|>\n{content}{END}\n")
    if add_generation_prompt:
        parts.append(GENERATION_PROMPT)
    return "".join(parts)


class Phi3Tokenizer:
    def __init__(self, tokenizer_path: Path, bos_token_id: int = 1) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as error:  # tokenizers raises a bare Exception with a parse message
            raise HarnessError(
                f"{tokenizer_path} cannot be read by the tokenizers library ({str(error).splitlines()[0]}): "
                "re-copy tokenizer.json from the model folder"
            ) from None
        self.bos_token_id = bos_token_id

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return [self.bos_token_id, *ids] if add_bos else list(ids)

    def encode_chat(self, messages: Iterable[tuple[str, str]], add_bos: bool = True) -> list[int]:
        return self.encode(render_chat(messages), add_bos=add_bos)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of ``text`` (no BOS) and each id's (start, end) character span in ``text``."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.ids), [tuple(span) for span in encoding.offsets]

    def count(self, text: str) -> int:
        """Tokens in ``text`` as the model sees them (no BOS)."""
        return len(self.encode(text))

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)

    def stream_decoder(self) -> "StreamDecoder":
        return StreamDecoder(self)


class StreamDecoder:
    """Turns generated ids into text deltas whose concatenation equals ``decode(all ids)``.

    Byte-fallback tokens (``<0xE2>`` ...) decode to U+FFFD until the UTF-8 sequence is complete,
    so a delta is held back while the window's text ends in U+FFFD. Decoding a short window that
    starts one token back keeps the leading-space rule of the Metaspace decoder right.
    """

    def __init__(self, tokenizer: Phi3Tokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix_offset = 0  # window start: the token before the unread ones
        self._read_offset = 0  # ids before this are already emitted
        self._emitted: list[str] = []

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._tokenizer.decode(self._ids[self._prefix_offset : self._read_offset])
        window_text = self._tokenizer.decode(self._ids[self._prefix_offset :])
        if len(window_text) <= len(prefix_text) or window_text.endswith(REPLACEMENT_CHAR):
            return ""
        delta = window_text[len(prefix_text) :]
        self._prefix_offset, self._read_offset = self._read_offset, len(self._ids)
        self._emitted.append(delta)
        return delta

    def flush(self) -> str:
        """Whatever is still held back (an incomplete byte sequence at the end decodes as U+FFFD)."""
        full = self._tokenizer.decode(self._ids)
        done = "".join(self._emitted)
        rest = full[len(done) :] if full.startswith(done) else ""
        if rest:
            self._emitted.append(rest)
        self._prefix_offset = self._read_offset = len(self._ids)
        return rest
