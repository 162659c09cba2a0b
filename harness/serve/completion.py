"""One chat completion as an ASGI response: start the generation, relay it, stop it when the client goes.

While the reply is produced a watcher waits on ``receive()``: an ``http.disconnect`` cancels the
generation (the worker stops within one decode step) and the relay. Doing this here, not through
the framework's streaming response, keeps the behaviour the same for streamed and whole replies
and independent of which ASGI spec version the server speaks.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from harness.serve.api_error import ApiError
from harness.serve.generation import END, Accepted, Generation, GenerationPool
from harness.serve.schemas import ChatParams
from harness.serve.stops import StopMatcher
from harness.serve.streaming import (
    SSE_HEADERS,
    ChunkWriter,
    Finish,
    completion_body,
    error_event,
)
from harness.targets.base import TokenEvent, Usage

JSON_HEADERS = [(b"content-type", b"application/json")]


class ChatCompletion:
    """The ASGI app that answers one validated request."""

    def __init__(self, pool: GenerationPool, params: ChatParams, model: str) -> None:
        self.pool = pool
        self.params = params
        self.model = model
        self.completion_id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        generation = self.pool.start(self.params)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(_watch_disconnect, receive, generation, group.cancel_scope)
                reply = _Reply(generation, self.params.stop)
                if self.params.stream:
                    await self._stream(reply, send)
                else:
                    await self._whole(reply, send)
                group.cancel_scope.cancel()
        finally:
            generation.cancel.set()  # a no-op when the worker is done; stops it when we are not

    async def _stream(self, reply: _Reply, send: Any) -> None:
        try:
            await reply.accepted()
        except ApiError as error:
            await send_json(send, error.status, error.body())
            return
        writer = ChunkWriter(self.completion_id, self.created, self.model, self.params.include_usage,
                             self.params.continuous_usage, reply.prompt_tokens)
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": writer.role(), "more_body": True})
        try:
            async for texts, finish in reply.batches():
                body = b"".join(writer.content(text, tokens) for text, tokens in texts)
                if finish is not None:
                    await send({"type": "http.response.body", "body": body + writer.ending(finish)})
                    return
                if body:  # tokens still inside a UTF-8 sequence or a possible stop string add nothing yet
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        except ApiError as error:
            await send({"type": "http.response.body", "body": error_event(error.body())})

    async def _whole(self, reply: _Reply, send: Any) -> None:
        parts: list[str] = []
        try:
            await reply.accepted()
            async for texts, finish in reply.batches():
                parts.extend(text for text, _ in texts)
                if finish is not None:
                    body = completion_body(self.completion_id, self.created, self.model, "".join(parts), finish)
                    await send_json(send, 200, body)
                    return
        except ApiError as error:
            await send_json(send, error.status, error.body())


class _Reply:
    """The generation's events as text batches, stop strings applied, ending with a ``Finish``."""

    def __init__(self, generation: Generation, stops: tuple[str, ...]) -> None:
        self.generation = generation
        self.stops = StopMatcher(stops)
        self.prompt_tokens = 0
        self.tokens = 0

    async def accepted(self) -> Accepted:
        first = await self.generation.queue.get()
        if isinstance(first, ApiError):
            raise first
        if not isinstance(first, Accepted):
            raise ApiError(500, "the generation ended before it started")
        self.prompt_tokens = first.prompt_tokens
        return first

    async def batches(self) -> AsyncIterator[tuple[list[tuple[str, int]], Finish | None]]:
        """Batches of (text, tokens generated so far), the last one with its ``Finish``."""
        while True:
            texts: list[tuple[str, int]] = []
            for item in await self.generation.next_batch():
                finish = self._take(item, texts)
                if finish is not None:
                    yield texts, finish
                    return
            yield texts, None

    def _take(self, item: Any, texts: list[tuple[str, int]]) -> Finish | None:
        if isinstance(item, TokenEvent):
            self.tokens += 1
            self._add(texts, self.stops.feed(item.text))
            if self.stops.stopped:
                self.generation.cancel.set()  # the worker stops; the tokens it makes meanwhile are dropped
                return Finish("stop", self.prompt_tokens, self.tokens)
            return None
        if isinstance(item, Usage):
            self._add(texts, self.stops.flush())
            return Finish(item.finish_reason, item.prompt_tokens, item.completion_tokens)
        if isinstance(item, ApiError):
            raise item
        if item is END:
            raise ApiError(500, "the generation ended without its usage")
        return None

    def _add(self, texts: list[tuple[str, int]], text: str) -> None:
        if text:
            texts.append((text, self.tokens))


async def _watch_disconnect(receive: Any, generation: Generation, scope: anyio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            generation.cancel.set()
            scope.cancel()
            return


async def send_json(send: Any, status: int, body: dict) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": json.dumps(body, ensure_ascii=False).encode("utf-8")})
