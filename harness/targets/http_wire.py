"""HTTP/1.1 on one socket, with each received piece stamped by the kernel where the OS allows.

Why not a client library: a timestamp taken in Python after a read is late by however long the
thread waited for a core and for the GIL. With 64 streams on a busy 2-core machine that reached
8 ms at p99. Linux stamps every received packet (SO_TIMESTAMPNS, wall clock); reading with
``recvmsg`` returns the stamp of the last packet read, so the harness peeks at the queued bytes and
reads only up to the end of the first server-sent event: each event then carries the time its
packet arrived, however late the thread got to it. Elsewhere (or over TLS) pieces are stamped with
``perf_counter_ns`` right after the read. ``stamps`` says which.
"""

from __future__ import annotations

import platform
import socket
import struct
import sys
import time
from typing import Iterator

RECV_SIZE = 65536
HEAD_LIMIT = 64 * 1024
# Python's socket module does not export SO_TIMESTAMPNS; 35 is asm-generic's value (x86, arm,
# aarch64, riscv, powerpc, s390). Architectures with other numbers keep the Python-side stamps.
_LINUX_GENERIC = sys.platform.startswith("linux") and platform.machine().lower() in (
    "x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv7l", "armv8l", "riscv64", "ppc64le", "ppc64", "s390x")
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if _LINUX_GENERIC else None)
_SCM_TIMESTAMPNS = getattr(socket, "SCM_TIMESTAMPNS", _SO_TIMESTAMPNS)
_ANCILLARY = socket.CMSG_SPACE(16) if hasattr(socket, "CMSG_SPACE") else 0
EVENT_ENDS = (b"\n\n", b"\n\r\n", b"\r\r")


_offset: int | None = None  # the last wall clock - perf_counter offset read with a tight bracket
TIGHT_BRACKET_NS = 20_000


def wall_minus_perf_ns() -> int:
    """The wall clock's lead over perf_counter now (kernel stamps are wall clock).

    Linux changes it only when the wall clock is set (frequency slewing moves both clocks alike),
    but a clock may be set often: a VM here was seen stepping it by 0.5 ms every 100 ms, and an
    offset kept for half a second put the stamps up to 2.5 ms off. So every stamp reads a fresh
    perf/wall/perf bracket and uses it when it is tight (< 20 us). A wide one means the thread was
    preempted between the reads (milliseconds on a busy machine): the last tight offset is used
    instead, and until there is one, the tightest of a few tries.
    """
    global _offset
    best_width, best = 1 << 62, 0
    for _ in range(2 if _offset is not None else 8):
        before = time.perf_counter_ns()
        wall = time.time_ns()
        after = time.perf_counter_ns()
        if after - before < best_width:
            best_width, best = after - before, wall - (before + after) // 2
        if best_width < TIGHT_BRACKET_NS:
            break
    if best_width < TIGHT_BRACKET_NS or _offset is None:
        _offset = best
    return _offset


class WireError(Exception):
    """The peer broke HTTP framing, or closed the connection in the middle of a response."""


def enable_kernel_stamps(sock: socket.socket) -> bool:
    if _SO_TIMESTAMPNS is None or not hasattr(sock, "recvmsg"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


class Wire:
    """Reads one response at a time from ``sock`` (timeouts are the socket's own)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stamps = "kernel" if enable_kernel_stamps(sock) else "user"
        self._pending = b""  # bytes read beyond what the current parser step used
        self._pending_ns = 0
        # Stamps that are only upper bounds of their piece's arrival, by cause: taken in Python because the
        # kernel gave none for that read (Linux stamps packets only once timestamping is on system-wide,
        # which it turns on with a delay); or read when later bytes were already queued, which the kernel
        # may have merged into the packet whose (later) stamp the read returns.
        self.user_stamped: set[int] = set()
        self.read_behind: set[int] = set()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    # -- receiving ----------------------------------------------------------------------------

    def _receive(self) -> tuple[bytes, int]:
        """The next piece of bytes and when it arrived (perf_counter_ns clock); b"" at EOF."""
        if self._pending:
            piece, self._pending = self._pending, b""
            return piece, self._pending_ns
        if self.stamps == "kernel":
            return self._receive_stamped()
        data = self.sock.recv(RECV_SIZE)
        return data, time.perf_counter_ns()

    def _receive_stamped(self) -> tuple[bytes, int]:
        queued = self.sock.recv(RECV_SIZE, socket.MSG_PEEK)
        if not queued:
            return b"", time.perf_counter_ns()
        ends = [queued.find(mark) + len(mark) for mark in EVENT_ENDS if mark in queued]
        size = min(ends) if ends else len(queued)
        data, ancillary, _, _ = self.sock.recvmsg(size, _ANCILLARY)
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS and len(raw) in (8, 16):
                seconds, nanoseconds = struct.unpack("qq" if len(raw) == 16 else "ii", raw)
                stamp = seconds * 1_000_000_000 + nanoseconds - wall_minus_perf_ns()
                if self._more_queued():
                    self.read_behind.add(stamp)
                return data, stamp
        stamp = time.perf_counter_ns()
        self.user_stamped.add(stamp)
        return data, stamp

    def _more_queued(self) -> bool:
        """After a read: bytes beyond the event's own chunk-ending CRLF already wait (checked after the read,
        not before it: a packet can arrive, and be merged, while the thread waits between the two calls)."""
        timeout = self.sock.gettimeout()
        self.sock.settimeout(0.0)  # a socket with a timeout would first wait for data to come
        try:
            return len(self.sock.recv(3, socket.MSG_PEEK)) > 2
        except (BlockingIOError, InterruptedError):
            return False
        finally:
            self.sock.settimeout(timeout)

    def _unread(self, data: bytes, t_ns: int) -> None:
        if data:
            self._pending, self._pending_ns = data + self._pending, t_ns

    def read_head(self) -> tuple[int, str, dict[str, str]]:
        """Status line and headers (names lower-cased)."""
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            data, t_ns = self._receive()
            if not data:
                raise WireError("the server closed the connection before answering" if not buffer
                                else "the connection closed inside the response headers")
            buffer += data
            if len(buffer) > HEAD_LIMIT:
                raise WireError(f"response headers longer than {HEAD_LIMIT} bytes")
        head, _, rest = buffer.partition(b"\r\n\r\n")
        self._unread(rest, t_ns)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise WireError(f"not an HTTP response: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), parts[2] if len(parts) > 2 else "", headers

    def body(self, headers: dict[str, str]) -> Iterator[tuple[bytes, int]]:
        """The body's bytes as they arrive, de-chunked: (bytes, arrival ns)."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            yield from self._chunked()
        elif "content-length" in headers:
            yield from self._sized(int(headers["content-length"]))
        else:
            yield from self._until_close()

    def _sized(self, length: int) -> Iterator[tuple[bytes, int]]:
        while length > 0:
            data, t_ns = self._receive()
            if not data:
                raise WireError(f"the connection closed {length} bytes before the end of the body")
            piece, extra = data[:length], data[length:]
            self._unread(extra, t_ns)
            length -= len(piece)
            yield piece, t_ns

    def _until_close(self) -> Iterator[tuple[bytes, int]]:
        while True:
            data, t_ns = self._receive()
            if not data:
                return
            yield data, t_ns

    def _chunked(self) -> Iterator[tuple[bytes, int]]:
        while True:
            size_line = self._line()
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise WireError(f"bad chunk-size line {size_line[:40]!r}") from None
            if size == 0:
                while self._line():  # trailers, up to the blank line
                    pass
                return
            yield from self._sized(size)
            if self._line():
                raise WireError("chunk data not followed by CRLF")

    def _line(self) -> bytes:
        buffer = b""
        while b"\n" not in buffer:
            data, t_ns = self._receive()
            if not data:
                raise WireError("the connection closed in the middle of the chunked body")
            buffer += data
            if len(buffer) > HEAD_LIMIT:
                raise WireError("chunk-size line too long")
        line, _, rest = buffer.partition(b"\n")
        self._unread(rest, t_ns)
        return line.rstrip(b"\r")
