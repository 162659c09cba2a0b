"""Any OpenAI-compatible chat-completions endpoint as a Target (same protocol as the engine).

``stream(request)`` POSTs ``/v1/chat/completions`` with ``stream: true`` and
``stream_options.include_usage``, stamps every chunk as it arrives (harness.targets.http_stream),
then yields one TokenEvent per token (harness.targets.http_tokens) and one Usage whose ``details``
keep what the wire showed: every chunk's arrival, inter-chunk gaps, connection set-up, whether the
answer was streamed, where the token counts came from, and the client's own CPU time.

Events are handed over once the answer is complete: counting the tokens of a chunk needs the whole
text, and the timestamps come from the socket reads, not from when the consumer sees the events.
A failure raises ``HttpFailure`` (its ``error_kind`` and ``details`` reach the record) after
yielding the tokens that did arrive; measure_request turns it into a failed record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

from harness.errors import HarnessError
from harness.model.tokenizer import Phi3Tokenizer
from harness.targets.base import Request, StreamItem, Usage
from harness.targets.http_conn import ConnectionPool, HttpFailure, HttpTimeouts, parse_endpoint
from harness.targets.http_stream import Chunk, Exchange, post
from harness.targets import http_tokens

CHAT_PATH = "/v1/chat/completions"


class HttpTarget:
    name = "http"
    provider = "remote"

    def __init__(self, url: str, *, api_key: str | None = None, model_name: str | None = None,
                 tokenizer: Phi3Tokenizer | None = None, timeouts: HttpTimeouts | None = None,
                 include_usage: bool = True) -> None:
        self.endpoint = parse_endpoint(url)
        self.api_key = api_key
        self.model_name = model_name
        self.tokenizer = tokenizer
        self.timeouts = timeouts or HttpTimeouts()
        self.include_usage = include_usage
        self.pool = ConnectionPool(self.endpoint, self.timeouts)
        self._path = self.endpoint.base_path + CHAT_PATH

    @classmethod
    def for_model(cls, url: str, model_dir: Path | str | None, **kwargs: Any) -> "HttpTarget":
        """A target that counts tokens with ``model_dir``'s tokenizer (None: no tokenizer)."""
        tokenizer = None
        if model_dir is not None:
            from harness.model.folder import load_model_folder

            folder = load_model_folder(model_dir)
            tokenizer = Phi3Tokenizer(folder.tokenizer_path, folder.config.bos_token_id)
        return cls(url, tokenizer=tokenizer, **kwargs)

    # -- the Target protocol ------------------------------------------------------------------

    def stream(self, request: Request) -> Iterator[StreamItem]:
        started_ns, cpu_ns = time.perf_counter_ns(), time.thread_time_ns()
        messages = self.messages(request)
        body = json.dumps(self.body(request, messages)).encode("utf-8")
        details: dict[str, Any] = {"transport": "http", "url": self.endpoint.url}
        try:
            exchange = self._send(body, request, started_ns, details)
        except HttpFailure as failure:
            details["client_cpu_s"] = (time.thread_time_ns() - cpu_ns) / 1e9
            failure.details = {**details, **failure.details}
            yield from self._partial_events(failure.details.pop("chunks", []))
            raise
        stream_cpu_ns = time.thread_time_ns() - cpu_ns
        events, usage = self._result(exchange, messages, started_ns, details)
        details["client_cpu_s"] = stream_cpu_ns / 1e9
        details["client_post_cpu_s"] = (time.thread_time_ns() - cpu_ns - stream_cpu_ns) / 1e9
        yield from events
        yield usage

    def close(self) -> None:
        self.pool.close()

    # -- the request ----------------------------------------------------------------------------

    def messages(self, request: Request) -> tuple[tuple[str, str], ...]:
        """Chat turns to send; exact-length ``prompt_ids`` go as the text of their user message."""
        if request.messages:
            return request.messages
        if request.prompt_ids is None:
            raise HarnessError("request has neither prompt_ids nor messages: give a prompt")
        if self.tokenizer is None:
            raise HarnessError("an HTTP target needs a tokenizer to send a prompt given as ids: pass --model DIR")
        # the Phi-3 chat frame around the user text, as harness.measure.prompts builds it
        head = self.tokenizer.encode_template("<|user|>\n", add_bos=True)
        tail = self.tokenizer.encode_template("<|end|>\n<|assistant|>\n")
        ids = list(request.prompt_ids)
        body = ids[len(head): len(ids) - len(tail)] if ids[: len(head)] == head and ids[-len(tail):] == tail else ids
        return (("user", self.tokenizer.decode(body)),)

    def body(self, request: Request, messages: tuple[tuple[str, str], ...]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [{"role": role, "content": content} for role, content in messages],
            "max_tokens": request.max_new_tokens,
            "stream": True,
        }
        if self.model_name:
            body["model"] = self.model_name
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if request.greedy:
            body["temperature"] = 0
        else:
            body.update(temperature=request.temperature, top_p=request.top_p)
            if request.top_k:
                body["top_k"] = request.top_k
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if request.request_id:
            headers["X-Request-Id"] = request.request_id
        return headers

    def _send(self, body: bytes, request: Request, started_ns: int, details: dict[str, Any]) -> Exchange:
        """One attempt, and one more on a fresh connection when a pooled one broke before answering."""
        deadline_ns = started_ns + int(self.timeouts.total_s * 1e9)
        for attempt in (0, 1):
            lease = self.pool.acquire()
            details.update(connect_s=lease.connect_s, reused_connection=lease.connect_s is None,
                           stale_connections_dropped=lease.stale_dropped, retried=attempt > 0)
            try:
                exchange = post(lease, self._path, body, self._headers(request), self.timeouts, deadline_ns)
            except HttpFailure as failure:
                lease.connection.close()
                if failure.error_kind == "connection_dropped" and lease.connect_s is None and attempt == 0:
                    continue  # the server closed an idle keep-alive connection as we used it
                raise
            if exchange.reusable:
                self.pool.release(lease.connection)
            else:
                lease.connection.close()
            return exchange
        raise AssertionError("unreachable")

    # -- the result -----------------------------------------------------------------------------

    def _result(self, exchange: Exchange, messages: tuple[tuple[str, str], ...], started_ns: int,
                details: dict[str, Any]) -> tuple[list[Any], Usage]:
        content = http_tokens.content_chunks(exchange.chunks)
        counts, ids, token_source = http_tokens.tokens_per_chunk(content, self.tokenizer)
        events = http_tokens.token_events(content, counts, ids)
        text = "".join(chunk.content for chunk in content)
        server_usage = exchange.usage
        completion, completion_source = http_tokens.completion_count(server_usage, text, counts, self.tokenizer)
        prompt, prompt_source = http_tokens.prompt_count(server_usage, messages, self.tokenizer)
        details.update(
            streamed=exchange.streamed, status=exchange.status, stamps=exchange.stamps, response_id=exchange.response_id,
            first_byte_s=(exchange.headers_ns - started_ns) / 1e9 if exchange.headers_ns else None,
            chunk_ns=[chunk.t_ns for chunk in exchange.chunks],
            content_chunk_ns=[chunk.t_ns for chunk in content], chunk_tokens=counts,
            inter_chunk_s=http_tokens.inter_chunk_s(content),
            merged_with_next=http_tokens.merged_with_next(content, exchange.chunks, exchange.read_behind_ns),
            user_stamped=[i for i, chunk in enumerate(content) if chunk.t_ns in exchange.user_stamped_ns],
            role_chunk=any(c.role and not c.content for c in exchange.chunks),
            sse_comments=exchange.comments, token_source=token_source, usage_source=completion_source,
            prompt_usage_source=prompt_source, server_usage=server_usage,
        )
        finish = exchange.finish_reason if exchange.finish_reason in ("stop", "length") else "stop"
        usage = Usage(prompt, completion, finish, per_token_timing=exchange.streamed, details=details)
        return events, usage

    def _partial_events(self, chunks: list[tuple[int, str]]) -> list[Any]:
        """Tokens that arrived before a failure: one per content chunk, at its arrival."""
        content = [Chunk(t_ns, text) for t_ns, text in chunks if text]
        return http_tokens.token_events(content, [1] * len(content), [])
