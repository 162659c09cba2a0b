"""One run folder, one writer: claiming a folder, its lock, and writes that never follow a link.

A run (or a report) claims its folder before writing anything: the folder must be new or empty
(``--overwrite`` empties a folder of the harness's own files), and a lock held for the whole run
keeps a second process out. The lock is an OS file lock, so a killed process never leaves a stale
one. A process started by the holder (``run`` starts pytest) may write under its parent's lock.

Every whole-file write goes to a temp file with a unique name, created exclusively and never through
a symbolic link, then renamed over the target: a reader sees the old file or the new one, and a link
planted in the folder is replaced, not followed.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
from pathlib import Path

from harness.errors import HarnessError

LOCK_NAME = ".phi3-harness.lock"
# What --overwrite may delete: files the harness writes, never anything else (a user's notes, folders).
OWN_SUFFIXES = (".json", ".jsonl", ".csv", ".png", ".html", ".tmp")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # Windows has none: os.replace there never follows links anyway
_BINARY = getattr(os, "O_BINARY", 0)


class RunFolderLock:
    """An exclusive OS lock on ``<folder>/.phi3-harness.lock``; released on close or process exit."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _BINARY, 0o644)
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.path)) from None
        if not _try_lock(self._fd):
            holder = read_lock_holder(folder)
            os.close(self._fd)
            raise HarnessError(f"{folder} is in use by another phi3-harness process (pid {holder or '?'}): "
                               "wait for it to finish, or write to another folder")
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the OS lock; the file stays (removing it would race a waiter)
            self._fd = -1

    def __enter__(self) -> "RunFolderLock":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_lock_holder(folder: Path) -> int | None:
    """The pid written by whoever holds (or last held) the folder's lock; None when unreadable."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | _NOFOLLOW | _BINARY)
    except OSError:
        return None
    try:
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


def claim_run_folder(folder: str | Path, overwrite: bool = False, how_to_overwrite: str = "--overwrite") -> RunFolderLock:
    """Create ``folder`` (or take an empty one), lock it, and return the held lock.

    A folder with files in it is refused unless ``overwrite``; then only the harness's own files are
    deleted, and anything else makes it a refusal too.
    """
    path = Path(folder)
    if path.is_symlink():
        raise HarnessError(f"{path} is a symbolic link: give the real folder, or a new one")
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{path} is a file, not a folder: give a new folder for the results")
    path.mkdir(parents=True, exist_ok=True)
    lock = RunFolderLock(path)
    try:
        entries = [entry for entry in path.iterdir() if entry.name != LOCK_NAME]
        if entries and not overwrite:
            raise HarnessError(f"{path} is not empty ({len(entries)} entries, e.g. {sorted(e.name for e in entries)[0]}): "
                               f"use a new folder, or {how_to_overwrite} to replace what an earlier run or report wrote")
        if entries:
            _remove_own_files(path, entries)
    except BaseException:
        lock.close()
        raise
    return lock


def adopt_or_claim(folder: str | Path) -> RunFolderLock | None:
    """For a process that may have been started by the folder's holder (pytest under ``run``).

    Returns None when the parent process holds the folder's lock (it claimed and checked the
    folder), else claims the folder itself.
    """
    path = Path(folder)
    if path.is_dir() and not path.is_symlink() and read_lock_holder(path) == os.getppid() and _is_locked(path):
        return None
    return claim_run_folder(path, how_to_overwrite="delete its contents")


def _is_locked(path: Path) -> bool:
    fd = os.open(path / LOCK_NAME, os.O_RDWR | _NOFOLLOW | _BINARY)
    try:
        # a second open file gets no lock while the holder keeps its own (flock locks per open file)
        return not _try_lock(fd)
    finally:
        os.close(fd)


def _remove_own_files(path: Path, entries: list[Path], nested: bool = False) -> None:
    foreign = [entry.name for entry in entries if not _is_own(entry, nested)]
    if foreign:
        raise HarnessError(f"{path} holds files phi3-harness did not write (e.g. {sorted(foreign)[0]}): "
                           "use a new folder; --overwrite deletes only a previous run's files")
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():  # a comparison's runs/<n>-<id>/ pages
            _remove_own_files(entry, list(entry.iterdir()), nested=True)
            entry.rmdir()
        else:
            entry.unlink()  # a link is removed, never followed


def _is_own(entry: Path, nested: bool) -> bool:
    if entry.is_symlink():
        return True
    if entry.is_dir():
        return nested or entry.name == "runs"
    return entry.name.endswith(OWN_SUFFIXES)


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a unique, exclusively created temp file and a rename."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temp, fd = _create_temp(path)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)  # replaces a link planted at ``path``; never writes through it
    except OSError as error:
        _discard(temp)
        raise OSError(error.errno, error.strerror, str(path)) from None
    except BaseException:
        _discard(temp)
        raise
    return path


def _create_temp(path: Path) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY
    for _ in range(100):
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temp, os.open(temp, flags, 0o644)
        except FileExistsError:
            continue
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(path)) from None
    raise HarnessError(f"could not create a temp file beside {path}: remove stray .tmp files there")


def _discard(temp: Path) -> None:
    try:
        temp.unlink()
    except OSError:
        pass


def open_append(path: str | Path) -> int:
    """An append-only descriptor for a run file; a symbolic link in its place is refused, not followed."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _NOFOLLOW | _BINARY, 0o644)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None


class LineAppender:
    """Appends whole lines to a run file, one write per line, safe across threads.

    A line the disk cannot take (full, or past a file-size limit) is cut off again, so the file
    always ends on a complete line and the error names the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fd = open_append(self.path)
        self.size = os.fstat(self._fd).st_size

    def append(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"{self.path} is closed: nothing more can be recorded in it")
            written = 0
            try:
                while written < len(data):
                    written += os.write(self._fd, data[written:])
            except OSError as error:
                _truncate(self._fd, self.size)
                raise OSError(error.errno, error.strerror, str(self.path)) from None
            self.size += written

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                fd, self._fd = self._fd, -1
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)


def _truncate(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # the file keeps a cut-off last line, which the loaders skip with a warning
