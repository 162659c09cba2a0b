"""Engine generations in worker threads, their events handed to the event loop.

Each request runs ``Engine.stream`` in a thread of one pool (the engine's sessions are shared;
each request owns its IOBinding and KV cache, and providers that take one Run at a time, such as
DirectML, serialise inside the engine). The thread posts every event to the request's asyncio
queue; between tokens it checks the request's ``cancel`` flag, so a client that goes away, a stop
string, or shutdown ends the generation within one decode step.

Before generating, a request reserves its KV cache in the pool's ``KVBudget`` (admission.py) and
may wait there for room. Events, in order: ``Accepted`` (prompt tokenized and within the context),
``TokenEvent`` per token,
``Usage``, then ``END``; or an ``ApiError`` then ``END``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.serve.admission import KVBudget, kv_bytes_per_token
from harness.serve.api_error import ApiError, one_line
from harness.serve.schemas import ChatParams
from harness.targets.base import Request, TokenEvent

log = logging.getLogger("harness.serve")

END = object()  # the last event of every generation
RECENT = 256  # finished generations kept for /health counters and the tests


@dataclass(frozen=True)
class Accepted:
    prompt_tokens: int
    max_new_tokens: int


@dataclass(frozen=True)
class Outcome:
    """How one generation ended, as the worker saw it."""

    outcome: str  # finished | cancelled | refused | failed
    generated: int  # tokens the engine produced
    max_new_tokens: int


class Generation:
    """One request's link between its worker thread and the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancel = threading.Event()
        self._loop = loop

    def post(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is gone, nobody is listening
            self.cancel.set()

    async def next_batch(self) -> list[Any]:
        """Every event waiting now (at least one): a slow reader gets several tokens per wake-up."""
        items = [await self.queue.get()]
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items


def context_limit(engine: Any) -> int:
    """Prompt + generated tokens the model takes (the engine's own rule)."""
    return min(engine.config.context_length, engine.config.max_length)


class GenerationPool:
    def __init__(self, engine: Any, max_workers: int, kv_budget_bytes: int) -> None:
        self.engine = engine
        self.max_workers = max_workers
        self.limit = context_limit(engine)
        self.kv = KVBudget(max(1, kv_budget_bytes // kv_bytes_per_token(engine)))
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="phi3-generate")
        self._lock = threading.Lock()
        self._in_flight: set[Generation] = set()
        self.peak_active = 0
        self.recent: deque[Outcome] = deque(maxlen=RECENT)

    @property
    def active(self) -> int:
        """Requests in flight: generating, or waiting for a worker."""
        return len(self._in_flight)

    def start(self, params: ChatParams) -> Generation:
        generation = Generation(asyncio.get_running_loop())
        with self._lock:
            self._in_flight.add(generation)
            self.peak_active = max(self.peak_active, len(self._in_flight))
        self._executor.submit(self._run, generation, params)
        return generation

    def shutdown(self) -> None:
        """Cancel everything in flight; queued requests still run, see the flag and end at once."""
        with self._lock:
            for generation in self._in_flight:
                generation.cancel.set()
                generation.post(ApiError(503, "the server is shutting down: retry when it is back"))
        self._executor.shutdown(wait=False)

    def _run(self, generation: Generation, params: ChatParams) -> None:
        outcome = Outcome("refused", 0, 0)
        try:
            outcome = self._generate(generation, params)
        except ApiError as error:
            generation.post(error)
        except HarnessError as error:  # the engine's own refusals are the caller's input
            generation.post(ApiError(400, str(error)))
        except Exception as error:  # an ORT failure mid-run: the client gets it, the server goes on
            log.error("generation failed: %s", one_line(error))
            generation.post(ApiError(500, f"generation failed: {type(error).__name__}"))
            outcome = Outcome("failed", 0, 0)
        finally:
            with self._lock:  # recorded before it leaves: whoever sees it gone (``active``) finds its outcome
                self.recent.append(outcome)
                self._in_flight.discard(generation)
            generation.post(END)

    def _generate(self, generation: Generation, params: ChatParams) -> Outcome:
        if generation.cancel.is_set():  # gone while waiting for a worker
            return Outcome("cancelled", 0, 0)
        prompt_ids = self.engine.prompt_ids(Request(messages=params.messages))
        max_new = self._budget(len(prompt_ids), params.max_tokens)
        generation.post(Accepted(len(prompt_ids), max_new))
        reserved = len(prompt_ids) + max_new  # the KV positions the engine will allocate
        if not self.kv.acquire(reserved, generation.cancel):
            return Outcome("cancelled", 0, max_new)
        try:
            return self._relay(generation, engine_request(params, prompt_ids, max_new))
        finally:
            self.kv.release(reserved)

    def _relay(self, generation: Generation, request: Request) -> Outcome:
        stream = self.engine.stream(request)
        generated = 0
        try:
            for item in stream:
                generation.post(item)
                if isinstance(item, TokenEvent):
                    generated += 1
                    if generation.cancel.is_set():  # checked before the next decode step runs
                        return Outcome("cancelled", generated, request.max_new_tokens)
        finally:
            stream.close()
        return Outcome("finished", generated, request.max_new_tokens)

    def _budget(self, prompt_tokens: int, max_tokens: int | None) -> int:
        room = self.limit - prompt_tokens
        if room < 1:
            raise ApiError(
                400,
                f"the prompt is {prompt_tokens} tokens but the model's context is {self.limit}: "
                f"shorten the messages to at most {self.limit - 1} tokens",
                param="messages",
                code="context_length_exceeded",
            )
        return room if max_tokens is None else min(max_tokens, room)


def engine_request(params: ChatParams, prompt_ids: list[int], max_new_tokens: int) -> Request:
    return Request(
        prompt_ids=tuple(prompt_ids),
        max_new_tokens=max_new_tokens,
        greedy=params.greedy,
        temperature=params.temperature if not params.greedy else 1.0,
        top_k=params.top_k,
        top_p=params.top_p,
        seed=params.seed,
        ignore_eos=params.ignore_eos,
    )
