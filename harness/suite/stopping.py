"""How the suites stop early: on a signal (judge what was measured, then exit) or on a file error.

Used by suites/conftest.py. The first SIGINT/SIGTERM raises KeyboardInterrupt in the main thread:
pytest stops running tests, load loops let in-flight requests finish and be recorded, and the
session hooks still write the checklist ("interrupted" for what was not reached) and the report.
A second signal exits at once: every run file is written line by line or by rename, so what is on
disk stays whole.

An OSError in a test (the disk is full, the folder became read-only) stops the session after that
test: going on would only fail the same way. The error is printed once, as one line, at the end.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from harness.errors import one_line

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name))
USER_PREFIX = "phi3-harness: "  # harness.suite.runner relays such stderr lines to the user as errors


class StopState:
    """What stopped the session, if anything: a signal's name, and the first file error."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.error: str | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        """Take over the stop signals (main thread only; elsewhere, pytest's defaults stay)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def uninstall(self) -> None:
        """Give the stop signals back: a session run by pytest.main in a longer-lived process
        (the harness's own tests) leaves that process's handlers as it found them."""
        for signum, handler in self._previous.items():
            if handler is not None:  # None: not set from Python, nothing to give back
                signal.signal(signum, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.signal_name is not None:
            os._exit(128 + signum)  # second signal: now; files on disk are whole (line or rename writes)
        self.signal_name = signal.Signals(signum).name
        raise KeyboardInterrupt  # pytest stops, then runs the session-finish hooks that judge and report

    def file_error(self, error: OSError) -> str:
        """Remember the first file error; returns the reason to stop the session with."""
        if self.error is None:
            self.error = one_line(error)
        return self.error

    def report_error(self) -> None:
        if self.error is not None:
            print(f"{USER_PREFIX}error: {self.error}", file=sys.stderr, flush=True)
