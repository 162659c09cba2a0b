"""Where a session computes and its KV cache lives, as one small record.

Its own module so that the provider layer (which decides it) can name it without importing the
cache's numpy code.
"""

from __future__ import annotations

from typing import NamedTuple


class Placement(NamedTuple):
    """ORT's device name ("cpu", "cuda", "dml") and the device id."""

    device: str
    device_id: int
