"""Small real Targets for the measurement tests: they stream a fixed token sequence with sleeps.

They implement the Target protocol in full (stream TokenEvents then one Usage); they stand in for
no existing component, they are the simplest thing that generates on a known schedule.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from harness.targets.base import Request, StreamItem, TokenEvent, Usage


class ScheduledTarget:
    """Yields ``tokens`` after ``first_delay_s``, then one every ``token_delay_s``.

    ``fail`` decides per request (by request_id) whether to raise after ``fail_after`` tokens.
    ``in_flight_peak`` records how many streams were open at once.
    """

    name = "scheduled"
    provider = "cpu"

    def __init__(self, tokens: tuple[int, ...] = (11, 12, 13, 14), *, first_delay_s: float = 0.01,
                 token_delay_s: float = 0.005, prompt_tokens: int = 7,
                 fail: Callable[[Request], bool] = lambda request: False, fail_after: int = 1,
                 clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.tokens = tokens
        self.first_delay_s = first_delay_s
        self.token_delay_s = token_delay_s
        self.prompt_tokens = prompt_tokens
        self.fail = fail
        self.fail_after = fail_after
        self.clock = clock
        self.in_flight = 0
        self.in_flight_peak = 0
        self._lock = threading.Lock()

    def stream(self, request: Request) -> Iterator[StreamItem]:
        with self._lock:
            self.in_flight += 1
            self.in_flight_peak = max(self.in_flight_peak, self.in_flight)
        try:
            time.sleep(self.first_delay_s)
            for position, token in enumerate(self.tokens[: request.max_new_tokens]):
                if position:
                    time.sleep(self.token_delay_s)
                if self.fail(request) and position == self.fail_after:
                    raise RuntimeError(f"request {request.request_id} failed on purpose")
                yield TokenEvent(token_id=token, text=f"<{token}>", t_ns=self.clock())
            generated = min(len(self.tokens), request.max_new_tokens)
            yield Usage(prompt_tokens=self.prompt_tokens, completion_tokens=generated,
                        finish_reason="length" if generated == request.max_new_tokens else "stop")
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self) -> None:
        pass


class ManualClock:
    """A clock the test moves by hand, so timings through measure_request are exact."""

    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self.now = start_ns

    def __call__(self) -> int:
        return self.now


class TimedTarget:
    """Streams tokens at hand-chosen instants of a ManualClock (no sleeping at all)."""

    name = "timed"
    provider = "cpu"

    def __init__(self, clock: ManualClock, offsets_ns: list[int], prompt_tokens: int, *,
                 end_offset_ns: int | None = None, raise_at: int | None = None, usage: bool = True) -> None:
        self.clock, self.offsets_ns, self.prompt_tokens = clock, offsets_ns, prompt_tokens
        self.end_offset_ns, self.raise_at, self.usage = end_offset_ns, raise_at, usage

    def stream(self, request: Request) -> Iterator[StreamItem]:
        start = self.clock.now
        for index, offset in enumerate(self.offsets_ns):
            self.clock.now = start + offset
            if index == self.raise_at:
                raise ValueError("engine exploded")
            yield TokenEvent(token_id=100 + index, text=chr(ord("a") + index), t_ns=self.clock.now)
        if self.end_offset_ns is not None:
            self.clock.now = start + self.end_offset_ns
        if self.usage:
            yield Usage(prompt_tokens=self.prompt_tokens, completion_tokens=len(self.offsets_ns))

    def close(self) -> None:
        pass
