"""Runs the pytest suites as a child process that never outlives ``run`` and stops cleanly on a signal.

Ctrl-C (SIGINT) or SIGTERM reaches ``run`` only (the child has its own process group): ``run``
passes it on once, so the suites stop measuring, judge what they have ("interrupted" for the rest)
and write the report. A second signal kills the child at once; every file it wrote is whole,
since run files are written line by line or by rename. On Linux the child also dies with ``run``
if ``run`` is killed outright.

The child's stderr is relayed: its own error lines ("phi3-harness: ..." or pytest's "ERROR: ...")
go to stderr as one ``phi3-harness run:`` line each; everything else (warnings, plugin chatter)
goes to stdout, so stderr carries only what the user must act on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Sequence

CHILD_PREFIX = "phi3-harness: "  # how the suites mark a line meant for the user's stderr
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name))


@dataclass
class SuiteOutcome:
    status: int  # pytest's exit status; negative: killed by that signal
    signal: int | None = None  # the signal that stopped the run, if any
    forced: bool = False  # a second signal killed the child
    errors: list[str] = field(default_factory=list)  # error lines the child reported (already printed)


def run_suites(command: Sequence[str], prefix: str = "phi3-harness run: ") -> SuiteOutcome:
    """Run ``command`` (pytest) to the end, or until a stop signal; see the module docstring."""
    outcome = SuiteOutcome(status=0)
    process = subprocess.Popen(list(command), stderr=subprocess.PIPE, **_isolation())
    relay = threading.Thread(target=_relay, args=(process.stderr, outcome, prefix), daemon=True)
    relay.start()
    previous = {sig: signal.signal(sig, _handler(process, outcome)) for sig in _STOP_SIGNALS}
    try:
        outcome.status = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if process.poll() is None:  # an exception in this process: the child must not outlive it
            _signal_group(process, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)
            process.wait()
        relay.join(timeout=5)
    return outcome


def _handler(process: subprocess.Popen, outcome: SuiteOutcome):  # noqa: ANN202 - a signal handler
    def on_signal(signum: int, _frame: object) -> None:
        if outcome.signal is None:
            outcome.signal = signum
            print("stopping: judging what was measured and writing the report (press Ctrl-C again to stop at once)",
                  flush=True)
            _signal_group(process, signum if os.name != "nt" else signal.CTRL_BREAK_EVENT)
        else:
            outcome.forced = True
            _signal_group(process, signal.SIGKILL if hasattr(signal, "SIGKILL") else signal.SIGTERM)

    return on_signal


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        if os.name == "nt":  # pragma: no cover - Windows: the child's group gets CTRL_BREAK
            process.send_signal(signum)
        else:
            os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _isolation() -> dict:
    """Own process group (so a terminal's Ctrl-C reaches ``run`` alone); on Linux, die with the parent."""
    if os.name == "nt":  # pragma: no cover
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True, "preexec_fn": _die_with_parent if sys.platform.startswith("linux") else None}


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM (which the suites treat as an interrupt) when ``run`` dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _relay(stream: IO[bytes], outcome: SuiteOutcome, prefix: str) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        message = _user_error(line)
        if message is None:
            print(line, flush=True)
            continue
        outcome.errors.append(message)
        print(prefix + message, file=sys.stderr, flush=True)
    stream.close()


def _user_error(line: str) -> str | None:
    if line.startswith(CHILD_PREFIX):
        return line[len(CHILD_PREFIX):]
    if line.startswith("ERROR: "):  # pytest's usage errors (the suites raise UsageError with one line)
        return "error: " + line[len("ERROR: "):]
    return None
