"""What ONNX Runtime says while a session is made, collected and cut down to one line for people.

ORT reports through three channels: Python warnings, stdout (the wrapper's fallback banner) and its
C++ logger, which writes to file descriptor 2 directly ("Failed to load library
libonnxruntime_providers_cuda.so"). ``captured_output`` collects all three; ``one_line`` and
``summarise_ort_log`` turn them into the words a user needs.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import warnings
from typing import Iterator

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_PREFIX = re.compile(r"^\S+ \S+ \[[EWIV]:onnxruntime:[^\]]*\] ")


class _Captured:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self) -> str:
        cleaned = _ANSI.sub("", "\n".join(part for part in self.parts if part.strip()))
        return "\n".join(line.rstrip() for line in cleaned.splitlines() if line.strip())


@contextlib.contextmanager
def captured_output() -> Iterator[_Captured]:
    """Collect what ORT says while a session is made: Python warnings, stdout, native stderr.

    ORT's C++ logger writes to file descriptor 2 directly (e.g. "Failed to load library
    libonnxruntime_providers_cuda.so"), so redirecting ``sys.stderr`` alone would miss it. The
    redirection is process-wide for the moment a session is made: probe from one thread at a time.
    """
    captured = _Captured()
    stdout = io.StringIO()
    with tempfile.TemporaryFile() as native, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = _redirect_fd(2, native.fileno())
        try:
            with contextlib.redirect_stdout(stdout):
                yield captured
        finally:
            _restore_fd(2, saved)
            native.seek(0)
            captured.parts.append(native.read().decode("utf-8", errors="replace"))
            captured.parts.append(stdout.getvalue())
            captured.parts.extend(str(warning.message) for warning in caught)


def _redirect_fd(fd: int, target: int) -> int | None:
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
        os.dup2(target, fd)
        return saved
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): capture what we can
        return None


def _restore_fd(fd: int, saved: int | None) -> None:
    if saved is not None:
        os.dup2(saved, fd)
        os.close(saved)


# "/onnxruntime_src/.../x.cc:729 void ns::Function(Args&) " before the words meant for people.
_SOURCE_LOCATION = re.compile(r"^\S+\.(?:cc|cpp|h):\d+ .*?\)\s+(?=[A-Z\[])")


def one_line(text: str) -> str:
    """ORT messages span lines and start with its source location; the user gets the words, on one line."""
    lines = (_LOG_PREFIX.sub("", _ANSI.sub("", line)).strip() for line in text.splitlines() if line.strip())
    return " ".join(_SOURCE_LOCATION.sub("", line) for line in lines)


_ORT_STATUS = re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : ")


def summarise_ort_log(logged: str) -> str:
    """The gist of ORT's log: its first error (the cause) and its last warning (its advice)."""
    errors, warnings_ = [], []
    for line in logged.splitlines():
        message = _LOG_PREFIX.sub("", line).strip()
        message = _ORT_STATUS.split(message)[-1].strip()  # drop "<file>:<line> <function> [ONNXRuntimeError] : 1 : FAIL :"
        if "[E:onnxruntime" in line:
            errors.append(message)
        elif "[W:onnxruntime" in line or (message and not set(message) <= {"*"}):
            warnings_.append(message)
    picked = errors[:1] + [w for w in warnings_[-1:] if w not in errors[:1]]
    return " / ".join(picked)
