"""One line for each session setting a run records (environment.json's ``threading`` and ``huge_pages``):
what `doctor` prints and the report page shows, worded once."""

from __future__ import annotations

from typing import Any

from harness.units import number


def huge_pages_text(pages: dict[str, Any]) -> str:
    """``12.6 MB (weights and heap) put on 2 MiB pages at load``, or why not."""
    if not pages["advised_bytes"]:
        return f"4 KiB pages: {pages['note']}"
    return f"{number(pages['collapsed_bytes'] / 1e6)} MB (weights and heap) put on 2 MiB pages at load"


def threading_text(threading: dict[str, Any]) -> str:
    """``intra-op 2 (default: one per physical core), inter-op 0, spinning off, sequential``."""
    return threading_settings_text(threading, source=threading["intra_op_threads_source"])


def threading_settings_text(threading: dict[str, Any], source: str | None = None) -> str:
    """``intra-op 2, inter-op 0, spinning off, sequential``: what changes the speed; ``source`` (why
    that thread count) follows the count when given."""
    spinning = "on" if threading["allow_spinning"] else "off"
    if threading["allow_spinning"] and threading.get("force_spinning_stop"):
        spinning += " (stops when a Run returns)"
    blocks = f", dynamic blocks {threading['dynamic_block_base']}" if threading.get("dynamic_block_base") else ""
    why = f" ({source})" if source else ""
    return (f"intra-op {threading['intra_op_num_threads']}{why}, inter-op {threading['inter_op_num_threads']}, "
            f"spinning {spinning}{blocks}, {threading['execution_mode']}")
