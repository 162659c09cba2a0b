"""The embedded default model: the tiny Phi-3, built on first use into a cache folder, reused after.

Cache root: ``harness.cache.cache_root()``. The folder name carries the size preset, precision,
layout, seed and the builder version (a hash of the builder's source), so a changed builder never
serves a stale folder. The tiny model builds in well under a second or two; the "small" preset
(int4 by default, ~600 MB on disk) in under a minute, once.

Presets stand in for a model folder wherever one is asked for: ``--model small`` (see MODEL_PRESETS).
"""

from __future__ import annotations

from pathlib import Path

from harness.cache import cache_root
from harness.model.tiny.build import build_tiny_model, builder_version, is_complete, read_build_info
from harness.model.tiny.spec import Variant, spec_for

DEFAULT_SEED = 0

# --model NAME: a size preset built into the cache, (size, precision). "small" is int4 because the
# point of it is a model whose decode is bound by reading weights, as a published int4 Phi-3's is.
MODEL_PRESETS: dict[str, tuple[str, str]] = {"tiny": ("tiny", "fp32"), "small": ("small", "int4")}


def cached_model_path(
    precision: str = "fp32", layout: str = "cpu", seed: int = DEFAULT_SEED, size: str = "tiny",
    emit_bytes: bool = False,
) -> Path:
    """Where the cache keeps this variant (whether or not it is built yet)."""
    Variant(precision, layout)  # validates: a bad name is a HarnessError, not an odd folder name
    spec_for(size)
    head = "-bytes" if emit_bytes else ""
    return cache_root() / f"{size}-phi3-{layout}-{precision}{head}-seed{seed}-{builder_version()}"


def default_model_dir(
    precision: str = "fp32", layout: str = "cpu", seed: int = DEFAULT_SEED, size: str = "tiny",
    emit_bytes: bool = False,
) -> Path:
    """The tiny model folder for this variant, building it first when the cache lacks it."""
    path = cached_model_path(precision, layout, seed, size, emit_bytes)
    info = read_build_info(path)
    if info is not None and info.get("builder_version") == builder_version() and is_complete(path, info):
        return path
    return build_tiny_model(path, precision=precision, layout=layout, seed=seed, size=size, emit_bytes=emit_bytes)


def resolve_model(model: str | Path | None) -> Path:
    """A ``--model`` value as a folder, resolved once at the edge (commands, suites' conftest, serve).

    None is the embedded tiny Phi-3; a preset name ("tiny", "small") becomes its cached folder (built
    on first use); a path stays a path. A folder that exists under a preset's name wins over the preset.
    """
    if model is None:
        return default_model_dir()
    name = str(model)
    if name in MODEL_PRESETS and not Path(name).exists():
        size, precision = MODEL_PRESETS[name]
        return default_model_dir(precision=precision, size=size)
    return Path(name)
