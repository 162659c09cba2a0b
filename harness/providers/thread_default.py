"""How many intra-op threads a CPU session gets when the config names none.

ORT's default is one thread per physical core. For a model whose every operator is small that
costs more than it saves: each parallel loop wakes the other threads (spinning is off by default,
so a wake-up is a futex round trip) for a few microseconds of work, and on a busy machine the
woken thread waits for a core. Measured on this project's 2-core host (2026-12-03; int4 and fp32
builds of the embedded model's architecture at widths 64-1024, one thread against two,
interleaved, 64 new tokens):
- the tiny model (folders of 10.7 MB int4, 17.9 MB fp32): quiet, one thread decoded as fast as two (int4) or
  8 % slower (fp32); beside one busy process, 11-22 % faster; always 12-35 % less CPU per request;
- from 40 MB on, two threads decoded, when quiet, as fast (40 MB int4) or up to 32 % faster (73 MB
  fp32: 1.27x; the "small" preset, 208 MB: 1.5x).
Long prompts gain from more threads on any model (3,900 tokens on the tiny model: 152 ms with two,
219 ms with one), which is why the rule is for toy-sized models only; a configured
``intra_op_num_threads`` always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

ONE_THREAD_BELOW_BYTES = 32 * 10**6  # between 17 MB (one thread as fast or faster) and 73 MB (two faster)
_MAX_ENTRIES = 10_000  # a folder with more is no toy model folder: stop looking
ORT_DEFAULT = "default: one per physical core"  # ORT's own intra-op default, as environment.json words it


def folder_bytes(folder: Path, stop_at: int) -> int | None:
    """Bytes of the files under ``folder`` (symlinked files followed, symlinked folders not), counted
    until the total reaches ``stop_at``; None if the folder cannot be read.

    The whole folder, not the graph's file names: external data may be called anything (one file per
    tensor from some exporters) and may sit in a subfolder; counting a tokenizer too only errs
    towards ORT's default. Hugging Face snapshot folders hold symlinks to their blobs.
    """
    total, seen, pending = 0, 0, [folder]
    try:
        while pending:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > _MAX_ENTRIES:
                        return max(total, stop_at)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file():
                        total += entry.stat().st_size
                    if total >= stop_at:
                        return total
    except OSError:
        return None
    return total


def default_intra_op_threads(provider: str, onnx_path: Path) -> tuple[int | None, str]:
    """(threads, why) for a session whose config names no intra-op thread count; None: ORT's default."""
    if provider == "cpu" and onnx_path.is_file():
        size = folder_bytes(onnx_path.parent, stop_at=ONE_THREAD_BELOW_BYTES)
        if size is not None and size < ONE_THREAD_BELOW_BYTES:
            return 1, f"default: one thread for a model folder under {ONE_THREAD_BELOW_BYTES // 10**6} MB"
    return None, ORT_DEFAULT
