"""A scripted OpenAI-style streaming server for the HTTP target's tests and benchmarks (stdlib only).

Run as a child process so that its timing is not disturbed by the client under test:

    python tests/scripted_server.py --log FILE [--first-ms 50] [--gap-ms 10] [--health llama]

It prints ``PORT <n>`` (port 0 = ephemeral) and serves until its stdin closes. The request's
``model`` picks the behaviour (see SCRIPTS); the calibration script sends a role-only chunk at once,
content token i at ``first_ms + i * gap_ms`` after the request arrived, grouped in chunks of
CHUNK_PATTERN tokens (a chunk leaves when its last token is due), each content chunk carrying the
running ``usage.completion_tokens`` (vLLM's continuous usage), then a usage chunk and ``[DONE]``. Token k of an answer reads
" w<digest>-k", the digest taken from the prompt: distinct prompts get distinct answers.
For every request it appends to ``--log`` one JSON line with the perf_counter_ns (a system-wide
monotonic clock on Linux, Windows and macOS) just before and just after each content chunk was
written to the socket (``before_ns``, ``content_ns``), and on Linux when the kernel handed the
chunk's last byte to the device (``tx_ns``, SO_TIMESTAMPING; on loopback the moment it reached the
client's socket). The write is no bracket of that: TCP can hold a written segment back (until an
ACK opens the congestion window), by up to 12 ms seen at concurrency 64 on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import struct
import sys
import threading
import time

CHUNK_PATTERN = (1, 1, 3)
SCRIPTS = ("calib", "nousage", "plain", "drop", "cut", "status500", "malformed", "error_mid", "hang",
           "hang_mid", "whatwg")
HEALTH_STYLES = ("llama", "loading", "models", "ollama", "none")


class Script:
    def __init__(self, args: argparse.Namespace) -> None:
        self.first_ns = int(args.first_ms * 1e6)
        self.gap_ns = int(args.gap_ms * 1e6)
        self.health = args.health
        self.usage_delay_s = args.usage_delay_ms / 1e3
        self.finish_gap_s = args.finish_gap_ms / 1e3
        self.idle_close_s = args.idle_close_ms / 1e3 or None
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115

    def write_log(self, entry: dict) -> None:
        if self.log is not None:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()


class SendStamps:
    """Linux: the kernel's software transmit stamp of each byte range written after ``start()``.

    SO_TIMESTAMPING with OPT_ID (counting bytes from the option, OPT_ID_TCP) tags each write's last
    byte; the stamps come back on the socket's error queue, wall clock, converted to perf_counter_ns
    with the tightest of a few clock brackets. Elsewhere, or when the kernel refuses, ``start`` is False.
    """

    SO_TIMESTAMPING = 37  # asm-generic, as SO_TIMESTAMPNS in harness/targets/http_wire.py
    FLAGS = (1 << 1) | (1 << 4) | (1 << 7) | (1 << 11) | (1 << 16)  # TX_SOFTWARE SOFTWARE OPT_ID OPT_TSONLY OPT_ID_TCP

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.sock: socket.socket | None = None

    def start(self) -> bool:
        """Count from here, when no earlier byte is still unsent or unacknowledged: no stamp of an earlier
        write (counted from an earlier start) can then come back among this answer's."""
        if not sys.platform.startswith("linux") or self.writer.transport.get_write_buffer_size():
            return False
        import fcntl  # POSIX only
        import termios

        raw = self.writer.get_extra_info("socket")
        self.sock = socket.fromfd(raw.fileno(), socket.AF_INET, socket.SOCK_STREAM)  # a duplicate: closed by us
        try:
            queued = struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
            if queued:
                raise OSError("earlier bytes still in flight")
            self._drain({})  # stamps of earlier answers
            self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPING, 0)  # off and on: the count restarts
            self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPING, self.FLAGS)
        except OSError:
            self.close()
        return self.sock is not None

    async def wait_for(self, ends: list[int], timeout_s: float = 2.0) -> list[int | None]:
        """perf_counter_ns when the byte at each offset in ``ends`` left: the earliest stamp at or after it
        (a write appended to a segment TCP still held shares that segment's stamp)."""
        stamps: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while self.sock is not None and not (stamps and max(stamps) >= ends[-1]) and time.monotonic() < deadline:
            self._drain(stamps)
            await asyncio.sleep(0.001)
        found = [min((t for key, t in stamps.items() if key >= end), default=None) for end in ends]
        self.close()
        return found

    def _drain(self, stamps: dict[int, int]) -> None:
        """Stamps waiting in the error queue -> ``stamps`` (byte offset -> perf_counter_ns), each turned
        from wall clock with the offset read as it is drained, milliseconds after it was taken: a wall
        clock set while a response is sent (a VM here stepped it every 100 ms) moves no earlier stamp."""
        offset = None
        while True:
            try:
                _, ancillary, _, _ = self.sock.recvmsg(1, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            stamp = key = None
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPING:
                    seconds, nanoseconds = struct.unpack("qq", raw[:16])
                    stamp = seconds * 1_000_000_000 + nanoseconds
                elif len(raw) >= 16:  # IP_RECVERR: struct sock_extended_err, ee_data = the byte offset
                    key = struct.unpack("IBBBBII", raw[:16])[6]
            if stamp and key is not None:
                offset = _wall_minus_perf_ns() if offset is None else offset
                stamp -= offset
                stamps[key] = min(stamp, stamps.get(key, stamp))  # a retransmission is stamped again, later

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPING, 0)
            except OSError:
                pass  # the connection is gone
            self.sock.close()
            self.sock = None


def _wall_minus_perf_ns() -> int:
    best = (1 << 62, 0)
    for _ in range(16):
        before, wall, after = time.perf_counter_ns(), time.time_ns(), time.perf_counter_ns()
        best = min(best, (after - before, wall - (before + after) // 2))
    return best[1]


def chunk_plan(n_tokens: int) -> list[int]:
    sizes, i = [], 0
    while sum(sizes) < n_tokens:
        sizes.append(min(CHUNK_PATTERN[i % len(CHUNK_PATTERN)], n_tokens - sum(sizes)))
        i += 1
    return sizes


def sse(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


def http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def head(status: str, content_type: str, length: int | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{framing}\r\n"
            "Connection: keep-alive\r\n\r\n").encode()


def delta_chunk(content: str | None = None, role: bool = False, finish: str | None = None,
                running: int | None = None) -> dict:
    delta = {"role": "assistant"} if role else {}
    if content is not None:
        delta["content"] = content
    chunk = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "model": "scripted",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if running is not None:
        chunk["usage"] = {"prompt_tokens": 7, "completion_tokens": running, "total_tokens": 7 + running}
    return chunk


def word_prefix(request: dict) -> str:
    """Distinct prompts get distinct answers (the same prompt always the same): "w" + a prompt digest."""
    text = json.dumps(request.get("messages", []), sort_keys=True)
    return "w" + format(sum(text.encode()) % 4096, "x")


async def stream_answer(writer: asyncio.StreamWriter, script: Script, model: str, n_tokens: int,
                        received_ns: int, request_id: str, prefix: str) -> None:
    stamps = SendStamps(writer)
    written = 0 if stamps.start() else None  # bytes handed to the socket since the stamps' count began

    def send(data: bytes) -> None:
        nonlocal written
        writer.write(data)
        written = written + len(data) if written is not None else None

    send(head("200 OK", "text/event-stream"))
    send(http_chunk(sse(delta_chunk(role=True, content=""))))
    before, sent, nominal, tokens, ends, done = [], [], [], [], [], 0
    for index, size in enumerate(chunk_plan(n_tokens)):
        due = received_ns + script.first_ns + (done + size - 1) * script.gap_ns
        await asyncio.sleep(max(0, due - time.perf_counter_ns()) / 1e9)
        if model in ("drop", "cut", "malformed", "error_mid", "hang_mid") and index == 3:
            stamps.close()
            await misbehave(writer, model)
            return
        text = "".join(f" {prefix}-{done + k}" for k in range(size))
        running = done + size if model != "nousage" else None
        before.append(time.perf_counter_ns())
        send(http_chunk(sse(delta_chunk(text, running=running))))
        sent.append(time.perf_counter_ns())
        ends.append(written - 1 if written is not None else None)
        nominal.append(due)
        tokens.append(size)
        done += size
    await asyncio.sleep(script.finish_gap_s)
    send(http_chunk(sse(delta_chunk(finish="length"))))
    if model != "nousage":
        await asyncio.sleep(script.usage_delay_s)
        usage = {"prompt_tokens": 7, "completion_tokens": done, "total_tokens": 7 + done}
        send(http_chunk(sse({"id": "chatcmpl-scripted", "choices": [], "usage": usage})))
    tx = await stamps.wait_for(ends) if written is not None and ends else [None] * len(ends)
    # logged before [DONE], so a client that has seen [DONE] finds its entry in the log
    script.write_log({"request_id": request_id, "model": model, "received_ns": received_ns,
                      "before_ns": before, "content_ns": sent, "tx_ns": tx, "nominal_ns": nominal,
                      "content_tokens": tokens})
    writer.write(http_chunk(sse("[DONE]")) + b"0\r\n\r\n")


async def misbehave(writer: asyncio.StreamWriter, model: str) -> None:
    if model == "drop":
        writer.transport.abort()  # RST in the middle of the chunked body
    elif model == "cut":
        writer.write(b"0\r\n\r\n")  # a clean end of the body, but no [DONE]
    elif model == "malformed":
        writer.write(http_chunk(b'data: {"choices": [\n\n'))
    elif model == "error_mid":
        writer.write(http_chunk(sse({"error": {"message": "out of memory", "type": "server_error"}})))
        writer.write(http_chunk(sse("[DONE]")) + b"0\r\n\r\n")
    elif model == "hang_mid":
        await asyncio.sleep(3600)


async def whatwg_answer(writer: asyncio.StreamWriter) -> None:
    """Comments, data: without a space, one JSON split over two data lines, CRLF and bare CR ends,
    an event split across two writes."""
    writer.write(head("200 OK", "text/event-stream; charset=utf-8"))
    parts = [b": ping\r\n\r\n", b'data:{"choices":[{"delta":{"role":"assistant"}}]}\r\n\r\n',
             b'data: {"choices":[{"delta":\ndata: {"content":"Hel"}}]}\n\n',
             b'data: {"choices":[{"delta":{"content":"lo"}}]}\r', b"\r", b": keep-alive\n\n",
             b'event: message\nid: 7\ndata: {"choices":[{"delta":{"content":" there"}}]}\n\n',
             b"data: [DONE]\n\n"]
    for part in parts:
        for piece in (part[:5], part[5:]):
            if piece:  # an empty chunk would end the chunked body
                writer.write(http_chunk(piece))
                await writer.drain()
                await asyncio.sleep(0.002)
    writer.write(b"0\r\n\r\n")


def plain_answer(n_tokens: int, prefix: str) -> bytes:
    body = json.dumps({"id": "chatcmpl-plain", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "".join(f" {prefix}-{i}" for i in range(n_tokens))},
         "finish_reason": "length"}], "usage": {"prompt_tokens": 7, "completion_tokens": n_tokens,
                                                "total_tokens": 7 + n_tokens}}).encode()
    return head("200 OK", "application/json", len(body)) + body


def json_reply(status: str, payload: object, content_type: str = "application/json") -> bytes:
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    return head(status, content_type, len(body)) + body


def get_reply(path: str, style: str) -> bytes:
    not_found = json_reply("404 Not Found", {"error": {"message": "not found"}})
    if path == "/health" and style in ("llama", "loading"):
        return (json_reply("200 OK", {"status": "ok"}) if style == "llama"
                else json_reply("503 Service Unavailable", {"error": {"message": "Loading model", "code": 503}}))
    if path == "/v1/models" and style in ("llama", "models"):
        return json_reply("200 OK", {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
    if path == "/" and style == "ollama":
        return json_reply("200 OK", "Ollama is running", "text/plain")
    return not_found


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: Script) -> None:
    try:
        while True:
            try:  # like uvicorn, close a keep-alive connection that stays idle too long
                request_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), script.idle_close_s)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
                return
            lines = request_head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received_ns = time.perf_counter_ns()
            if method == "GET":
                writer.write(get_reply(path, script.health))
                continue
            request = json.loads(body or b"{}")
            model = request.get("model") or "calib"
            n_tokens = int(request.get("max_tokens") or 16)
            if model == "status500":
                writer.write(json_reply("500 Internal Server Error", {"error": {"message": "scripted failure"}}))
            elif model == "plain":
                writer.write(plain_answer(n_tokens, word_prefix(request)))
            elif model == "hang":
                await asyncio.sleep(3600)
            elif model == "whatwg":
                await whatwg_answer(writer)
            else:
                await stream_answer(writer, script, model, n_tokens, received_ns, headers.get("x-request-id", ""),
                                    word_prefix(request))
                if writer.transport.is_closing():
                    return
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        return
    finally:
        writer.close()


async def serve(script: Script, port: int) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, script), "127.0.0.1", port, backlog=256)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", default="")
    parser.add_argument("--first-ms", type=float, default=50.0)
    parser.add_argument("--gap-ms", type=float, default=10.0)
    parser.add_argument("--usage-delay-ms", type=float, default=0.0, help="pause before the usage chunk")
    parser.add_argument("--finish-gap-ms", type=float, default=0.0,
                        help="pause between the last content chunk and the finish chunk")
    parser.add_argument("--idle-close-ms", type=float, default=0.0, help="close idle keep-alive connections")
    parser.add_argument("--health", choices=HEALTH_STYLES, default="llama")
    args = parser.parse_args()
    # the parent closes our stdin (or dies): then stop, so no server outlives its test
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    asyncio.run(serve(Script(args), args.port))


if __name__ == "__main__":
    main()
