"""One chat-completions exchange on a leased connection: send, read the answer, stamp every chunk.

Nothing here interprets tokens: it records what arrived and when (``Exchange``), or raises an
``HttpFailure`` whose ``error_kind`` says what went wrong and whose ``details["chunks"]`` keeps what
had arrived before. Each piece of the body carries the arrival time of its packet (http_wire.py),
so parsing cost and a late thread never shift a timestamp.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from harness.targets.http_conn import Connection, HttpFailure, HttpTimeouts, Lease
from harness.targets.http_wire import WireError
from harness.targets.sse import SseError, SseEvent, SseParser

READ_SIZE = 65536
ERROR_BODY_CHARS = 300


@dataclass
class Chunk:
    """One data event (or the whole body of a non-streamed answer)."""

    t_ns: int
    content: str  # choices[0].delta.content ("" for role-only, finish and usage chunks)
    usage: dict[str, Any] | None = None
    role: bool = False


@dataclass
class Exchange:
    status: int = 0
    streamed: bool = True
    headers_ns: int | None = None  # response headers read (first byte of the answer, near enough)
    chunks: list[Chunk] = field(default_factory=list)
    done: bool = False  # data: [DONE] seen
    comments: int = 0  # SSE comment lines (keep-alive pings)
    finish_reason: str | None = None
    response_id: str = ""
    reusable: bool = True  # the connection may go back to the pool
    stamps: str = "user"  # "kernel": arrival times from the OS's packet stamps (http_wire.py)
    user_stamped_ns: set[int] = field(default_factory=set)  # with kernel stamps: reads the kernel gave none
    read_behind_ns: set[int] = field(default_factory=set)  # reads with later bytes already queued (http_wire.py)

    @property
    def usage(self) -> dict[str, Any] | None:
        """The last usage object the server sent (the include_usage chunk, normally)."""
        return next((c.usage for c in reversed(self.chunks) if c.usage), None)

    def seen(self) -> dict[str, Any]:
        """What a failure keeps: every chunk's arrival and content."""
        return {"status": self.status, "chunks": [(c.t_ns, c.content) for c in self.chunks]}


def post(lease: Lease, path: str, body: bytes, headers: dict[str, str], timeouts: HttpTimeouts,
         deadline_ns: int) -> Exchange:
    """POST ``body`` and read the whole answer; ``exchange.reusable`` says whether the connection may be pooled."""
    exchange = Exchange()
    connection = lease.connection
    try:
        _set_timeout(connection, min(timeouts.first_byte_s, _left_s(deadline_ns)))
        connection.wire.send(_request_bytes(connection, path, body, headers))
        status, reason, response_headers = connection.wire.read_head()
    except (socket.timeout, TimeoutError):
        kind = "first_byte_timeout" if _left_s(deadline_ns) > 0 else "total_timeout"
        raise HttpFailure(kind, f"no response headers within {timeouts.first_byte_s} s") from None
    except (WireError, OSError) as error:
        raise HttpFailure("connection_dropped", f"the server closed the connection before answering ({error})") from None
    exchange.headers_ns = time.perf_counter_ns()
    exchange.status = status
    exchange.stamps = connection.wire.stamps
    pieces = _timed(connection, connection.wire.body(response_headers), deadline_ns)
    if status != 200:
        raise HttpFailure(f"http_{status}", f"HTTP {status} {reason}: {_error_body(pieces)}", exchange.seen())
    content_type = response_headers.get("content-type", "").lower()
    try:
        if content_type.startswith("text/event-stream"):
            _read_events(pieces, exchange)
            _drain(pieces, exchange)
        else:
            _read_whole(pieces, exchange)
    except HttpFailure as failure:
        failure.details.update(exchange.seen())
        raise
    exchange.reusable = exchange.reusable and response_headers.get("connection", "").lower() != "close"
    wire = connection.wire
    exchange.user_stamped_ns, exchange.read_behind_ns, wire.user_stamped, wire.read_behind = (
        wire.user_stamped, wire.read_behind, set(), set())
    return exchange


def _request_bytes(connection: Connection, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    endpoint = connection.endpoint
    lines = [f"POST {path} HTTP/1.1", f"Host: {endpoint.host}:{endpoint.port}", f"Content-Length: {len(body)}",
             "User-Agent: phi3-harness", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _left_s(deadline_ns: int) -> float:
    return (deadline_ns - time.perf_counter_ns()) / 1e9


def _set_timeout(connection: Connection, seconds: float) -> None:
    if seconds <= 0:
        raise socket.timeout("deadline passed")
    connection.sock.settimeout(seconds)


def _timed(connection: Connection, pieces: Iterator[tuple[bytes, int]], deadline_ns: int) -> Iterator[tuple[bytes, int]]:
    """The body's pieces, each read under what is left of the total timeout; failures get their kind."""
    while True:
        try:
            _set_timeout(connection, _left_s(deadline_ns))
            piece = next(pieces)
        except StopIteration:
            return
        except (socket.timeout, TimeoutError):
            raise HttpFailure("total_timeout", "the answer did not finish within the total timeout") from None
        except (WireError, OSError) as error:
            raise HttpFailure("stream_dropped", f"the connection broke mid-answer ({error})") from None
        yield piece


def _error_body(pieces: Iterator[tuple[bytes, int]]) -> str:
    data = b""
    try:
        for piece, _ in pieces:
            data += piece
            if len(data) > 4096:
                break
    except HttpFailure:
        pass
    text = data.decode("utf-8", "replace").strip()
    return (text[:ERROR_BODY_CHARS] + ("..." if len(text) > ERROR_BODY_CHARS else "")) or "(empty body)"


def _read_events(pieces: Iterator[tuple[bytes, int]], exchange: Exchange) -> None:
    parser = SseParser()
    for data, t_ns in pieces:
        try:
            events = parser.feed(data, t_ns)
        except SseError as error:
            raise HttpFailure("malformed_sse", str(error)) from None
        for event in events:
            if event.data.strip() == "[DONE]":
                exchange.done, exchange.comments = True, parser.comments
                return
            _add_chunk(exchange, event)
    exchange.comments = parser.comments
    raise HttpFailure("stream_cut", "the stream ended before data: [DONE]"
                      + (" (in the middle of an event)" if parser.has_partial else ""))


def _add_chunk(exchange: Exchange, event: SseEvent) -> None:
    payload = _json_object(event.data, "malformed_sse")
    if "error" in payload or event.event == "error":
        error = payload.get("error", payload)
        message = error.get("message", error) if isinstance(error, dict) else error
        raise HttpFailure("server_error", f"the server sent an error mid-stream: {str(message)[:ERROR_BODY_CHARS]}")
    choices = payload.get("choices") or []
    content, role = "", False
    if choices:
        choice = choices[0]
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            raise HttpFailure("malformed_sse", f"chunk without a delta object: {event.data[:80]!r}")
        content = delta.get("content") or ""
        role = "role" in delta
        exchange.finish_reason = choice.get("finish_reason") or exchange.finish_reason
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else None
    exchange.response_id = exchange.response_id or str(payload.get("id", ""))
    exchange.chunks.append(Chunk(event.t_ns, str(content), usage, role))


def _json_object(text: str, kind: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except ValueError:
        raise HttpFailure(kind, f"data is not JSON: {text[:80]!r}") from None
    if not isinstance(payload, dict):
        raise HttpFailure(kind, f"data is not a JSON object: {text[:80]!r}")
    return payload


def _drain(pieces: Iterator[tuple[bytes, int]], exchange: Exchange) -> None:
    """Read the end of the response after [DONE], so the connection can serve the next request."""
    try:
        for _ in pieces:
            pass
    except HttpFailure:
        exchange.reusable = False


def _read_whole(pieces: Iterator[tuple[bytes, int]], exchange: Exchange) -> None:
    """A server that answers a streaming request with one JSON body: TTFT = E2E, flagged."""
    body, t_ns = b"", 0
    for piece, t_ns in pieces:
        body += piece
    exchange.streamed = False
    payload = _json_object(body.decode("utf-8", "replace"), "bad_response")
    if "error" in payload:
        raise HttpFailure("server_error", f"the server answered with an error: {str(payload['error'])[:ERROR_BODY_CHARS]}")
    choices = payload.get("choices") or []
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    if not isinstance(message, dict):
        raise HttpFailure("bad_response", f"the answer has no choices[0].message: {body[:80]!r}")
    exchange.finish_reason = choices[0].get("finish_reason")
    exchange.response_id = str(payload.get("id", ""))
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else None
    exchange.chunks.append(Chunk(t_ns, str(message.get("content") or ""), usage, True))
    exchange.done = True
