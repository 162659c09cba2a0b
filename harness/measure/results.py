"""Results: the versioned record schema, the run folder, incremental writers, loaders.

What reports and the CI gate read, as plain data. Run folder (``reports/<run-id>/``):
    results.jsonl      one RequestRecord per line, appended and flushed as each request ends
    telemetry.csv      TelemetrySample rows (same perf_counter_ns clock as the records)
    environment.json   Environment stamp
    checklist.json     list of Verdict
    provider_proof.json  per-provider kernel share from a profiled generation (when measured)
    benchmark.json     pytest-benchmark's own JSON
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import secrets
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from harness.errors import HarnessError
from harness.measure.run_folder import LineAppender, atomic_write
from harness.measure.verdict import Verdict, VerdictKind  # noqa: F401 - part of the results schema

if TYPE_CHECKING:  # pandas costs ~150 ms to import: loaded only by the functions that build frames
    import pandas as pd

SCHEMA_VERSION = 1

RESULTS_FILE = "results.jsonl"
TELEMETRY_FILE = "telemetry.csv"
ENVIRONMENT_FILE = "environment.json"
CHECKLIST_FILE = "checklist.json"
PROVIDER_PROOF_FILE = "provider_proof.json"


@dataclass
class RequestRecord:
    """One measured request. Times are perf_counter_ns of the measuring process."""

    run_id: str
    case_id: str  # readable case id, e.g. "cpu-p128-c4"
    test: str  # which suite/test produced it, e.g. "latency", "concurrency", "memory"
    target: str  # "engine" | "genai" | "http"
    provider: str  # short name: cpu | dml | qnn | cuda | remote
    prompt_length: int  # requested prompt length in tokens (the matrix value)
    concurrency: int  # closed loop: number of workers; open loop (Poisson arrivals): 0
    request_index: int  # order of submission within the case
    worker: int  # which concurrent worker sent it
    cold: bool  # first request after the model was loaded
    submit_ns: int
    first_token_ns: int | None
    end_ns: int  # last token (E2E end); the failure time or stream end when there is no token
    token_ns: list[int]  # timestamp of every generated token
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float | None
    e2e_s: float
    tpot_s: float | None  # (e2e - ttft) / (completion_tokens - 1)
    itl_s: list[float]  # gaps between consecutive tokens
    prefill_tok_s: float | None  # prompt_tokens / ttft
    decode_tok_s: float | None  # 1 / tpot
    ok: bool
    error_kind: str | None = None  # e.g. "timeout", "http_500", "exception:ValueError"
    error: str | None = None
    output_text: str = ""
    output_ids: list[int] = field(default_factory=list)
    # target-specific facts; HTTP: streamed, connect_s, chunk arrivals, usage_source, client_cpu_s
    details: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int | None = None  # case identity, like the fields above (None in older runs)
    arrival_rate: float | None = None  # open loop: Poisson arrivals per second; None in closed loop
    precision: str | None = None  # the target's KV/activation dtype (fp32 | fp16); weights: model sha256
    # resident memory of the serving process read by the measuring code right after this request
    # (memory-growth cases only): aligned with the request by construction, unlike telemetry
    rss_after_bytes: int | None = None
    schema_version: int = SCHEMA_VERSION


@dataclass
class TelemetrySample:
    t_ns: int  # perf_counter_ns, same clock as RequestRecord
    rss_bytes: int
    peak_rss_bytes: int  # OS peak: peak working set (Windows) / ru_maxrss (Linux)
    cpu_percent: float  # process CPU normalised to all cores (100 = every core busy)
    system_mem_used_bytes: int
    gpu_util_percent: float | None = None  # Windows PDH GPU engine counters of this process
    gpu_mem_bytes: int | None = None  # GPU process memory: dedicated + shared (integrated GPUs use shared)
    gpu_dedicated_bytes: int | None = None
    gpu_shared_bytes: int | None = None
    label: str = ""  # case id while a case runs


RECORD_COLUMNS = [f.name for f in fields(RequestRecord)]
TELEMETRY_COLUMNS = [f.name for f in fields(TelemetrySample)]


# --- run folder -------------------------------------------------------------------------------


def new_run_id() -> str:
    """Sortable by time, unique enough for parallel runs: 20261124-113000-a1b2c3."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def new_run_dir(root: str | Path = "reports", run_id: str | None = None) -> Path:
    """Create ``<root>/<run-id>/`` and return it; an existing folder is never reused."""
    run_id = run_id or new_run_id()
    if not run_id or any(sep in run_id for sep in ("/", "\\")) or run_id in (".", ".."):
        raise HarnessError(f"invalid run id {run_id!r}: use letters, digits, '-' and '_' only")
    path = Path(root) / run_id
    try:
        path.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise HarnessError(f"run folder {path} already exists: choose another run id") from None
    except OSError as error:
        raise HarnessError(f"cannot create run folder {path} ({error.strerror}): pick a writable --results-dir") from None
    return path


# --- writers ----------------------------------------------------------------------------------


def to_plain(obj: Any) -> Any:
    """Dataclasses, paths, tuples and numpy scalars -> JSON-ready values; NaN/inf -> None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(key): to_plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_plain(value) for value in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return to_plain(obj.item())
    return obj


def record_to_dict(record: RequestRecord) -> dict[str, Any]:
    row = to_plain(record)
    row["schema_version"] = SCHEMA_VERSION  # what this writer wrote, whatever the object says
    return row


class ResultsWriter:
    """Appends one JSON line per RequestRecord to results.jsonl; each line reaches the OS when write returns.

    Thread-safe, so load workers may hand records over directly. One write per record: a killed or
    interrupted run loses at most the line being written (the loaders skip such a line), and a line
    the disk cannot take is cut off again. fsync only at close: load workers call this between
    requests, and a per-record fsync would make them wait on the disk (milliseconds on some laptops)
    and lower the throughput being measured.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / RESULTS_FILE
        self._file = LineAppender(self.path)
        self.count = 0

    def write(self, record: RequestRecord) -> None:
        self._file.append(json.dumps(record_to_dict(record), ensure_ascii=False, allow_nan=False) + "\n")
        self.count += 1

    __call__ = write  # usable directly as a load.py on_record callback

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class TelemetryWriter:
    """Appends TelemetrySample rows to telemetry.csv as they are taken (one write per row).

    No fsync per row: samples come 20 times a second and losing the last few on a crash is
    harmless; the file is fsynced on close.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / TELEMETRY_FILE
        self._file = LineAppender(self.path)
        if self._file.size == 0:
            self._file.append(_csv_line(TELEMETRY_COLUMNS))

    def write(self, sample: TelemetrySample) -> None:
        self._file.append(_csv_line(["" if v is None else v for v in (getattr(sample, n) for n in TELEMETRY_COLUMNS)]))

    __call__ = write  # usable directly as a TelemetrySampler sink

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "TelemetryWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _csv_line(row: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` (dataclasses welcome) as indented JSON, atomically (unique temp file + rename)."""
    text = json.dumps(to_plain(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return atomic_write(path, text + "\n")


# --- frames -----------------------------------------------------------------------------------


def records_to_frame(records: Iterable[RequestRecord | dict[str, Any]]) -> pd.DataFrame:
    """In-memory records -> the same frame shape ``load_records`` returns."""
    rows = [record_to_dict(r) if isinstance(r, RequestRecord) else dict(r) for r in records]
    return _records_frame(rows)


def telemetry_to_frame(samples: Iterable[TelemetrySample]) -> pd.DataFrame:
    import pandas as pd
    frame = pd.DataFrame([to_plain(s) for s in samples], columns=TELEMETRY_COLUMNS)
    return _telemetry_types(frame)


def _records_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd
    frame = pd.DataFrame(rows)
    for column in RECORD_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    # Lists stay lists; a missing list becomes empty so code can iterate without checks.
    for column in ("token_ns", "itl_s", "output_ids"):
        frame[column] = frame[column].apply(lambda v: v if isinstance(v, list) else [])
    frame["details"] = frame["details"].apply(lambda v: v if isinstance(v, dict) else {})
    for column in ("ttft_s", "e2e_s", "tpot_s", "prefill_tok_s", "decode_tok_s"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["ok"] = frame["ok"].fillna(False).astype(bool)
    frame["cold"] = frame["cold"].fillna(False).astype(bool)
    return frame


def _telemetry_types(frame: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd
    for column in TELEMETRY_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
        if column != "label":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["label"] = frame["label"].fillna("").astype(str)
    return frame


# --- loaders ----------------------------------------------------------------------------------


def _run_file(run_dir: str | Path, name: str, required: bool = True) -> Path:
    folder = Path(run_dir)
    if not folder.is_dir():
        raise HarnessError(f"results folder not found: {folder}: pass a folder written by `phi3-harness run`")
    path = folder / name
    if required and not path.is_file():
        raise HarnessError(f"{path} is missing: pass a complete run folder or re-run `phi3-harness run`")
    return path


def _check_version(version: Any, where: str) -> None:
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise HarnessError(
            f"{where} has schema_version {version}, newer than this harness reads ({SCHEMA_VERSION}): "
            "upgrade phi3-harness to read it"
        )


def load_records(run_dir: str | Path) -> pd.DataFrame:
    """results.jsonl -> DataFrame with every RequestRecord column.

    A damaged *last* line is what an interrupted run leaves: it is skipped with a warning. A damaged
    line anywhere else means the file was altered, which is an error.
    """
    path = _run_file(run_dir, RESULTS_FILE)
    lines = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1) if line.strip()]
    rows: list[dict[str, Any]] = []
    for position, (number, line) in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            if position == len(lines) - 1:
                warnings.warn(f"{path}: last line {number} is truncated (interrupted run?); skipped", stacklevel=2)
                continue
            raise HarnessError(f"{path} line {number} is not a JSON record: the file is damaged; re-run") from None
        _check_version(row.get("schema_version"), f"{path} line {number}")
        rows.append(row)
    return _records_frame(rows)


def load_telemetry(run_dir: str | Path) -> pd.DataFrame:
    """telemetry.csv -> DataFrame (empty, with columns, when telemetry was not written).

    A cut-off last row (interrupted run) is skipped with a warning.
    """
    import pandas as pd
    path = _run_file(run_dir, TELEMETRY_FILE, required=False)
    if not path.is_file() or path.stat().st_size == 0:
        return _telemetry_types(pd.DataFrame(columns=TELEMETRY_COLUMNS))
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise HarnessError(f"{path} is not a telemetry CSV file ({error}): the file is damaged; re-run") from None
    header, body = rows[0], rows[1:]
    unknown = [name for name in header if name not in TELEMETRY_COLUMNS]
    if unknown:
        raise HarnessError(f"{path} has unknown columns {unknown}: upgrade phi3-harness to read it")
    if body and len(body[-1]) != len(header):
        warnings.warn(f"{path}: last row is truncated (interrupted run?); skipped", stacklevel=2)
        body = body[:-1]
    frame = pd.DataFrame(body, columns=header)  # "" (None when written) becomes NaN in numeric columns
    return _telemetry_types(frame)


def _load_json(path: Path) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise HarnessError(f"{path} is not valid JSON ({error}): re-run to write it again") from None
    if isinstance(data, dict):
        _check_version(data.get("schema_version"), str(path))
    return data


def load_environment(run_dir: str | Path) -> dict[str, Any]:
    path = _run_file(run_dir, ENVIRONMENT_FILE)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise HarnessError(f"{path} is not a JSON object: re-run to write it again")
    return data


def load_checklist(run_dir: str | Path) -> list[Verdict]:
    path = _run_file(run_dir, CHECKLIST_FILE)
    data = _load_json(path)
    if not isinstance(data, list):
        raise HarnessError(f"{path} is not a list of verdicts: re-run to write it again")
    known = {f.name for f in fields(Verdict)}
    try:
        return [Verdict(**{k: v for k, v in item.items() if k in known}) for item in data]
    except (TypeError, AttributeError) as error:
        raise HarnessError(f"{path} holds a malformed verdict ({error}): re-run to write it again") from None


def load_provider_proof(run_dir: str | Path) -> list[dict[str, Any]]:
    """provider_proof.json as a list (the file may hold one proof or a list); [] when absent."""
    path = _run_file(run_dir, PROVIDER_PROOF_FILE, required=False)
    if not path.is_file():
        return []
    data = _load_json(path)
    return [data] if isinstance(data, dict) else list(data)


def mark_interrupted(run_dir: str | Path, signal_name: str, forced: bool = False) -> None:
    """Stamp environment.json: the run was stopped by ``signal_name`` (``forced``: killed before it judged)."""
    path = Path(run_dir) / ENVIRONMENT_FILE
    if not path.is_file():
        return  # stopped before the environment was written: there is nothing to stamp
    environment = load_environment(run_dir)
    environment["interrupted"] = {"signal": signal_name, "forced": forced}
    write_json(path, environment)
