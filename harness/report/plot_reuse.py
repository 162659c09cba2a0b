"""Reuse a run's PNG plots when nothing they are drawn from has changed.

Drawing one run's plots costs ~1.5 s of CPU on a 2-core machine (matplotlib's layout and text), and
a comparison draws every run's page again although `run` already wrote each run's report into its
folder: the CI gate (`report current --baseline previous`) paid that twice for nothing.

Every report therefore writes ``plots.json`` beside its PNGs: a fingerprint of what they were
drawn from (each results file's bytes, the harness's own source, the matplotlib, pandas and numpy
versions) and each PNG's SHA-256, or the reason a plot was left out. A later report of the same run
copies the plots instead of drawing them only when the fingerprint is equal and every PNG is a
regular file with the recorded bytes; anything else (an edited results file, another harness
commit, a damaged, replaced or linked PNG) draws them anew.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.measure.run_folder import atomic_write
from harness.report.plots import PLOTS, PlotResult
from harness.report.runs import RUN_FILES, RunData

MANIFEST = "plots.json"
SCHEMA_VERSION = 1
_LIBRARIES = ("matplotlib", "pandas", "numpy")


def fingerprint(run: RunData) -> str:
    """SHA-256 over the run's results files as loaded, the harness source and the plotting libraries."""
    digest = hashlib.sha256(_renderer_digest().encode())
    for name in RUN_FILES:
        digest.update(f"\0{name}\0{run.inputs_sha256.get(name, '-')}".encode())
    return digest.hexdigest()


def reuse_plots(run: RunData, out_dir: Path) -> list[PlotResult] | None:
    """The run folder's own plots, copied into ``out_dir`` when still current; None: draw them."""
    manifest = _read_manifest(run.path / MANIFEST)
    if manifest is None or manifest.get("fingerprint") != fingerprint(run):
        return None
    entries = manifest.get("plots")
    if not isinstance(entries, dict) or set(entries) != {spec.filename for spec in PLOTS}:
        return None
    pngs: dict[str, bytes] = {}
    for spec in PLOTS:
        entry = entries[spec.filename]
        if not isinstance(entry, dict):
            return None
        if "left_out" not in entry:
            data = _regular_file_bytes(run.path / spec.filename)
            if data is None or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                return None
            pngs[spec.filename] = data
    results = []
    for spec in PLOTS:
        if spec.filename not in pngs:
            results.append(PlotResult(spec, None, str(entries[spec.filename]["left_out"])))
            continue
        target = out_dir / spec.filename
        if target.resolve() != (run.path / spec.filename).resolve():
            atomic_write(target, pngs[spec.filename])  # replaces a link planted at the target
        results.append(PlotResult(spec, target))
    return results


def write_manifest(run: RunData, out_dir: Path, plots: list[PlotResult]) -> None:
    entries: dict[str, Any] = {}
    for result in plots:
        if result.path is None:
            entries[result.spec.filename] = {"left_out": result.reason}
        else:
            entries[result.spec.filename] = {"sha256": hashlib.sha256(result.path.read_bytes()).hexdigest()}
    manifest = {"schema_version": SCHEMA_VERSION, "fingerprint": fingerprint(run), "plots": entries}
    atomic_write(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def _read_manifest(path: Path) -> dict[str, Any] | None:
    data = _regular_file_bytes(path)
    if data is None:
        return None
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        return None
    return manifest


def _regular_file_bytes(path: Path) -> bytes | None:
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return path.read_bytes()
    except OSError:
        return None


@lru_cache(maxsize=1)
def _renderer_digest() -> str:
    """The harness's source and the plotting libraries' versions: another commit draws anew."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes())
    for library in _LIBRARIES:
        try:
            digest.update(f"\0{library}={version(library)}".encode())
        except PackageNotFoundError:
            digest.update(f"\0{library}=?".encode())
    return digest.hexdigest()
