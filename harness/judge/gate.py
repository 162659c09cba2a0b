"""The CI gate on verdicts: exit 1 when a gating item failed, or when a provider the run had to prove
has a gating item without a measured verdict. The rule is written out in docs/ARCHITECTURE.md.

Measured verdicts are pass, fail, marginal and pass (partial). A skip never stands in for a pass,
and inconclusive (too few samples) does not prove an item either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from harness.judge.table import BY_KEY
from harness.measure.results import Verdict

MEASURED = frozenset({"pass", "fail", "marginal", "pass (partial)"})


@dataclass(frozen=True)
class GateResult:
    code: int  # the exit code: 0 or 1
    message: str  # one line saying why


def provider_of(verdict: Verdict) -> str:
    """The verdict's provider; older checklists name it only as the case's first part."""
    return verdict.provider or verdict.case.split("-", 1)[0]


def providers_in(verdicts: Iterable[Verdict]) -> list[str]:
    return list(dict.fromkeys(provider_of(v) for v in verdicts))


def applies(verdict: Verdict) -> bool:
    """The verdict's own flag, and the table's rule for checklists written before the flag existed."""
    item = BY_KEY.get(verdict.check)
    if item is not None and item.applies(provider_of(verdict), verdict.target or "engine") is not None:
        return False
    return verdict.applicable


def _gating(verdicts: Sequence[Verdict], provider: str) -> list[Verdict]:
    return [v for v in verdicts if provider_of(v) == provider and v.gating and applies(v)]


def unproven(verdicts: Sequence[Verdict], provider: str) -> list[Verdict]:
    """The provider's applicable gating items without a measured verdict."""
    return [v for v in _gating(verdicts, provider) if v.verdict not in MEASURED]


def _gap(verdicts: Sequence[Verdict], provider: str) -> str | None:
    """Why ``provider`` is not proven, or None when every applicable gating item was measured."""
    mine = _gating(verdicts, provider)
    missing = unproven(verdicts, provider)
    if not mine or len(missing) == len(mine):
        return f"nothing measured for {provider}"
    if missing:
        return f"not proven for {provider}: " + ", ".join(f"{v.check} ({v.verdict})" for v in missing)
    return None


def _merge(gaps: list[str]) -> list[str]:
    """"nothing measured for dml", "nothing measured for qnn" -> "nothing measured for dml, qnn"."""
    prefix = "nothing measured for "
    nothing = [gap[len(prefix):] for gap in gaps if gap.startswith(prefix)]
    rest = [gap for gap in gaps if not gap.startswith(prefix)]
    return ([prefix + ", ".join(nothing)] if nothing else []) + rest


def gate(verdicts: Sequence[Verdict], required: Sequence[str] = ()) -> GateResult:
    """Exit code and one line. ``required``: providers that must be proven; empty means at least one
    provider of the run must be."""
    failed = [v for v in verdicts if v.verdict == "fail" and v.gating]
    if required:
        gaps = [gap for provider in required if (gap := _gap(verdicts, provider))]
    else:
        candidates = providers_in(verdicts)
        all_gaps = [gap for provider in candidates if (gap := _gap(verdicts, provider))]
        gaps = all_gaps if len(all_gaps) == len(candidates) else []
        if not candidates:
            gaps = ["nothing measured: the checklist is empty"]
    parts = []
    if failed:
        parts.append(f"{len(failed)} gating item(s) failed: "
                     + ", ".join(f"{v.check} [{v.case or provider_of(v)}]" for v in failed[:4])
                     + (" ..." if len(failed) > 4 else ""))
    parts.extend(_merge(gaps))
    if parts:
        return GateResult(1, "; ".join(parts))
    proven = [p for p in (required or providers_in(verdicts)) if not _gap(verdicts, p)]
    return GateResult(0, f"every gating item measured and passed for {', '.join(proven)}")
