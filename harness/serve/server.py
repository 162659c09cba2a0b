"""The app on uvicorn: bind the socket, start loading once the app starts, stop cleanly.

``serve_forever`` is what ``phi3-harness serve`` runs (Ctrl-C stops it; uvicorn re-raises the
signal afterwards, so the command exits 130 like every other). ``RunningServer`` runs the same
server on a thread for tests and benchmarks (``port=0`` takes an ephemeral port).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from harness.errors import HarnessError
from harness.serve.app import build_app
from harness.serve.state import ModelState, ServeOptions

log = logging.getLogger("harness.serve")

# Idle keep-alive connections stay open this long (uvicorn's default, 5 s, makes a client that
# pauses between requests reconnect, and the reconnect lands in its next TTFT).
KEEP_ALIVE_S = 75
GRACEFUL_SHUTDOWN_S = 5  # in-flight replies are cancelled at shutdown; this bounds the rest
BACKLOG = 2048


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":  # on Windows SO_REUSEADDR lets another process take the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Nagle + delayed ACK can hold a small chunk ~40 ms; asyncio also sets this on every accepted socket
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise HarnessError(
            f"cannot listen on {host}:{port} ({error.strerror or error}): pick another --port or stop what uses it"
        ) from None
    sock.listen(BACKLOG)
    return sock


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: ModelState) -> None:
        super().__init__(config)
        self.state = state

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # serve_forever handles the signals itself: uvicorn's own handling re-raises SIGINT inside
        # the event loop after shutdown, which prints a traceback from the lifespan task
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # cancel generations first: uvicorn would otherwise wait for every open stream to end
        self.state.close()
        await super().shutdown(sockets)


def make_server(state: ModelState) -> _Server:
    def on_startup() -> None:
        threading.Thread(target=_load, args=(state, server), name="phi3-load", daemon=True).start()

    config = uvicorn.Config(
        build_app(state, on_startup),
        log_config=None,  # the command configures logging; uvicorn keeps to warnings
        log_level="warning",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    server = _Server(config, state)
    return server


def _load(state: ModelState, server: _Server) -> None:
    state.load()
    if state.status == "ready":
        log.info("%s on %s (%s) at %s, loaded in %.2f s", state.model_name, state.provider,
                 ", ".join(state.engine.session.get_providers()), url_of(state.options), state.engine.load_seconds)
    else:
        log.error("the model did not load: %s", state.error)
        server.should_exit = True


def url_of(options: ServeOptions) -> str:
    host = f"[{options.host}]" if ":" in options.host else options.host
    return f"http://{host}:{options.port}"


def with_bound_port(options: ServeOptions, sock: socket.socket) -> ServeOptions:
    """The options with the port actually bound (``--port 0`` takes a free one)."""
    return dataclasses.replace(options, port=sock.getsockname()[1])


def exposure_warning(options: ServeOptions) -> str | None:
    """A line to print when other machines can reach the server and no key guards it."""
    try:
        local = options.host == "localhost" or ipaddress.ip_address(options.host).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        local = False
    if local or options.api_key is not None:
        return None
    return f"{options.host} can be reached from other machines and no --api-key is set: anyone there can use it"


def serve_forever(options: ServeOptions) -> int:
    """Serve until Ctrl-C; 2 when the model does not load."""
    sock = bind_socket(options.host, options.port)
    options = with_bound_port(options, sock)
    state = ModelState(options)
    server = make_server(state)
    log.info("listening at %s, loading %s on %s (/health answers 503 until ready)", url_of(options),
             options.model_dir or "the embedded tiny Phi-3", options.provider)
    warning = exposure_warning(options)
    if warning:
        log.warning(warning)
    with _stop_on_signals(server) as received:
        server.run(sockets=[sock])
    if received:
        log.info("stopped (%s)", signal.Signals(received[0]).name)
        return 128 + received[0]  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports them
    return 2 if state.status == "failed" else 0


@contextlib.contextmanager
def _stop_on_signals(server: uvicorn.Server) -> Iterator[list[int]]:
    """First SIGINT/SIGTERM: graceful stop (in-flight replies are cancelled); a second: stop now."""
    received: list[int] = []

    def handle(signum: int, frame: Any) -> None:
        received.append(signum)
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    signals = [signal.SIGINT, signal.SIGTERM]
    previous = {signum: signal.signal(signum, handle) for signum in signals}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class RunningServer:
    """``with RunningServer(options) as server:`` a ready server on a thread; ``server.url``."""

    def __init__(self, options: ServeOptions, wait_ready_s: float = 60.0) -> None:
        self.sock = bind_socket(options.host, options.port)
        self.options = with_bound_port(options, self.sock)
        self.state = ModelState(self.options)
        self.server = make_server(self.state)
        self._wait_ready_s = wait_ready_s
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="phi3-serve", daemon=True)

    @property
    def url(self) -> str:
        return url_of(self.options)

    def start(self, wait: bool = True) -> RunningServer:
        self._thread.start()
        if wait and not self.state.loaded.wait(self._wait_ready_s):
            self.stop()
            raise HarnessError(f"the server did not load its model within {self._wait_ready_s:.0f} s")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self.sock.close()

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
