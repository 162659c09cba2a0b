"""Connections for the HTTP target: a keep-alive pool of plain blocking sockets.

Why blocking sockets in the caller's thread: load workers are threads (harness.measure.load), so a
connection per worker needs no event loop to bridge, each request's client CPU time is that
thread's own (``time.thread_time``), and arrival times come from the kernel (http_wire.py).
benchmarks/http_clients.py measured this against aiohttp and httpx.

Connection set-up is measured apart: a request that has to connect records how long it took; a
pooled connection that the server has closed meanwhile (uvicorn drops idle keep-alive after 5 s) is
found before use, dropped and counted, so the request reconnects instead of failing.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.errors import HarnessError
from harness.targets.http_wire import Wire


@dataclass(frozen=True)
class HttpTimeouts:
    connect_s: float = 5.0  # TCP (and TLS) set-up
    first_byte_s: float = 60.0  # request sent -> response headers
    total_s: float = 300.0  # submit -> end of the response

    def __post_init__(self) -> None:
        for name in ("connect_s", "first_byte_s", "total_s"):
            if not getattr(self, name) > 0:
                raise HarnessError(f"HTTP timeout {name} must be > 0 (got {getattr(self, name)})")


class HttpFailure(Exception):
    """A failed request: ``error_kind`` groups failures in the records; ``details`` is what was seen."""

    def __init__(self, error_kind: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_kind = error_kind
        self.details = details if details is not None else {}


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    base_path: str  # "" or "/prefix" without the trailing slash

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.base_path}"


def parse_endpoint(url: str) -> Endpoint:
    """``http://host:port[/prefix]``; a bad URL is a one-line error naming the fix."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HarnessError(f"target URL {url!r} is not http(s)://host[:port]: e.g. --target-url http://127.0.0.1:8000")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise HarnessError(f"target URL {url!r} has a bad port: e.g. --target-url http://127.0.0.1:8000") from None
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):  # people paste the OpenAI base_url; the target adds /v1 itself
        path = path[: -len("/v1")]
    return Endpoint(parts.scheme, parts.hostname, port, path)


class Connection:
    """One keep-alive socket and its response reader."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint) -> None:
        self.sock = sock
        self.wire = Wire(sock)
        self.endpoint = endpoint

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def still_open(self) -> bool:
        """An idle keep-alive socket that is readable has been closed (or written to) by the server."""
        try:
            if hasattr(select, "poll"):  # select() cannot watch descriptors above 1023
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return not poller.poll(0)
            readable, _, _ = select.select([self.sock], [], [], 0)
            return not readable
        except (OSError, ValueError):
            return False


@dataclass
class Lease:
    """A connection handed to one request, with how it was obtained."""

    connection: Connection
    connect_s: float | None  # None: reused from the pool
    stale_dropped: int  # pooled connections found closed by the server and discarded first


class ConnectionPool:
    """Idle keep-alive connections, most recently used first (thread-safe)."""

    def __init__(self, endpoint: Endpoint, timeouts: HttpTimeouts) -> None:
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.opened = 0  # connections opened over the pool's life
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def acquire(self) -> Lease:
        stale = 0
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                connection, connect_s = self._open()
                return Lease(connection, connect_s, stale)
            if connection.still_open():
                return Lease(connection, None, stale)
            connection.close()
            stale += 1

    def release(self, connection: Connection) -> None:
        with self._lock:
            self._idle.append(connection)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _open(self) -> tuple[Connection, float]:
        endpoint = self.endpoint
        started = time.perf_counter()
        try:
            sock = socket.create_connection((endpoint.host, endpoint.port), timeout=self.timeouts.connect_s)
            # Nagle + delayed ACK would hold the small request write back by up to ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=endpoint.host)
        except ConnectionRefusedError as error:
            raise HttpFailure("connection_refused", f"{endpoint.url} refused the connection ({error})") from None
        except (socket.timeout, TimeoutError):
            raise HttpFailure("connect_timeout", f"no connection to {endpoint.url} within {self.timeouts.connect_s} s") from None
        except OSError as error:
            raise HttpFailure("connect_error", f"cannot connect to {endpoint.url}: {error}") from None
        connect_s = time.perf_counter() - started
        with self._lock:
            self.opened += 1
        return Connection(sock, endpoint), connect_s
