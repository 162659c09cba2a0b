"""Build the embedded tiny Phi-3: a genai-format folder with random weights from a fixed seed.

The folder holds what a published Phi-3 ONNX folder holds - ``genai_config.json``, ``model.onnx``
with its weights in ``model.onnx.data``, ``tokenizer.json`` and ``tokenizer_config.json`` - plus
``tiny_model.json`` (how it was built, and each file's size and sha256).

The same (precision, layout, seed) and builder source give a byte-identical folder. It is written
into a temporary sibling folder and renamed into place, so a reader never sees half a folder and
two processes building the same folder at once both end up with one complete copy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.model.tiny import spec as names
from harness.model.tiny.config import genai_config
from harness.model.tiny.spec import TinySpec, Variant, spec_for
from harness.model.tiny.tokenizer import write_tokenizer

BUILD_INFO = "tiny_model.json"
CONFIG_FILE = "genai_config.json"
_EXTERNAL_THRESHOLD = 1024  # bytes; smaller tensors (shape constants) stay inside model.onnx
_BUILDER_MODULES = ("build", "spec", "weights", "graph", "quant", "config", "tokenizer", "corpus")


@functools.lru_cache(maxsize=1)
def builder_version() -> str:
    """Hash of the builder's own source: any change to how folders are made changes it."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for module in _BUILDER_MODULES:
        source = (here / f"{module}.py").read_bytes().replace(b"\r\n", b"\n")  # same hash on a CRLF checkout
        digest.update(module.encode() + b"\0" + source)
    return digest.hexdigest()[:12]


def build_tiny_model(
    out_dir: Path, precision: str = "fp32", layout: str = "cpu", seed: int = 0, size: str = "tiny",
    emit_bytes: bool = False,
) -> Path:
    """Write the tiny model folder (``size``: a preset of spec.SIZES) to ``out_dir`` and return its path.

    ``emit_bytes``: an LM head that also generates byte-fallback pieces and special tokens (weights.py).

    An existing tiny-model folder there is replaced (left as is when it is the same build); any
    other non-empty folder is an error, so ``--out`` cannot wipe unrelated files.
    """
    variant = Variant(precision, layout)
    spec = spec_for(size)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise HarnessError(f"seed {seed!r} is not a non-negative integer: pass --seed 0 or another whole number >= 0")
    out_dir = Path(out_dir).expanduser().resolve()
    _check_destination(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
        info = _write_folder(staging, spec, variant, seed, size, emit_bytes)
        _move_into_place(staging, out_dir, info)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def read_build_info(folder: Path) -> dict[str, Any] | None:
    """``tiny_model.json`` of a folder, or None when it is not a tiny-model folder."""
    try:
        return json.loads((Path(folder) / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_complete(folder: Path, info: dict[str, Any]) -> bool:
    """Every file the build info lists is there with its recorded size (cheap: no hashing)."""
    try:
        return all((folder / name).stat().st_size == entry["size"] for name, entry in info["files"].items())
    except (OSError, KeyError, TypeError):
        return False


def _write_folder(
    folder: Path, spec: TinySpec, variant: Variant, seed: int, size: str, emit_bytes: bool
) -> dict[str, Any]:
    # onnx and the graph builder cost ~150 ms to import: only a build needs them, not a cache hit
    import onnx

    from harness.model.tiny.graph import build_graph
    from harness.model.tiny.weights import make_weights, rotary_caches

    model = build_graph(spec, variant, make_weights(spec, seed, emit_bytes), rotary_caches(spec))
    onnx.save_model(
        model, str(folder / names.MODEL_FILE), save_as_external_data=True, all_tensors_to_one_file=True,
        location=names.DATA_FILE, size_threshold=_EXTERNAL_THRESHOLD, convert_attribute=False,
    )
    _write_json(folder / CONFIG_FILE, genai_config(spec, variant))
    write_tokenizer(folder)
    files = {}
    for path in sorted(folder.iterdir()):
        os.chmod(path, 0o644)  # onnx writes the external data file private (0600)
        files[path.name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    info = {
        "kind": "tiny-phi3",
        "size": size,
        "builder_version": builder_version(),
        "precision": variant.precision,
        "layout": variant.layout,
        "seed": seed,
        "emit_bytes": emit_bytes,
        "files": files,
    }
    _write_json(folder / BUILD_INFO, info)
    return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:  # in pieces: the small preset's weights are 600 MB
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n", encoding="utf-8", newline="\n")


def _check_destination(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise HarnessError(f"{out_dir} is a file: pass --out with a new or empty folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and read_build_info(out_dir) is None:
        raise HarnessError(f"{out_dir} is not empty and not a tiny model folder: pass --out with a new or empty folder")


def _move_into_place(staging: Path, out_dir: Path, info: dict[str, Any]) -> None:
    if _try_rename(staging, out_dir):
        return
    existing = read_build_info(out_dir)
    if existing == info and is_complete(out_dir, existing):
        return  # the same build is already there (another process got there first): keep it
    if existing is None and out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()  # an empty folder (Windows cannot rename onto one)
    elif existing is not None:
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex}")
        if _try_rename(out_dir, old):
            shutil.rmtree(old, ignore_errors=True)
    if _try_rename(staging, out_dir):
        return
    if read_build_info(out_dir) == info and is_complete(out_dir, info):
        return  # lost a race to an identical build
    raise HarnessError(
        f"cannot move the built model into {out_dir} (another process is writing it?): run the command again"
    )


def _try_rename(source: Path, target: Path) -> bool:
    try:
        os.rename(source, target)
    except OSError:
        return False
    return True
