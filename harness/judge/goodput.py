"""Goodput: requests that succeeded and met every SLO (harness/judge/slo.py), per second and as a share.

A request is *good* when it succeeded and meets every SLO that is set: ``ttft``, ``tpot`` and
``e2el``. As in vLLM's bench, a request with one output token has no TPOT and meets any TPOT
objective; a missing TTFT or E2E meets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from harness.judge.slo import SLO_COLUMNS

if TYPE_CHECKING:  # frames are pandas at run time; the checklist table loads without it (gate.py)
    import pandas as pd


def good_requests(records: pd.DataFrame, limits: Mapping[str, float]) -> pd.Series:
    """True per record when it succeeded and meets every objective."""
    import pandas as pd  # loaded already (records is a frame); see the TYPE_CHECKING import

    good = records["ok"].astype(bool).copy()
    for name, limit in limits.items():
        values = pd.to_numeric(records[SLO_COLUMNS[name]], errors="coerce")
        if name == "tpot":
            met = values.isna() & (records["completion_tokens"] <= 1) | (values <= limit)
        else:
            met = values <= limit  # a missing TTFT or E2E never meets an objective
        good &= met.fillna(False).astype(bool)
    return good


@dataclass(frozen=True)
class Goodput:
    good: int
    total: int
    duration_s: float | None

    @property
    def share(self) -> float | None:
        return self.good / self.total if self.total else None

    @property
    def per_s(self) -> float | None:
        return self.good / self.duration_s if self.duration_s else None

    def as_dict(self) -> dict[str, float | int | None]:
        return {"good": self.good, "total": self.total, "share": self.share, "goodput_per_s": self.per_s,
                "duration_s": self.duration_s}


def goodput(records: pd.DataFrame, limits: Mapping[str, float], duration_s: float | None) -> Goodput:
    """Good requests among ``records`` (failed ones count in the total) over ``duration_s``."""
    if records.empty:
        return Goodput(0, 0, duration_s)
    return Goodput(int(good_requests(records, limits).sum()), len(records), duration_s)
