"""A live progress line while the suites measure: test, tests done/total, requests, elapsed.

The suites run in a child process whose output ``run`` relays (and pytest captures a test's
stderr), so the child cannot tell whether a person is watching nor reach the terminal. ``run``
decides (its stderr is a terminal) and hands the child the write end of a pipe, named in
``PROGRESS_ENV``; the child writes one line per update (at most ``MAX_RATE_HZ`` a second: the check
costs well under a microsecond per request), and ``run`` draws the newest in place on its stderr,
after ``DELAY_S`` so a run of a few seconds shows none. Plain ``\r`` redraws; nothing at all when
stderr is not a terminal, or on Windows (no fd passing).
"""

from __future__ import annotations

import os
import time
from typing import IO

PROGRESS_ENV = "PHI3_HARNESS_PROGRESS"
MAX_RATE_HZ = 8.0
WIDTH = 99  # the line plus the cursor fit 100 columns
DELAY_S = 2.0


class ProgressTicker:
    """Child side: counts requests for the test that is running and emits a throttled line."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = _fd_from_env() if fd is None else fd
        self.enabled = self._fd is not None
        self._test = ""
        self._done_tests = 0
        self._total_tests = 0
        self._requests = 0
        self._started = time.perf_counter()
        self._last_emit = 0.0

    def start_test(self, name: str, index: int, total: int) -> None:
        self._test, self._done_tests, self._total_tests, self._requests = name, index, total, 0
        self._started = time.perf_counter()
        self._emit(force=True)

    def request_done(self) -> None:
        self._requests += 1
        self._emit(force=False)

    def text(self) -> str:
        elapsed = time.perf_counter() - self._started
        return (f"[{self._done_tests}/{self._total_tests}] {self._test}: {self._requests} requests, "
                f"{elapsed:.1f} s")

    def _emit(self, force: bool) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_emit < 1.0 / MAX_RATE_HZ:
            return
        self._last_emit = now
        try:
            os.write(self._fd, (self.text() + "\n").encode("utf-8", "replace"))
        except OSError:  # run went away or closed its end: progress is a courtesy, never an error
            self.enabled = False


def _fd_from_env() -> int | None:
    text = os.environ.get(PROGRESS_ENV, "")
    return int(text) if text.isdigit() else None


class ProgressLine:
    """Parent side: one line redrawn in place; other output first clears it."""

    def __init__(self, stream: IO[str], delay_s: float = DELAY_S) -> None:
        self._stream = stream
        self._shown = False
        self._quiet_until = time.perf_counter() + delay_s

    def show(self, text: str) -> None:
        if time.perf_counter() < self._quiet_until:  # a run that ends within seconds needs no progress line
            return
        self._stream.write("\r\x1b[K" + text[:WIDTH])
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False


_TICKER: ProgressTicker | None = None


def ticker() -> ProgressTicker:
    """The suites' one ticker (the session counts requests into it; conftest names the test)."""
    global _TICKER
    if _TICKER is None:
        _TICKER = ProgressTicker()
    return _TICKER
