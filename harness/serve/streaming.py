"""The bytes of a chat completion: SSE chunks when streaming, one JSON object when not.

A streamed reply is, in order (each event ``data: <json>\\n\\n``):
1. one role chunk, ``delta: {"role": "assistant", "content": ""}``, sent as soon as the request is
   accepted (before prefill): it carries no token;
2. content chunks, ``delta: {"content": "..."}``, one per token whose text is complete (a token
   that ends inside a UTF-8 sequence, or an EOS, adds no chunk; its text rides with the next);
3. one finish chunk, ``delta: {}`` with ``finish_reason`` stop | length;
4. with ``stream_options.include_usage``: one chunk with ``choices: []`` and the usage (every
   earlier chunk then has ``"usage": null``, as OpenAI's API does; with ``continuous_usage_stats``
   too, every chunk has the running usage instead: its ``completion_tokens`` counts the tokens
   generated up to and including that chunk's text, so a chunk that carries k tokens is exact);
5. ``data: [DONE]``.
A failure after the role chunk ends the stream with ``data: {"error": {...}}`` and no ``[DONE]``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Finish:
    reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int  # tokens the engine generated, the final EOS included when it stopped on one

    def usage(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # proxies that buffer would merge chunks and hide token timing
]
DONE = b"data: [DONE]\n\n"


class ChunkWriter:
    """Pre-renders the parts every chunk of one reply shares; each chunk is then one string join."""

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool,
                 continuous_usage: bool = False, prompt_tokens: int = 0) -> None:
        self._head = (
            f'data: {{"id":{json.dumps(completion_id)},"object":"chat.completion.chunk","created":{created},'
            f'"model":{json.dumps(model)},"system_fingerprint":null,"choices":['
        )
        self._null_tail = ',"usage":null}\n\n' if include_usage else "}\n\n"
        self.include_usage = include_usage
        self.continuous_usage = continuous_usage
        self.prompt_tokens = prompt_tokens

    def role(self) -> bytes:
        return self._choice('{"role":"assistant","content":""}', "null", 0)

    def content(self, text: str, completion_tokens: int) -> bytes:
        """A content chunk; ``completion_tokens``: tokens generated up to and including this text."""
        return self._choice('{"content":' + json.dumps(text, ensure_ascii=False) + "}", "null", completion_tokens)

    def finish(self, finish: Finish) -> bytes:
        return self._choice("{}", json.dumps(finish.reason), finish.completion_tokens)

    def usage(self, finish: Finish) -> bytes:
        return (self._head + '],"usage":' + json.dumps(finish.usage()) + "}\n\n").encode("utf-8")

    def ending(self, finish: Finish) -> bytes:
        """Finish chunk, usage chunk when asked for, and [DONE]: sent in one write."""
        usage = self.usage(finish) if self.include_usage else b""
        return self.finish(finish) + usage + DONE

    def _choice(self, delta: str, finish_reason: str, completion_tokens: int) -> bytes:
        choice = '{"index":0,"delta":' + delta + ',"logprobs":null,"finish_reason":' + finish_reason + "}"
        return (self._head + choice + "]" + self._tail(completion_tokens)).encode("utf-8")

    def _tail(self, completion_tokens: int) -> str:
        if not self.continuous_usage:
            return self._null_tail
        usage = Finish("", self.prompt_tokens, completion_tokens).usage()
        return ',"usage":' + json.dumps(usage) + "}\n\n"


def error_event(body: dict) -> bytes:
    return b"data: " + json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n\n"


def completion_body(completion_id: str, created: int, model: str, text: str, finish: Finish) -> dict:
    """The non-streaming reply (``object: chat.completion``)."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish.reason,
            }
        ],
        "usage": finish.usage(),
    }
