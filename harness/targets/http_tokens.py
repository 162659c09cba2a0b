"""From stamped HTTP chunks to the Target protocol's TokenEvents and Usage.

Ids are not on the wire, so the tokens in each content chunk are counted, best source first:
    server     the server's running ``usage.completion_tokens`` on every content chunk
               (vLLM's ``continuous_usage_stats``)
    tokenizer  the model folder's tokenizer over the whole text; a token belongs to the chunk that
               holds its last character
    chunks     one token per content chunk (what most servers send) when neither is available
A chunk of k tokens that arrived ``gap`` after the previous content chunk gets k tokens spaced
``gap / k`` apart, ending at its arrival (per-token ITL); the first content chunk's tokens all
carry its arrival (TTFT = first content). Inter-chunk gaps are kept apart in the details.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Sequence

from harness.model.tokenizer import Phi3Tokenizer
from harness.targets.base import TokenEvent
from harness.targets.http_stream import Chunk

NO_ID = -1  # a token whose id the wire did not carry and no tokenizer recovered


def content_chunks(chunks: Sequence[Chunk]) -> list[Chunk]:
    return [chunk for chunk in chunks if chunk.content]


def tokens_per_chunk(content: Sequence[Chunk], tokenizer: Phi3Tokenizer | None) -> tuple[list[int], list[int], str]:
    """(tokens in each content chunk, token ids or [] when unknown, which source counted them)."""
    running = [chunk.usage.get("completion_tokens") if chunk.usage else None for chunk in content]
    if content and all(isinstance(n, int) for n in running) and running == sorted(running):
        counts = [b - a for a, b in zip([0, *running], running)]
        return counts, [], "server"
    if tokenizer is not None and content:
        return _count_with_tokenizer(content, tokenizer) + ("tokenizer",)
    return [1] * len(content), [], "chunks"


def _count_with_tokenizer(content: Sequence[Chunk], tokenizer: Phi3Tokenizer) -> tuple[list[int], list[int]]:
    ends, total = [], 0
    for chunk in content:
        total += len(chunk.content)
        ends.append(total)
    ids, spans = tokenizer.encode_with_offsets("".join(chunk.content for chunk in content))
    counts = [0] * len(content)
    position = 0
    for _, end in spans:
        while position < len(ends) - 1 and end > ends[position]:
            position += 1
        counts[position] += 1
    return counts, ids


def token_events(content: Sequence[Chunk], counts: Sequence[int], ids: Sequence[int]) -> list[TokenEvent]:
    """Spread each chunk's tokens over the gap since the previous content chunk; text rides on the
    chunk's last token (a chunk counted as 0 tokens hands its text to the next token)."""
    events: list[TokenEvent] = []
    previous_ns: int | None = None
    carried = ""
    id_iter = iter(ids)
    for chunk, count in zip(content, counts):
        carried += chunk.content
        if count > 0:
            for k in range(1, count + 1):
                if previous_ns is None:
                    t_ns = chunk.t_ns
                else:
                    t_ns = previous_ns + (chunk.t_ns - previous_ns) * k // count
                text = carried if k == count else ""
                events.append(TokenEvent(next(id_iter, NO_ID), text, t_ns))
            carried = ""
        previous_ns = chunk.t_ns
    if carried and events:
        last = events[-1]
        events[-1] = TokenEvent(last.token_id, last.text + carried, last.t_ns)
    return events


def merged_with_next(content: Sequence[Chunk], chunks: Sequence[Chunk] = (),
                     read_behind: AbstractSet[int] = frozenset()) -> list[int]:
    """Indexes of content chunks whose stamp may be a later packet's: not seen apart from what followed.

    Either a chunk came in one packet with the next, or the client read it so late that the kernel
    merged the two packets (a merged packet keeps the later stamp). Its own arrival is then only
    bounded above by the stamp; the record keeps the stamp and flags it. Seen as: the same stamp as
    the next chunk (finish and usage chunks count for the last content chunk: a server descheduled
    between two writes sends them milliseconds apart), or a stamp in ``read_behind`` (later bytes were
    already queued when it was read: http_wire.py), which also catches a chain of merges, where a
    chunk carries the next one's stamp and that one the stamp after (3 to 22 ms seen at concurrency
    64 on a busy 2-core machine, tests/test_http_calibration.py).
    """
    following = list(content[1:])
    if content:
        place = next((i for i, chunk in enumerate(chunks) if chunk is content[-1]), len(chunks))
        following.append(chunks[place + 1] if place + 1 < len(chunks) else None)
    return [i for i, (chunk, after) in enumerate(zip(content, following))
            if chunk.t_ns in read_behind or (after is not None and chunk.t_ns == after.t_ns)]


def inter_chunk_s(content: Sequence[Chunk]) -> list[float]:
    return [(b.t_ns - a.t_ns) / 1e9 for a, b in zip(content, content[1:])]


def completion_count(usage: dict[str, Any] | None, text: str, counts: Sequence[int],
                     tokenizer: Phi3Tokenizer | None) -> tuple[int, str]:
    """(completion tokens, source): the server's usage, else the tokenizer's count, else chunks."""
    if usage and isinstance(usage.get("completion_tokens"), int):
        return usage["completion_tokens"], "server"
    if tokenizer is not None:
        return tokenizer.count(text), "tokenizer"
    return sum(counts), "chunks"


def prompt_count(usage: dict[str, Any] | None, messages: Sequence[tuple[str, str]],
                 tokenizer: Phi3Tokenizer | None) -> tuple[int, str]:
    if usage and isinstance(usage.get("prompt_tokens"), int):
        return usage["prompt_tokens"], "server"
    if tokenizer is not None:
        return len(tokenizer.encode_chat(messages, add_bos=True)), "tokenizer"
    return 0, "unknown"
