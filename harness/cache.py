"""The harness's cache folder: built tiny models and model-hash memos live here.

``$PHI3_HARNESS_CACHE`` when set; else ``%LOCALAPPDATA%\\phi3-harness`` on Windows, else
``$XDG_CACHE_HOME/phi3-harness`` (``~/.cache/phi3-harness``). One function, so every part of the
harness agrees on where its cache is.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CACHE_ENV = "PHI3_HARNESS_CACHE"


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "phi3-harness"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "phi3-harness"
