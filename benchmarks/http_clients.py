"""Which HTTP client measures a stream best: timestamp error and client CPU at concurrency 1/16/64.

    pip install aiohttp httpx   # only for the comparison; the harness needs neither
    python benchmarks/http_clients.py [--rounds 2] [--tokens 20]

Every client streams the same scripted answers (tests/scripted_server.py, a child process: first
content after 50 ms, a token every 10 ms, chunks of 1/1/3 tokens) with the same minimal work per
event (split SSE lines, json.loads, stamp content chunks). Reported per client and concurrency:
the distance from the arrival stamp to the server's write call (just before .. just after)
over every content chunk (p50, p99, max, ms), the process
CPU time per request (ms) and the share of one core, and failed requests. Clients:
    harness       harness.targets.http (blocking sockets in the load's threads, kernel stamps)
    harness-user  the same, stamped in Python after each read (as on Windows or over TLS)
    http.client   the standard library, one connection per thread
    httpx         httpx.Client in threads (a shared pool)
    httpx-async   httpx.AsyncClient, all streams on one event loop (encode/httpx#3215)
    aiohttp       aiohttp.ClientSession on one event loop (64 KiB line limit: vllm#39963)
The run order of the clients is rotated every round, so machine load drifts over all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from http_calibration import run_calibration, scripted_server  # noqa: E402

from harness.targets import http_wire  # noqa: E402
from harness.targets.http import HttpTarget  # noqa: E402

Arrivals = dict[str, list[int]]  # request id -> arrival ns of each content chunk


def body(request_id: str, tokens: int) -> dict:
    return {"model": "calib", "messages": [{"role": "user", "content": "x"}], "max_tokens": tokens,
            "stream": True, "stream_options": {"include_usage": True}}


def content_stamp(line: bytes | str, stamps: list[int]) -> None:
    text = line.decode() if isinstance(line, bytes) else line
    if text.startswith("data:") and "[DONE]" not in text:
        t_ns = time.perf_counter_ns()
        choices = json.loads(text[5:]).get("choices") or []
        if choices and choices[0].get("delta", {}).get("content"):
            stamps.append(t_ns)


# -- clients ----------------------------------------------------------------------------------


def run_harness(url: str, concurrency: int, total: int, tokens: int, tag: str) -> Arrivals:
    target = HttpTarget(url)
    records = run_calibration(target, concurrency, total, tokens, tag=tag)
    target.close()
    return {f"{tag}{r.case_id}-{r.request_index}": r.details.get("content_chunk_ns", []) for r in records}


def run_harness_user(url: str, concurrency: int, total: int, tokens: int, tag: str) -> Arrivals:
    saved = http_wire._SO_TIMESTAMPNS
    http_wire._SO_TIMESTAMPNS = None  # what a platform without kernel stamps gets
    try:
        return run_harness(url, concurrency, total, tokens, tag)
    finally:
        http_wire._SO_TIMESTAMPNS = saved


def threaded(one: Callable[[str], list[int]], concurrency: int, total: int, tag: str) -> Arrivals:
    ids = [f"{tag}c{concurrency}-{i}" for i in range(total)]
    with ThreadPoolExecutor(concurrency) as pool:
        return dict(zip(ids, pool.map(one, ids)))


def run_http_client(url: str, concurrency: int, total: int, tokens: int, tag: str) -> Arrivals:
    host, port = url.split("//")[1].split(":")
    local = threading.local()

    def one(request_id: str) -> list[int]:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(host, int(port))
        local.connection.request("POST", "/v1/chat/completions", json.dumps(body(request_id, tokens)),
                                 {"Content-Type": "application/json", "X-Request-Id": request_id})
        response, stamps = local.connection.getresponse(), []
        while line := response.readline():
            content_stamp(line, stamps)
        return stamps

    return threaded(one, concurrency, total, tag)


def run_httpx(url: str, concurrency: int, total: int, tokens: int, tag: str) -> Arrivals:
    import httpx

    with httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        def one(request_id: str) -> list[int]:
            stamps: list[int] = []
            with client.stream("POST", "/v1/chat/completions", json=body(request_id, tokens),
                               headers={"X-Request-Id": request_id}) as response:
                for line in response.iter_lines():
                    content_stamp(line, stamps)
            return stamps

        return threaded(one, concurrency, total, tag)


async def _gather(one: Callable, concurrency: int, total: int, tag: str) -> Arrivals:
    ids = [f"{tag}c{concurrency}-{i}" for i in range(total)]
    queue = list(reversed(ids))
    out: Arrivals = {}

    async def worker() -> None:
        while queue:
            request_id = queue.pop()
            out[request_id] = await one(request_id)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def run_httpx_async(url: str, concurrency: int, total: int, tokens: int, tag: str) -> Arrivals:
    import httpx

    async def main() -> Arrivals:
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
            async def one(request_id: str) -> list[int]:
                stamps: list[int] = []
                async with client.stream("POST", "/v1/chat/completions", json=body(request_id, tokens),
                                         headers={"X-Request-Id": request_id}) as response:
                    async for line in response.aiter_lines():
                        content_stamp(line, stamps)
                return stamps

            return await _gather(one, concurrency, total, tag)

    return asyncio.run(main())


def run_aiohttp(url: str, concurrency: int, total: int, tokens: int, tag: str) -> Arrivals:
    import aiohttp

    async def main() -> Arrivals:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector) as session:
            async def one(request_id: str) -> list[int]:
                stamps: list[int] = []
                async with session.post("/v1/chat/completions", json=body(request_id, tokens),
                                        headers={"X-Request-Id": request_id}) as response:
                    async for line in response.content:
                        content_stamp(line, stamps)
                return stamps

            return await _gather(one, concurrency, total, tag)

    return asyncio.run(main())


CLIENTS = {"harness": run_harness, "harness-user": run_harness_user, "http.client": run_http_client,
           "httpx": run_httpx, "httpx-async": run_httpx_async, "aiohttp": run_aiohttp}


def available() -> dict[str, Callable]:
    chosen = {}
    for name, run in CLIENTS.items():
        module = {"httpx": "httpx", "httpx-async": "httpx", "aiohttp": "aiohttp"}.get(name)
        try:
            if module:
                __import__(module)
            chosen[name] = run
        except ImportError:
            print(f"{name}: not installed, skipped")
    return chosen


def errors_ms(arrivals: Arrivals, log: dict[str, dict]) -> tuple[list[float], int]:
    errors, failed = [], 0
    for request_id, stamps in arrivals.items():
        entry = log.get(request_id, {})
        after, before = entry.get("content_ns", []), entry.get("before_ns", [])
        if not stamps or len(stamps) != len(after):
            failed += 1
            continue
        # distance from the stamp to the server's [before write, after write] interval
        errors += [max(lo - t, t - hi, 0) / 1e6 for t, lo, hi in zip(stamps, before, after)]
    return errors, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each round runs every client once per level")
    parser.add_argument("--tokens", type=int, default=20)
    args = parser.parse_args()
    clients = available()
    results: dict[tuple[str, int], dict] = {}
    with scripted_server() as server:
        for round_ in range(args.rounds):
            names = list(clients)[round_ % len(clients):] + list(clients)[: round_ % len(clients)]
            for concurrency in (1, 16, 64):
                for name in names:
                    tag = f"{name}-r{round_}-"
                    cpu, wall = time.process_time(), time.perf_counter()
                    arrivals = clients[name](server.url, concurrency, concurrency * 2, args.tokens, tag)
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    errors, failed = errors_ms(arrivals, server.log_entries())
                    slot = results.setdefault((name, concurrency), {"errors": [], "cpu": 0.0, "wall": 0.0, "n": 0, "failed": 0})
                    slot["errors"] += errors
                    slot["cpu"] += cpu
                    slot["wall"] += wall
                    slot["n"] += len(arrivals)
                    slot["failed"] += failed
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.rounds} rounds x 2 requests per worker, {args.tokens} tokens each")
    print(f"{'client':<13} {'conc':>4} {'err p50':>8} {'err p99':>8} {'err max':>8} {'cpu/req':>8} {'core %':>7} {'failed':>6}")
    for (name, concurrency), slot in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        data = np.array(slot["errors"]) if slot["errors"] else np.array([np.nan])
        print(f"{name:<13} {concurrency:>4} {np.percentile(data, 50):8.3f} {np.percentile(data, 99):8.3f} "
              f"{data.max():8.3f} {1e3 * slot['cpu'] / max(slot['n'], 1):8.3f} {100 * slot['cpu'] / slot['wall']:7.1f} "
              f"{slot['failed']:>6}")


if __name__ == "__main__":
    main()
