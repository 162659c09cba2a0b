"""Transparent huge pages for the weights ONNX Runtime copies into its own memory (Linux only).

Why: a decode step streams every weight from memory once (203 MB on the ``small`` preset, GBs on a
real Phi-3). ONNX Runtime keeps its CPU weights (MatMulNBits repacks int4 blocks at load) in plain
``malloc`` memory of 4 KiB pages; the hardware prefetchers stop at every 4 KiB boundary and every
page costs a TLB entry. Most distributions set THP to ``madvise``, so only memory that asks gets
2 MiB pages, and ORT does not ask. This module asks for it after the session is created: it finds
the anonymous mappings that appeared while the session loaded, and the heap, advises them
``MADV_HUGEPAGE`` and collapses them (``MADV_COLLAPSE``, Linux 6.1+) so the pages are huge before
the first request.
The advice changes no byte of the weights; where the kernel refuses, the memory stays as it was.

So that the weights land in mappings of their own, glibc's mmap threshold is held at 2 MiB while
the session loads: otherwise a process that already freed big blocks (glibc then raises the
threshold up to 32 MiB) serves the weights from its heap, which this cannot tell apart from the
rest. Afterwards the threshold is set to 32 MiB, the value glibc's own rule reaches in a process
that frees big blocks (as the engine does per request); setting it switches that rule off.

Measured on the ``small`` preset: ``benchmarks/roofline.py`` prints decode tok/s with and without it
(docs/ARCHITECTURE.md, the engine's room).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

HUGE_PAGE = 2 * 2**20
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD_AFTER = 32 * 2**20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
# Mappings smaller than this are not worth a look (thread stacks, small arenas).
MIN_REGION = 4 * HUGE_PAGE
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")

T = TypeVar("T")
Region = tuple[int, int]  # [start, end) of one mapping


@dataclass(frozen=True)
class HugePageResult:
    """What the advice did, for environment.json and doctor."""

    requested: bool  # the advice was tried (False: ``note`` says why not)
    advised_bytes: int = 0  # bytes of the load's new anonymous mappings and the heap given MADV_HUGEPAGE
    collapsed_bytes: int = 0  # of those, bytes MADV_COLLAPSE turned into huge pages at once
    process_huge_bytes: int | None = None  # AnonHugePages of the whole process after the load
    note: str = ""  # why nothing was done, when nothing was

    def as_dict(self) -> dict[str, object]:
        return {"requested": self.requested, "advised_bytes": self.advised_bytes,
                "collapsed_bytes": self.collapsed_bytes, "process_huge_bytes": self.process_huge_bytes,
                "note": self.note}


def unavailable_reason() -> str | None:
    """Why this process cannot use transparent huge pages (None when it can)."""
    if not sys.platform.startswith("linux"):
        return f"transparent huge pages are a Linux feature (this is {sys.platform})"
    try:
        setting = THP_SETTING.read_text()
    except OSError:
        return f"this kernel has no transparent huge pages ({THP_SETTING} is missing)"
    if "[never]" in setting:
        return f"transparent huge pages are switched off ({THP_SETTING}: never)"
    return None


def anonymous_regions(maps: str | None = None) -> dict[Region, bool]:
    """Private read-write anonymous mappings of this process -> whether it is the brk heap."""
    text = maps if maps is not None else Path("/proc/self/maps").read_text()
    regions: dict[Region, bool] = {}
    for line in text.splitlines():
        fields = line.split()
        # address perms offset dev inode [path]: anonymous = no path (or the [heap])
        if len(fields) < 5 or fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue
        start, end = (int(part, 16) for part in fields[0].split("-"))
        regions[(start, end)] = len(fields) > 5
    return regions


def huge_spans(regions: dict[Region, bool], before: Iterable[Region]) -> list[Region]:
    """The 2 MiB-aligned parts, large enough, of mappings new since ``before`` and of the heap.

    The heap always counts: blocks below glibc's mmap threshold (a small model's tensors, the
    scales of a large one) land there, often in memory an earlier, freed session left behind.
    """
    old = set(before)
    spans = []
    for (start, end), is_heap in sorted(regions.items()):
        if (start, end) in old and not is_heap:
            continue
        aligned_start = -(-start // HUGE_PAGE) * HUGE_PAGE
        aligned_end = end // HUGE_PAGE * HUGE_PAGE
        if aligned_end - aligned_start >= MIN_REGION:
            spans.append((aligned_start, aligned_end))
    return spans


def load_on_huge_pages(load: Callable[[], T], skip: str | None = None) -> tuple[T, HugePageResult]:
    """Run ``load`` (a session or model constructor); advise what it allocated onto huge pages.

    ``skip``: why the caller wants no advice (then only ``load`` runs and the result says so).
    """
    if skip:
        return load(), HugePageResult(False, note=skip)
    reason = unavailable_reason()
    if reason:
        return load(), HugePageResult(True, note=reason)
    before = anonymous_regions()
    with _large_blocks_in_own_mappings():
        loaded = load()
    return loaded, advise(huge_spans(anonymous_regions(), before))


@contextlib.contextmanager
def _large_blocks_in_own_mappings() -> Iterator[None]:
    """glibc: blocks of 2 MiB and more get fresh mappings while inside (see the module docstring)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None) if _is_glibc() else None
    if mallopt is None:
        yield  # another libc: the diff of mappings still finds what it placed in fresh mappings
        return
    mallopt(M_MMAP_THRESHOLD, HUGE_PAGE)
    try:
        yield
    finally:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_AFTER)


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError):
        return False


def advise(spans: list[Region]) -> HugePageResult:
    madvise = _libc_madvise()
    advised = collapsed = 0
    for start, end in spans:
        length = end - start
        if madvise(start, length, MADV_HUGEPAGE) != 0:
            continue  # not ours to advise after all (unmapped meanwhile): leave it
        advised += length
        if madvise(start, length, MADV_COLLAPSE) == 0:
            collapsed += length
    note = "" if advised else "no mapping large enough for huge pages"
    return HugePageResult(True, advised, collapsed, process_huge_page_bytes(), note)


def _libc_madvise() -> Callable[[int, int, int], int]:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    libc.madvise.restype = ctypes.c_int
    return lambda start, length, advice: libc.madvise(start, length, advice)


def process_huge_page_bytes(pid: int | None = None) -> int | None:
    """AnonHugePages of a process (smaps_rollup), or None where the kernel does not say."""
    path = Path(f"/proc/{pid or os.getpid()}/smaps_rollup")
    try:
        for line in path.read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None
