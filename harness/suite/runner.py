"""Runs the pytest suites as a child process that never outlives ``run`` and stops cleanly on a signal.

Ctrl-C (SIGINT) or SIGTERM reaches ``run`` only (the child has its own process group): ``run``
passes it on once, so the suites stop measuring, judge what they have ("interrupted" for the rest)
and write the report. A second signal kills the child at once (SIGKILL): files written by rename
are whole, and the line files lose at most the line being written (Linux may stop a write that
crosses a page; the loaders skip a cut-off last line with a warning). On Linux the child is also
killed when ``run`` is killed outright (its parent-death signal), so it never measures on alone.

The child's stdout and stderr are relayed: its own error lines ("phi3-harness: ..." or pytest's "ERROR: ...")
go to stderr as one ``phi3-harness run:`` line each; everything else (warnings, plugin chatter)
goes to stdout, so stderr carries only what the user must act on.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Mapping, Sequence

from harness.suite.progress import PROGRESS_ENV, ProgressLine

# pytest -q's per-test characters (pass, skip, fail, error, xfail, xpass) with the optional percentage
_PYTEST_DOTS = re.compile(r"^[.sFExX]+\s*(\[\s*\d+%\])?$")
_PYTEST_STATS = re.compile(r"^=*\s*(\d+ \w+(, )?)+.* in [\d.]+s( \([\d:]+\))?\s*=*$")
CHILD_PREFIX = "phi3-harness: "  # how the suites mark a line meant for the user's stderr
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name))
# What a running pytest (and pytest-xdist) sets for its own tests. The suites' pytest is a session of its
# own: inherited, PYTEST_XDIST_WORKER makes pytest-benchmark switch itself off (one round per latency
# case, so the latency items went inconclusive) and PYTEST_ADDOPTS adds options meant for the caller's
# tests (pytest options for the suites go after `run --`).
_PARENT_PYTEST_VARS = ("PYTEST_CURRENT_TEST", "PYTEST_VERSION", "PYTEST_ADDOPTS")
_PARENT_PYTEST_PREFIX = "PYTEST_XDIST_"


@dataclass
class SuiteOutcome:
    status: int  # pytest's exit status; negative: killed by that signal
    signal: int | None = None  # the signal that stopped the run, if any
    forced: bool = False  # a second signal killed the child
    errors: list[str] = field(default_factory=list)  # error lines the child reported (already printed)
    stats: str = ""  # pytest's closing "N passed, M skipped in T s", held back so the gate line ends the run


def run_suites(command: Sequence[str], prefix: str = "phi3-harness run: ", out: IO[str] | None = None,
               progress: bool = False, env: Mapping[str, str] | None = None) -> SuiteOutcome:
    """Run ``command`` (pytest) to the end, or until a stop signal; see the module docstring.

    The child's output goes to ``out`` (default stdout; ``run --json`` keeps stdout for its JSON),
    without pytest's per-test progress characters; with ``progress`` a live line is drawn on stderr.
    """
    outcome = SuiteOutcome(status=0)
    progress = progress and os.name != "nt"  # the progress pipe is passed by fd number (POSIX only)
    read_fd, write_fd = os.pipe() if progress else (None, None)
    child_env = {**child_environment(env), PROGRESS_ENV: str(write_fd) if progress else ""}
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env,
                               pass_fds=(write_fd,) if progress else (), **_isolation())
    sink = _Sink(out or sys.stdout, ProgressLine(sys.stderr) if progress else None)
    relays = [threading.Thread(target=_relay, args=(stream, outcome, prefix, sink), daemon=True)
              for stream in (process.stdout, process.stderr)]
    if progress:
        os.close(write_fd)  # the child holds it now: the read end sees EOF when the child ends
        relays.append(threading.Thread(target=_relay_progress, args=(os.fdopen(read_fd, "rb"), sink), daemon=True))
    for relay in relays:
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
        for relay in relays:
            relay.join(timeout=5)
        sink.close()
    return outcome


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a pytest child, without any pytest session it runs inside of."""
    inherited = {name: value for name, value in os.environ.items()
                 if name not in _PARENT_PYTEST_VARS and not name.startswith(_PARENT_PYTEST_PREFIX)}
    return {**inherited, **(extra or {})}


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
    """In the child before exec: killed when ``run`` dies (at most the line being written is lost).

    A catchable death signal was tried: it arrives once per thread of the dying parent, sometimes in
    the middle of the suites' own locks, and left children that hung; SIGKILL cannot.
    """
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class _Sink:
    """Where relayed lines go; one lock so the progress line and other lines never interleave."""

    def __init__(self, out: IO[str], progress: ProgressLine | None) -> None:
        self.out, self.progress, self.lock = out, progress, threading.Lock()

    def line(self, text: str, stream: IO[str]) -> None:
        with self.lock:
            if self.progress:
                self.progress.clear()
            print(text, file=stream, flush=True)

    def update(self, text: str) -> None:
        with self.lock:
            if self.progress:
                self.progress.show(text)

    def close(self) -> None:
        with self.lock:
            if self.progress:
                self.progress.clear()


def _relay(stream: IO[bytes], outcome: SuiteOutcome, prefix: str, sink: _Sink) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if _PYTEST_STATS.match(line):  # "21 passed, 75 skipped in 19.3s": `run` prints it before the gate line
            outcome.stats = line.strip("= ")
            continue
        if _PYTEST_DOTS.match(line):  # "..sss.F  [ 40%]": the end block and -rfE say what happened
            continue
        message = _user_error(line)
        if message is None:
            sink.line(line, sink.out)
            continue
        outcome.errors.append(message)
        sink.line(prefix + message, sys.stderr)
    stream.close()


def _relay_progress(stream: IO[bytes], sink: _Sink) -> None:
    for raw in iter(stream.readline, b""):
        sink.update(raw.decode("utf-8", "replace").rstrip("\r\n"))
    stream.close()


def _user_error(line: str) -> str | None:
    if line.startswith(CHILD_PREFIX):
        return line[len(CHILD_PREFIX):]
    if line.startswith("ERROR: "):  # pytest's usage errors (the suites raise UsageError with one line)
        return "error: " + line[len("ERROR: "):]
    return None
