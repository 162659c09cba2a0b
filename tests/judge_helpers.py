"""Hand-made measurements for the judge tests: records, telemetry, evidence, one item's verdict."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.config import Thresholds
from harness.judge.evidence import CheckInputs, Evidence
from harness.judge.table import judge_item
from harness.measure.results import TelemetrySample, Verdict, records_to_frame, telemetry_to_frame

MIB = 1024**2
GIB = 1024**3
S = 1_000_000_000


def rec(index: int = 0, **changes: Any) -> dict[str, Any]:
    """One successful warm latency request of cpu-p16-c1, submitted at ``index`` seconds."""
    row = dict(run_id="r", case_id="cpu-p16-c1", test="latency", target="engine", provider="cpu", prompt_length=16,
               concurrency=1, request_index=index, worker=0, cold=False, submit_ns=index * S,
               first_token_ns=index * S + S // 10, end_ns=index * S + S // 2, token_ns=[], prompt_tokens=16,
               completion_tokens=4, ttft_s=0.1, e2e_s=0.5, tpot_s=0.1, itl_s=[], prefill_tok_s=160.0,
               decode_tok_s=10.0, ok=True, output_text=f"out {index}")
    row.update(changes)
    return row


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return records_to_frame(list(rows))


def tele(*rows: dict[str, Any]) -> pd.DataFrame:
    base = {"peak_rss_bytes": 0, "cpu_percent": 0.0, "system_mem_used_bytes": 1, "rss_bytes": 1}
    return telemetry_to_frame([TelemetrySample(**{**base, **row}) for row in rows])


def judge(key: str, records: pd.DataFrame | None = None, telemetry: pd.DataFrame | None = None, *,
          provider: str = "cpu", target: str = "engine", thresholds: Thresholds | None = None,
          **evidence: Any) -> Verdict:
    inputs = CheckInputs(provider, records if records is not None else frame(), telemetry if telemetry is not None
                         else tele(), Evidence(**evidence), target)
    return judge_item(key, inputs, thresholds or Thresholds())


def latency(*values: tuple[float, float], **changes: Any) -> list[dict[str, Any]]:
    """Warm latency records with (ttft, e2e) pairs."""
    return [rec(i, ttft_s=t, e2e_s=e, **changes) for i, (t, e) in enumerate(values, 1)]
