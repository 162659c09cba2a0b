"""Service-level objectives, with the names vLLM bench, AIPerf and GuideLLM use.

A request is *good* when it succeeded and meets every SLO that is set: ``ttft`` (time to first
token), ``tpot`` (time per output token after the first) and ``e2el`` (end-to-end latency).
Goodput = good requests per second of the case's duration, and the share of good requests.
As in vLLM's bench, a request with one output token has no TPOT and meets any TPOT objective.
Definitions: docs/ARCHITECTURE.md, "Metrics".
"""

from __future__ import annotations

import math
import re
from typing import Mapping

from harness.errors import HarnessError
from harness.units import duration

# SLO name -> records column (seconds)
SLO_COLUMNS: dict[str, str] = {"ttft": "ttft_s", "tpot": "tpot_s", "e2el": "e2e_s"}
_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0}
_ITEM = re.compile(r"^\s*([a-z0-9_]+)\s*[=:]\s*([^\s]+)\s*$", re.IGNORECASE)
_VALUE = re.compile(r"^([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(us|µs|ms|s)?$", re.IGNORECASE)


def parse_slo(text: str) -> dict[str, float]:
    """``"ttft=300ms,tpot=50ms,e2el=2s"`` -> {"ttft": 0.3, "tpot": 0.05, "e2el": 2.0} (seconds).

    A bare number is seconds. Unknown names, missing units that do not parse, zero, negative and
    non-finite values are one-line errors.
    """
    limits: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        match = _ITEM.match(part)
        if not match:
            raise HarnessError(f"--slo: '{part.strip()}' is not NAME=VALUE: write e.g. ttft=300ms,tpot=50ms,e2el=2s")
        name, raw = match.group(1).lower(), match.group(2)
        if name not in SLO_COLUMNS:
            raise HarnessError(f"--slo: unknown objective '{name}' (known: {', '.join(SLO_COLUMNS)})")
        limits[name] = _seconds(name, raw)
    if not limits:
        raise HarnessError("--slo: no objective given: write e.g. ttft=300ms,tpot=50ms,e2el=2s")
    return limits


def _seconds(name: str, raw: str) -> float:
    match = _VALUE.match(raw.strip())
    if not match:
        raise HarnessError(f"--slo: {name}={raw} is not a duration: write a number with us, ms or s (e.g. 300ms)")
    value = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    check_limit(name, value)
    return value


def check_limit(name: str, seconds: float) -> None:
    if not math.isfinite(seconds) or seconds <= 0:
        raise HarnessError(f"slo: {name} must be a positive, finite duration, got {seconds!r}")


def describe(limits: Mapping[str, float]) -> str:
    """``ttft<=300 ms, tpot<=50 ms`` for headings and reasons."""
    return ", ".join(f"{name}<={duration(limit)}" for name, limit in limits.items())
