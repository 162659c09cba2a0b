"""`phi3-harness run --json`: the serving summary, the verdicts and the gate as one object.

Reads the run folder only (records, checklist), like the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.measure.results import Verdict


def as_json(run_dir: Path, verdicts: Sequence[Verdict], code: int, reason: str,
            limits: Mapping[str, float] | None, pytest_status: int) -> dict[str, Any]:
    """What `run --json` prints: the serving summary per target/provider, the verdicts and the gate."""
    import dataclasses

    from harness.measure.results import load_records
    from harness.report.summary import summarize_run

    try:
        summaries = [summary.as_dict() for summary in summarize_run(load_records(run_dir), limits)]
    except (OSError, ValueError):
        summaries = []
    return {
        "run_dir": str(run_dir),
        "gate": {"exit_code": code, "verdict": "PASS" if code == 0 else "FAIL", "reason": reason},
        "pytest_status": pytest_status,
        "slo": dict(limits or {}),
        "summary": summaries,
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
    }
