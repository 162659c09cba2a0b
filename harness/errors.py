"""The one error type users see, and the one-line wording of every other error at the command boundary.

``harness.cli`` catches whatever a command raises and prints ``one_line(error)``: "<what is wrong>:
<how to fix it>", never a traceback (``--debug`` shows one).
"""

from __future__ import annotations

import errno
from pathlib import Path


class HarnessError(Exception):
    """A problem with the user's input or environment.

    The CLI prints ``str(error)`` on one line and exits non-zero, never a traceback.
    Write the message as "<what is wrong>: <how to fix it>".
    """


# errno -> the fix a user can act on; the OS's own words (strerror) say what went wrong.
_OS_FIXES = {
    errno.EACCES: "choose another folder or fix its permissions",
    errno.EPERM: "choose another folder or fix its permissions",
    errno.EROFS: "choose a folder on a writable disk",
    errno.ENOSPC: "free some space or choose a folder on another disk",
    errno.EDQUOT: "free some space or choose a folder on another disk",
    errno.EFBIG: "the file reached the size limit (ulimit -f or the file system's): raise it or free space",
    errno.ENOTDIR: "part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "that is a folder where a file was expected: pass a file",
    errno.ENOENT: "it does not exist: check the path",
    errno.EEXIST: "it already exists: choose a new name",
    errno.ELOOP: "it is a symbolic link (not followed, for safety): remove the link or choose another path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
}


def one_line(error: BaseException) -> str:
    """The message the command line prints for ``error``: one line, the problem and then the fix."""
    if isinstance(error, HarnessError):
        text = str(error)
    elif isinstance(error, OSError):
        text = os_error_message(error)
    elif isinstance(error, UnicodeDecodeError):
        text = (f"input is not valid UTF-8 (byte 0x{error.object[error.start]:02x} at offset {error.start}): "
                "save the file or text as UTF-8")
    elif _from_onnxruntime(error):
        text = (f"ONNX Runtime failed ({type(error).__name__}: {_first_line(error)}): check that the model folder "
                "is complete and made for this provider, or run `phi3-harness doctor`")
    else:
        text = (f"unexpected {type(error).__name__}: {_first_line(error)}: this is a bug in phi3-harness; "
                "rerun with --debug and report the traceback")
    return " ".join(text.split())  # one line, whatever the message held


def os_error_message(error: OSError, path: str | Path | None = None) -> str:
    """``<path>: <the OS's words>: <the fix>`` for a failed file operation."""
    where = path if path is not None else error.filename
    fix = _OS_FIXES.get(error.errno or 0, "check the path and try again")
    if where is not None and _under_cache(where):
        fix += f" (or set {_cache_env()} to a writable folder)"
    reason = error.strerror or type(error).__name__
    return f"{where}: {reason}: {fix}" if where is not None else f"{reason}: {fix}"


def _under_cache(where: str | Path) -> bool:
    from harness.cache import cache_root

    try:
        Path(where).resolve().relative_to(cache_root().resolve())
    except (ValueError, OSError):
        return False
    return True


def _cache_env() -> str:
    from harness.cache import CACHE_ENV

    return CACHE_ENV


def _from_onnxruntime(error: BaseException) -> bool:
    """ONNX Runtime (and onnxruntime-genai) raise their own classes, none of them a common base."""
    return type(error).__module__.split(".")[0] in ("onnxruntime", "onnxruntime_genai")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "no message"
