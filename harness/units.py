"""Numbers for people: one formatter for the terminal, the checklist's reasons and the report.

Three significant figures for small values, thousands separators for large ones, and never
scientific notation: a value below 1e-6 in its unit prints as "≈0", so a least-squares slope of
4.87e-15 MiB/request reads as what it is, zero to the precision measured.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"
TINY = 1e-6  # below this, in the value's own unit, a figure is zero to the precision measured


def is_missing(value: Any) -> bool:
    """None, NaN and pandas' NA/NaT are all "no value"."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pd.NA compare unequal to themselves
    except (TypeError, ValueError):
        return False


def number(value: Any) -> str:
    """3 significant figures below 10, fewer decimals above, separators from 1,000; no 1e-15."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return f"{int(value):,}"
    if not isinstance(value, float):
        return str(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    magnitude = abs(value)
    if magnitude < TINY:
        return "0" if magnitude == 0 else "≈0"
    if magnitude < 1e-4:  # fixed point: .3g would switch to scientific notation here
        return f"{value:.{2 - math.floor(math.log10(magnitude))}f}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def milliseconds(seconds: Any) -> str:
    """A duration in seconds shown in ms (the unit latency tables use)."""
    return MISSING if is_missing(seconds) else number(float(seconds) * 1000.0)


def duration(seconds: Any) -> str:
    """A duration with the unit that keeps it readable: 546 µs, 2.63 ms, 1.23 s."""
    if is_missing(seconds):
        return MISSING
    value = float(seconds)
    magnitude = abs(value)
    if magnitude != 0 and magnitude < 1e-3:
        return f"{number(value * 1e6)} µs"
    if magnitude < 1:
        return f"{number(value * 1e3)} ms"
    return f"{number(value)} s"
