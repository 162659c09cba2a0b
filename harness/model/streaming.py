"""Streaming decode: text deltas whose concatenation is exactly ``decode(ids)``, emitted as early as that allows.

The core is the `tokenizers` library's own ``DecodeStream`` (one call per token; it decodes a short
window in Rust and holds text back while it ends in U+FFFD). On its own it breaks on byte-fallback
tokens: ``decode`` turns a whole run of ``<0xNN>`` tokens into its UTF-8 text, or into one U+FFFD
per byte when the run is not valid UTF-8, so a byte emitted early (``<0x46>`` -> "F") can later
become U+FFFD (``<0x46><0xA7>`` -> "\\ufffd\\ufffd"). Two rules on top fix that:

- A byte run is handed to ``DecodeStream`` only whole, together with the text token that ends it.
  Ids that ``decode`` drops (special tokens, ids the vocabulary lacks) do not end a run (``decode``
  drops them before the byte decoder sees the run), and are never fed at all: they add no text.
- While a run is open, the only text that cannot change is a run of U+FFFD: all of it once the bytes
  are no longer a valid UTF-8 prefix (every byte, and every byte to come, is one U+FFFD), else the
  U+FFFD characters its valid text starts with. That much is emitted at once and subtracted from
  ``DecodeStream``'s output when the run closes.

Only ``skip_special_tokens=True`` decoding (``Phi3Tokenizer.decode``'s default) is streamed. One
case stays one token late: a piece whose own text ends in U+FFFD (none in the tiny vocabulary) is
held by ``DecodeStream`` until the next piece; the text is still exact.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT_CHAR = "\ufffd"

# What one id does to the decoded text (see the module docstring).
TEXT = 0  # a piece: ends an open byte run
TEXT_ENDS_FFFD = 1  # a piece whose own text ends in U+FFFD: DecodeStream holds it back
BYTE = 2  # <0xNN> byte-fallback piece
SILENT = 3  # dropped by decode: special token, or an id the vocabulary lacks

_BYTE_PIECE = re.compile(r"<0x([0-9A-F]{2})>")


class TokenKinds:
    """Per-id kinds of one tokenizer, filled lazily (a dict lookup per generated token)."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.known: dict[int, int] = {}  # id -> kind, for the ids seen so far
        self.byte_value: dict[int, int] = {}
        if _has_byte_fallback(tokenizer):
            for value in range(256):
                token_id = tokenizer.token_to_id(f"<0x{value:02X}>")
                if token_id is not None:
                    self.byte_value[token_id] = value
                    self.known[token_id] = BYTE
        for token_id, added in tokenizer.get_added_tokens_decoder().items():
            if added.special:
                self.known[token_id] = SILENT

    def classify(self, token_id: int) -> int:
        """The kind of an id not in ``known`` yet (and remember it)."""
        piece = self._tokenizer.id_to_token(token_id) if token_id >= 0 else None
        kind = SILENT if piece is None else TEXT_ENDS_FFFD if piece.endswith(REPLACEMENT_CHAR) else TEXT
        self.known[token_id] = kind
        return kind


def _has_byte_fallback(tokenizer: Any) -> bool:
    """``<0xNN>`` pieces are bytes only when the decoder has a ByteFallback step."""
    decoder = tokenizer.decoder
    return decoder is not None and b'"ByteFallback"' in decoder.__getstate__()


def known_fffd(run: bytes) -> int:
    """How many U+FFFD open the final text of a byte run that starts with ``run``, whatever follows."""
    try:
        text = run.decode("utf-8")
    except UnicodeDecodeError as error:
        if not (error.end == len(run) and error.reason == "unexpected end of data"):
            return len(run)  # already invalid: one U+FFFD per byte, now and later
        text = run[: error.start].decode("utf-8")  # a valid prefix: its complete characters
    return len(text) - len(text.lstrip(REPLACEMENT_CHAR))


class StreamDecoder:
    """Turns generated ids, one at a time, into text deltas (see the module docstring).

    ``add(id)`` returns the new text ("" when nothing is certain yet); ``flush()``, once at the
    end, returns what was held back (an unfinished byte run decodes to U+FFFD per byte).
    """

    def __init__(self, tokenizer: Any, kinds: TokenKinds) -> None:
        from tokenizers.decoders import DecodeStream

        self._tokenizer = tokenizer
        self._kinds = kinds
        self._known_kind = kinds.known.get
        self._stream = DecodeStream(skip_special_tokens=True)
        self._ids: list[int] = []  # everything added, for flush()
        self._run: list[int] = []  # the open byte run, not yet given to DecodeStream
        self._run_bytes = bytearray()
        self._ahead = 0  # U+FFFD emitted for the open run that DecodeStream has not produced yet
        self._stream_holds_text = False  # DecodeStream is holding text back (it ended in U+FFFD)
        self._emitted = 0  # characters emitted so far

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        kind = self._known_kind(token_id)
        if kind is None:
            kind = self._kinds.classify(token_id)
        if kind == TEXT and not self._run and not self._ahead:  # the common case, kept short
            chunk = self._stream.step(self._tokenizer, token_id)
            if chunk is None:
                return ""  # a lone leading "\u2581", stripped by the decoder: nothing held
            self._stream_holds_text = False
            self._emitted += len(chunk)
            return chunk
        if kind == SILENT:
            return ""
        if kind == BYTE:
            return self._add_byte(token_id)
        return self._add_piece(token_id, kind)

    def flush(self) -> str:
        """The rest of ``decode(all ids)``: call once, after the last ``add``."""
        rest = self._tokenizer.decode(self._ids, skip_special_tokens=True)[self._emitted :]
        self._emitted += len(rest)
        self._run.clear()
        self._run_bytes.clear()
        self._ahead = 0
        return rest

    def _add_piece(self, token_id: int, kind: int) -> str:
        closes_run = bool(self._run)
        chunk = self._stream.step(self._tokenizer, [*self._run, token_id] if closes_run else token_id)
        self._run.clear()
        self._run_bytes.clear()
        # A piece's own text is never empty, so DecodeStream returns None only for a U+FFFD-ending
        # piece (held) or a lone leading "\u2581" (stripped: nothing visible is held).
        self._stream_holds_text = chunk is None and kind == TEXT_ENDS_FFFD
        return self._emit(self._subtract_ahead(chunk or ""))

    def _add_byte(self, token_id: int) -> str:
        self._run.append(token_id)
        self._run_bytes.append(self._kinds.byte_value[token_id])
        if self._stream_holds_text:
            return ""  # text before the run is still held: nothing after it may go out first
        known = known_fffd(bytes(self._run_bytes))
        early = REPLACEMENT_CHAR * (known - self._ahead)
        self._ahead = max(self._ahead, known)
        return self._emit(early)

    def _subtract_ahead(self, chunk: str) -> str:
        """DecodeStream's chunk less the U+FFFD this decoder already emitted for the run."""
        if not self._ahead:
            return chunk
        taken = min(self._ahead, len(chunk))
        self._ahead -= taken
        return chunk[taken:]

    def _emit(self, text: str) -> str:
        self._emitted += len(text)
        return text
