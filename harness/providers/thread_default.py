"""How many intra-op threads a CPU session gets when the config names none.

ORT's default is one thread per physical core. For a model whose every operator is small that
costs more than it saves: each parallel loop wakes the other threads (spinning is off by default,
so a wake-up is a futex round trip) for a few microseconds of work, and on a busy machine the
woken thread waits for a core. Measured on this project's 2-core host (2026-12-03; int4 and fp32
builds of the embedded model's architecture at widths 64-1024, one thread against two,
interleaved, 64 new tokens):
- the tiny model (10 MB int4, 17 MB fp32): quiet, one thread decoded as fast as two (int4) or
  8 % slower (fp32); beside one busy process, 11-22 % faster; always 12-35 % less CPU per request;
- from 40 MB on, two threads decoded, when quiet, as fast (40 MB int4) or up to 32 % faster (73 MB
  fp32: 1.27x; the "small" preset, 208 MB: 1.5x).
Long prompts gain from more threads on any model (3,900 tokens on the tiny model: 152 ms with two,
219 ms with one), which is why the rule is for toy-sized models only; a configured
``intra_op_num_threads`` always wins.
"""

from __future__ import annotations

from pathlib import Path

ONE_THREAD_BELOW_BYTES = 32 * 10**6  # between 17 MB (one thread faster) and 40 MB (two faster)


def weight_bytes(onnx_path: Path) -> int | None:
    """The graph file and its external data (``model.onnx.data`` and the like beside it); None if unreadable."""
    try:
        if not onnx_path.is_file():
            return None
        # names compared as text, not as a glob: a folder may be called "phi3[int4]" and a file "model[1].onnx"
        return sum(path.stat().st_size for path in onnx_path.parent.iterdir()
                   if path.name.startswith(onnx_path.name) and path.is_file())
    except OSError:
        return None


def default_intra_op_threads(provider: str, onnx_path: Path) -> tuple[int | None, str]:
    """(threads, why) for a session whose config names no intra-op thread count; None: ORT's default."""
    if provider == "cpu":
        size = weight_bytes(onnx_path)
        if size is not None and size < ONE_THREAD_BELOW_BYTES:
            return 1, f"default: one thread for a model under {ONE_THREAD_BELOW_BYTES // 10**6} MB"
    return None, "default: one per physical core"
