"""Phi-3 tokenizer on the `tokenizers` library: chat template, explicit BOS, text kept as text.

HF `tokenizers` adds ``<s>`` through its post-processor and onnxruntime-genai's tokenizer does not;
here nothing is added implicitly: callers say ``add_bos`` and get exactly the ids they asked for.

User text is text. A message containing ``<|end|><|assistant|>`` must not forge a turn, so text is
encoded with special-token matching off (``encode_special_tokens``), and only the template's own
markers become control tokens: ``encode_chat`` places them itself, ``encode_template`` finds them in
harness-written template text. The pieces between markers are encoded exactly as a whole-string
encode would cut them (each piece on its own, with the markers' lstrip/rstrip applied), so ids of
ordinary prompts do not change.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from harness.errors import HarnessError
from harness.model.streaming import StreamDecoder, TokenKinds

ROLES = ("system", "user", "assistant")
END = "<|end|>"
GENERATION_PROMPT = "<|assistant|>\n"
MARKER, TEXT = "marker", "text"
# Rust's char::is_whitespace (Unicode White_Space), which the tokenizers library strips with
# lstrip/rstrip; Python's str.isspace also counts \x1c-\x1f.
_WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_LEADING_SPACE = re.compile(f"\\A[{_WHITESPACE}]+")
_TRAILING_SPACE = re.compile(f"[{_WHITESPACE}]+\\Z")


def chat_segments(messages: Iterable[tuple[str, str]], add_generation_prompt: bool = True) -> list[tuple[str, str]]:
    """The Phi-3 chat template as (MARKER | TEXT, string) pieces: ``<|role|>``, ``\\n{content}``, ``<|end|>``, ``\\n``."""
    segments: list[tuple[str, str]] = []
    for role, content in messages:
        if role not in ROLES:
            raise HarnessError(f"unknown chat role {role!r}: use one of {', '.join(ROLES)}")
        segments += [(MARKER, f"<|{role}|>"), (TEXT, f"\n{content}"), (MARKER, END), (TEXT, "\n")]
    if add_generation_prompt:
        segments += [(MARKER, "<|assistant|>"), (TEXT, "\n")]
    return segments


def render_chat(messages: Iterable[tuple[str, str]], add_generation_prompt: bool = True) -> str:
    """The Phi-3 chat template: ``<|role|>\\n{content}<|end|>\\n`` per turn, then ``<|assistant|>\\n``."""
    return "".join(text for _, text in chat_segments(messages, add_generation_prompt))


@functools.lru_cache(maxsize=8)
def _parsed(path: str, size: int, mtime_ns: int) -> Any:
    """tokenizer.json parsed once per process and version of the file (size and mtime in the key).

    Parsing Phi-3's takes ~30 ms; a process that loads several engines on one folder (the test
    suite: 115 loads, 3.5 s of CPU) shares one parse. Sharing is safe: the object is only read,
    after every Phi3Tokenizer sets the same ``encode_special_tokens``; one engine's request threads
    already share it.
    """
    from tokenizers import Tokenizer

    del size, mtime_ns  # in the key only
    return Tokenizer.from_file(path)


def _load(tokenizer_path: Path) -> Any:
    try:
        stat = tokenizer_path.stat()
        return _parsed(str(tokenizer_path.resolve()), stat.st_size, stat.st_mtime_ns)
    except Exception as error:  # OSError, or tokenizers' bare Exception with a parse message
        raise HarnessError(
            f"{tokenizer_path} cannot be read by the tokenizers library ({str(error).splitlines()[0]}): "
            "re-copy tokenizer.json from the model folder"
        ) from None


class Phi3Tokenizer:
    def __init__(self, tokenizer_path: Path, bos_token_id: int = 1) -> None:
        self._tokenizer = _load(Path(tokenizer_path))
        self._tokenizer.encode_special_tokens = True  # text is text; markers are placed, not parsed
        self._path = tokenizer_path
        self.bos_token_id = bos_token_id
        self._markers = {t.content: (i, t) for i, t in self._tokenizer.get_added_tokens_decoder().items() if t.special}
        self._token_kinds = TokenKinds(self._tokenizer)  # ~0.1 ms, here rather than in a first request's TTFT

    def encode(self, text: str, add_bos: bool = False) -> list[int]:
        """``text`` as plain text: special-token strings in it are ordinary characters."""
        ids = self._tokenizer.encode(text, add_special_tokens=False).ids
        return [self.bos_token_id, *ids] if add_bos else list(ids)

    def encode_template(self, text: str, add_bos: bool = False) -> list[int]:
        """Harness-written template text (never user text): special-token strings are control tokens."""
        return self._encode_segments(self._split_markers(text), add_bos)

    def encode_chat(self, messages: Iterable[tuple[str, str]], add_bos: bool = True) -> list[int]:
        """The chat template's markers as control tokens, every message's content as text."""
        return self._encode_segments(chat_segments(messages), add_bos)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of ``text`` (no BOS) and each id's (start, end) character span in ``text``."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.ids), [tuple(span) for span in encoding.offsets]

    def count(self, text: str) -> int:
        """Tokens in ``text`` as the model sees them (no BOS; text as text)."""
        return len(self.encode(text))

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokenizer.id_to_token(token_id)

    def stream_decoder(self) -> StreamDecoder:
        """A fresh incremental decoder whose deltas concatenate to ``decode(ids)``."""
        return StreamDecoder(self._tokenizer, self._token_kinds)

    @functools.cached_property
    def _marker_pattern(self) -> re.Pattern[str] | None:
        longest_first = sorted(self._markers, key=len, reverse=True)
        return re.compile("(" + "|".join(map(re.escape, longest_first)) + ")") if longest_first else None

    def _split_markers(self, text: str) -> list[tuple[str, str]]:
        if self._marker_pattern is None:
            return [(TEXT, text)]
        parts = self._marker_pattern.split(text)  # odd positions are the captured markers
        return [(MARKER if i % 2 else TEXT, part) for i, part in enumerate(parts) if part]

    def _encode_segments(self, segments: list[tuple[str, str]], add_bos: bool) -> list[int]:
        ids = [self.bos_token_id] if add_bos else []
        for index, (kind, text) in enumerate(segments):
            if kind == MARKER:
                ids.append(self._marker(text)[0])
            else:
                ids += self.encode(self._strip_for_neighbours(segments, index))
        return ids

    def _marker(self, content: str) -> tuple[int, Any]:
        if content not in self._markers:
            raise HarnessError(
                f"{self._path} has no special token {content}: the Phi-3 chat template needs it "
                "(is this a Phi-3 tokenizer.json?)"
            )
        return self._markers[content]

    def _strip_for_neighbours(self, segments: list[tuple[str, str]], index: int) -> str:
        """What a whole-string encode leaves of this piece: rstrip/lstrip markers swallow its edge whitespace."""
        text = segments[index][1]
        if index > 0 and segments[index - 1][0] == MARKER and self._marker(segments[index - 1][1])[1].rstrip:
            text = _LEADING_SPACE.sub("", text)
        if index + 1 < len(segments) and segments[index + 1][0] == MARKER and self._marker(segments[index + 1][1])[1].lstrip:
            text = _TRAILING_SPACE.sub("", text)
        return text
