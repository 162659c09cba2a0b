"""Building verdicts for one item, provider and target: the kinds, the threshold rule, the reasons.

Kinds (plain strings in checklist.json): pass, fail, skip (nothing measured, with why), info
(reported, never gating), inconclusive (measured, but too few samples or no interval to decide),
marginal (the confidence interval straddles the threshold), pass (partial) (what ran passed, a
named part did not run). Nothing here measures or prints.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any, Iterable

from harness.judge.item import Item
from harness.measure.results import Verdict
from harness.stats import CONFIDENCE, finite, percentile, percentile_interval

PARTIAL = "pass (partial)"


def fmt(value: Any) -> str:
    """Numbers as the terminal and the reasons show them: 3 significant digits, thousands grouped."""
    if isinstance(value, float):
        if abs(value) < 1e-6:  # below a byte or a microsecond (or exactly 0): zero to the precision measured
            return "0"
        if abs(value) < 1e-4:  # positional, never "5e-05" (3 significant digits)
            return f"{value:.{2 - math.floor(math.log10(abs(value)))}f}"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "-" if value is None else str(value)


def holds(value: float, operator: str, threshold: float) -> bool:
    """``value <operator> threshold`` for the operators the table uses."""
    if operator == "<=":
        return value <= threshold
    if operator == ">=":
        return value >= threshold
    if operator == ">":
        return value > threshold
    raise ValueError(f"unknown operator {operator!r}")


@dataclass(frozen=True)
class Judgement:
    """One item being judged for one provider and target, with its threshold value."""

    item: Item
    provider: str
    target: str
    threshold: float | str

    def make(self, kind: str, reason: str, measured: Any = None, *, case: str = "", samples: int | None = None,
             low: float | None = None, high: float | None = None) -> Verdict:
        item = self.item
        info_only = item.info_on(self.provider)
        return Verdict(
            check=item.key, title=item.title, verdict=kind, measured=measured,  # type: ignore[arg-type]
            threshold=self.threshold, unit=item.unit, comparison=item.operator, case=case or self.provider,
            reason=reason, gating=item.gating and not info_only, provider=self.provider, target=self.target,
            family=item.family, samples=samples, min_samples=item.min_samples, low=low, high=high,
            confidence=CONFIDENCE if low is not None else None,
        )

    def skip(self, reason: str, case: str = "") -> Verdict:
        return self.make("skip", reason, case=case)

    def fail(self, reason: str, measured: Any = None, case: str = "", samples: int | None = None) -> Verdict:
        return self.make("fail", reason, measured, case=case, samples=samples)

    def passed(self, reason: str, measured: Any = None, case: str = "", samples: int | None = None) -> Verdict:
        return self.make("pass", reason, measured, case=case, samples=samples)

    def inconclusive(self, reason: str, measured: Any = None, case: str = "", samples: int | None = None) -> Verdict:
        return self.make("inconclusive", reason, measured, case=case, samples=samples)

    def too_few(self, samples: int, what: str, case: str = "", measured: Any = None) -> Verdict | None:
        """Inconclusive when ``samples`` is below the item's minimum, else None."""
        if samples >= self.item.min_samples:
            return None
        return self.inconclusive(f"{samples} {what}, need >= {self.item.min_samples}", measured, case, samples)

    def _text(self, value: float) -> str:
        return f"{fmt(value)} {self.item.unit}".strip()

    def against(self, value: float, *, case: str = "", samples: int | None = None, note: str = "") -> Verdict:
        """pass/fail of ``value <operator> threshold``; the reason always says measured vs threshold."""
        limit = float(self.threshold)
        ok = holds(value, self.item.operator, limit)
        relation = self.item.operator if ok else f"is not {self.item.operator}"
        reason = f"{self._text(value)} {relation} {self._text(limit)}" + (f" in {case}" if case else "")
        reason += f"; {note}" if note else ""
        verdict = self.passed(reason, value, case, samples) if ok else self.fail(reason, value, case, samples)
        if self.item.info_on(self.provider):
            verdict.verdict = "info"
            verdict.reason = f"info only on the {self.provider} provider: {verdict.reason}"
        return verdict

    def percentile(self, values: Iterable[float | None], q: float, *, case: str = "", note: str = "") -> Verdict:
        """Judge the q-th percentile by its confidence interval: both ends on the right side of the
        threshold pass, both on the wrong side fail, an interval that straddles it is marginal."""
        data = finite(values)
        n, point = int(data.size), percentile(data, q)
        name = "p50" if q == 50 else f"p{q:g}"
        if (short := self.too_few(n, "samples", case, point)) is not None:
            return short
        interval = percentile_interval(data, q, CONFIDENCE)
        if interval is None or point is None:
            return self.inconclusive(f"{n} samples give no {CONFIDENCE:.0%} interval for the {name}", point, case, n)
        low, high = interval
        limit, op = float(self.threshold), self.item.operator
        low_ok, high_ok = holds(low, op, limit), holds(high, op, limit)
        kind = "pass" if low_ok and high_ok else "fail" if not (low_ok or high_ok) else "marginal"
        words = {"pass": op, "fail": f"is not {op}", "marginal": f"straddles {op}"}[kind]
        reason = (f"{name} {self._text(point)}, {CONFIDENCE:.0%} interval {fmt(low)}-{self._text(high)} {words} "
                  f"{self._text(limit)}" + (f" in {case}" if case else "") + f"; {n} samples"
                  + (f"; {note}" if note else ""))
        return self.make(kind, reason, point, case=case, samples=n, low=low, high=high)
