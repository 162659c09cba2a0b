"""Targets that misbehave in one way each, wrapping the real engine behind the real Target protocol.

They prove the checklist catches what it claims to: a leak, cross-talk between concurrent requests,
requests run one at a time, a wrong chat template. Each is a few lines on top of Engine.stream.
"""

from __future__ import annotations

import itertools
import mmap
import threading
from typing import Iterator

from harness.targets.base import Request, StreamItem, TokenEvent, Usage
from harness.targets.engine import Engine

MIB = 1024**2


class Wrapped:
    """The engine as it is; subclasses change one thing."""

    name = "engine"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.provider = engine.provider

    def stream(self, request: Request) -> Iterator[StreamItem]:
        yield from self.engine.stream(request)

    def close(self) -> None:
        pass


class LeakingTarget(Wrapped):
    """Keeps ``leak_mib`` MiB of written (so resident) memory per request, forever.

    Fresh anonymous pages from mmap: a malloc'ed buffer could reuse memory that earlier tests freed
    but the allocator kept resident, and then the leak would not show in RSS at all.
    """

    def __init__(self, engine: Engine, leak_mib: float) -> None:
        super().__init__(engine)
        self.kept: list[mmap.mmap] = []
        self.leak_bytes = int(leak_mib * MIB)

    def stream(self, request: Request) -> Iterator[StreamItem]:
        yield from self.engine.stream(request)
        if self.leak_bytes:
            pages = mmap.mmap(-1, self.leak_bytes)
            pages.write(b"\x01" * self.leak_bytes)
            self.kept.append(pages)

    def close(self) -> None:
        for pages in self.kept:
            pages.close()


class SwappingTarget(Wrapped):
    """While another request is in flight, answers that request's prompt instead of its own."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._lock = threading.Lock()
        self._in_flight: dict[int, Request] = {}
        self._keys = itertools.count()

    def stream(self, request: Request) -> Iterator[StreamItem]:
        key = next(self._keys)
        with self._lock:
            others = list(self._in_flight.values())
            self._in_flight[key] = request
        try:
            yield from self.engine.stream(others[-1] if others else request)
        finally:
            with self._lock:
                del self._in_flight[key]


class SerialisingTarget(Wrapped):
    """Runs one request at a time: the others wait inside ``stream`` until it is done."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._lock = threading.Lock()

    def stream(self, request: Request) -> Iterator[StreamItem]:
        with self._lock:
            yield from self.engine.stream(request)


def wrong_template(messages: tuple[tuple[str, str], ...]) -> str:
    """Phi-3's template without the ``<|end|>`` after each turn: a plausible mistake."""
    return "".join(f"<|{role}|>\n{content}\n" for role, content in messages) + "<|assistant|>\n"


class WrongTemplateTarget(Wrapped):
    """Renders chat requests with ``wrong_template`` and reports the tokens of that prompt."""

    def stream(self, request: Request) -> Iterator[StreamItem]:
        tokenizer = self.engine.tokenizer
        ids = tuple(tokenizer.encode(wrong_template(request.messages), add_bos=True))
        for item in self.engine.stream(Request(prompt_ids=ids, max_new_tokens=request.max_new_tokens)):
            yield item if isinstance(item, (TokenEvent, Usage)) else item
