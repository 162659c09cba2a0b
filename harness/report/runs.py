"""Read one results folder into plain data for the report, through harness.measure.results' loaders.

Every file is optional for a report. A missing file is listed in ``RunData.missing``; damage the
loaders tolerate (the truncated last line an interrupted run leaves) is listed in ``RunData.notes``
so the page can say so. Damage they refuse (a record altered mid-file, a newer schema) stays a
HarnessError: a report must not quietly present an altered run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import pandas as pd

from harness.errors import HarnessError
from harness.measure.results import (
    CHECKLIST_FILE,
    ENVIRONMENT_FILE,
    PROVIDER_PROOF_FILE,
    RESULTS_FILE,
    TELEMETRY_COLUMNS,
    TELEMETRY_FILE,
    load_checklist,
    load_environment,
    load_provider_proof,
    load_records,
    load_telemetry,
    records_to_frame,
)

BENCHMARK_FILE = "benchmark.json"
RUN_FILES = (RESULTS_FILE, TELEMETRY_FILE, ENVIRONMENT_FILE, CHECKLIST_FILE, PROVIDER_PROOF_FILE, BENCHMARK_FILE)

T = TypeVar("T")


@dataclass
class RunData:
    path: Path
    run_id: str
    records: pd.DataFrame
    telemetry: pd.DataFrame
    environment: dict[str, Any]
    checklist: list[dict[str, Any]]
    provider_proof: list[dict[str, Any]]  # one entry per profiled provider
    benchmark: dict[str, Any] | None
    missing: list[str] = field(default_factory=list)  # files absent from the folder
    notes: list[str] = field(default_factory=list)  # damage found while reading
    inputs_sha256: dict[str, str] = field(default_factory=dict)  # per results file: what plots.json keys on


def load_run(run_dir: str | Path) -> RunData:
    """Read a results folder. Raises HarnessError when the folder is unusable or was altered."""
    path = Path(run_dir)
    if not path.is_dir():
        raise HarnessError(f"results folder not found: {path}: pass a folder written by `phi3-harness run`")
    present = {name for name in RUN_FILES if (path / name).is_file()}
    if not present:
        raise HarnessError(f"no results files in {path}: expected some of {', '.join(RUN_FILES)}; pass a run folder")
    notes: list[str] = []
    inputs_sha256 = {name: _sha256(path / name) for name in sorted(present)}

    def read(name: str, loader: Callable[[Path], T], default: T) -> T:
        if name not in present:
            return default
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = loader(path)
        notes.extend(_short(str(w.message), path) for w in caught)
        return value

    records = normalise_records(read(RESULTS_FILE, load_records, records_to_frame([])))
    if RESULTS_FILE in present and records.empty:
        notes.append(f"{RESULTS_FILE} holds no records (the run stopped before its first request ended?)")
    telemetry = read(TELEMETRY_FILE, load_telemetry, pd.DataFrame(columns=TELEMETRY_COLUMNS))
    telemetry = telemetry.dropna(subset=["t_ns"]).sort_values("t_ns").reset_index(drop=True)
    environment = read(ENVIRONMENT_FILE, load_environment, {})
    checklist = [dataclasses.asdict(v) for v in read(CHECKLIST_FILE, load_checklist, [])]
    run_id = str(environment.get("run_id") or _first(records, "run_id") or path.name)
    return RunData(
        path=path,
        run_id=run_id,
        records=records,
        telemetry=telemetry,
        environment=environment,
        checklist=checklist,
        provider_proof=[p for p in read(PROVIDER_PROOF_FILE, load_provider_proof, []) if isinstance(p, dict)],
        benchmark=_read_benchmark(path / BENCHMARK_FILE, notes),
        missing=[name for name in RUN_FILES if name not in present],
        notes=notes,
        inputs_sha256=inputs_sha256,
    )


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # its loader reports it; a fingerprint of an unreadable file matches nothing
        return "unreadable"


def normalise_records(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers as numbers, and the grouping columns never None, so tables group every record."""
    frame = frame.copy()
    for column in ("prompt_length", "concurrency", "prompt_tokens", "completion_tokens", "worker",
                   "request_index", "submit_ns", "end_ns"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("case_id", "test", "provider"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "?")
    return frame


def _read_benchmark(path: Path, notes: list[str]) -> dict[str, Any] | None:
    """pytest-benchmark's JSON is its own format; only ``benchmarks[].stats`` is read."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        notes.append(f"{BENCHMARK_FILE} is not valid JSON ({error}); pytest-benchmark table left out")
        return None
    if not isinstance(data, dict):
        notes.append(f"{BENCHMARK_FILE} is not a pytest-benchmark object; left out")
        return None
    return data


def _short(message: str, folder: Path) -> str:
    # Loader warnings name the full path; the page already names the folder.
    return message.replace(str(folder) + "/", "").replace(str(folder), "")


def _first(frame: pd.DataFrame, column: str) -> Any:
    values = frame[column].dropna() if column in frame.columns else []
    return values.iloc[0] if len(values) else None


def environment_summary(env: dict[str, Any]) -> dict[str, Any]:
    """The few environment facts that tell runs apart, flattened from environment.json."""

    def section(name: str) -> dict[str, Any]:
        value = env.get(name)
        return value if isinstance(value, dict) else {}

    harness, ort, cpu, os_, model = (section(n) for n in ("harness", "onnxruntime", "cpu", "os", "model"))
    commit = harness.get("git_commit")
    return {
        "git commit": f"{commit[:10]}{' (dirty)' if harness.get('git_dirty') else ''}" if commit else None,
        "onnxruntime": ort.get("version"),
        "cpu": cpu.get("name"),
        "os": os_.get("platform") or os_.get("system"),
        "model": model.get("path"),
        "model sha256": (model.get("sha256") or "")[:12] or None,
    }
