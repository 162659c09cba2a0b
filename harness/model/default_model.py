"""The embedded default model: the tiny Phi-3, built on first use into a cache folder, reused after.

Cache root: ``harness.cache.cache_root()``. The folder name carries the
precision, layout, seed and the builder version (a hash of the builder's source), so a changed
builder never serves a stale folder. A build takes well under a second or two.
"""

from __future__ import annotations

from pathlib import Path

from harness.cache import cache_root
from harness.model.tiny.build import build_tiny_model, builder_version, is_complete, read_build_info
from harness.model.tiny.spec import Variant

DEFAULT_SEED = 0


def cached_model_path(precision: str = "fp32", layout: str = "cpu", seed: int = DEFAULT_SEED) -> Path:
    """Where the cache keeps this variant (whether or not it is built yet)."""
    Variant(precision, layout)  # validates: a bad name is a HarnessError, not an odd folder name
    return cache_root() / f"tiny-phi3-{layout}-{precision}-seed{seed}-{builder_version()}"


def default_model_dir(precision: str = "fp32", layout: str = "cpu", seed: int = DEFAULT_SEED) -> Path:
    """The tiny model folder for this variant, building it first when the cache lacks it."""
    path = cached_model_path(precision, layout, seed)
    info = read_build_info(path)
    if info is not None and info.get("builder_version") == builder_version() and is_complete(path, info):
        return path
    return build_tiny_model(path, precision=precision, layout=layout, seed=seed)
