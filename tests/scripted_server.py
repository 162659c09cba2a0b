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
written to the socket (``before_ns``, ``content_ns``): the chunk left somewhere in between.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
        self.idle_close_s = args.idle_close_ms / 1e3 or None
        self.log = open(args.log, "a", encoding="utf-8") if args.log else None  # noqa: SIM115

    def write_log(self, entry: dict) -> None:
        if self.log is not None:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()


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
    writer.write(head("200 OK", "text/event-stream"))
    writer.write(http_chunk(sse(delta_chunk(role=True, content=""))))
    before, sent, nominal, tokens, done = [], [], [], [], 0
    for index, size in enumerate(chunk_plan(n_tokens)):
        due = received_ns + script.first_ns + (done + size - 1) * script.gap_ns
        await asyncio.sleep(max(0, due - time.perf_counter_ns()) / 1e9)
        if model in ("drop", "cut", "malformed", "error_mid", "hang_mid") and index == 3:
            await misbehave(writer, model)
            return
        text = "".join(f" {prefix}-{done + k}" for k in range(size))
        running = done + size if model != "nousage" else None
        before.append(time.perf_counter_ns())
        writer.write(http_chunk(sse(delta_chunk(text, running=running))))
        sent.append(time.perf_counter_ns())
        nominal.append(due)
        tokens.append(size)
        done += size
    writer.write(http_chunk(sse(delta_chunk(finish="length"))))
    if model != "nousage":
        await asyncio.sleep(script.usage_delay_s)
        usage = {"prompt_tokens": 7, "completion_tokens": done, "total_tokens": 7 + done}
        writer.write(http_chunk(sse({"id": "chatcmpl-scripted", "choices": [], "usage": usage})))
    # logged before [DONE], so a client that has seen [DONE] finds its entry in the log
    script.write_log({"request_id": request_id, "model": model, "received_ns": received_ns,
                      "before_ns": before, "content_ns": sent, "nominal_ns": nominal, "content_tokens": tokens})
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
    parser.add_argument("--idle-close-ms", type=float, default=0.0, help="close idle keep-alive connections")
    parser.add_argument("--health", choices=HEALTH_STYLES, default="llama")
    args = parser.parse_args()
    # the parent closes our stdin (or dies): then stop, so no server outlives its test
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    asyncio.run(serve(Script(args), args.port))


if __name__ == "__main__":
    main()
