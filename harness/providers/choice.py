"""Which provider runs: a named one must be usable; ``auto`` walks the chain and proves its pick.

``require_usable`` is the one implementation of "a provider named on the command line must be
usable" (run, doctor, the suites). ``choose_provider("auto", ...)`` takes a candidate only after a
profiled generation shows it runs at least ``share_min`` of the graph's kernel nodes (a Phi-3 on
QNN HTP can create a session and still run almost nothing on the NPU), and records why each
earlier candidate was passed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Sequence

from harness.errors import HarnessError
from harness.providers.probe import ProbeResult
from harness.providers.spec import AUTO, DEFAULT_CHAIN, SPECS, short_name, spec_for

ProbeFn = Callable[[str], ProbeResult]
VerifyFn = Callable[[str], dict[str, Any]]  # provider -> proof record (share_on_requested, ...)


@dataclass(frozen=True)
class Choice:
    requested: str
    chosen: str
    passed_over: list[tuple[str, str]]  # (short name, why it was not taken), in chain order
    probe: ProbeResult | None = None  # the chosen provider's probe
    proof: dict[str, Any] | None = None  # auto: the profiled check that earned the choice

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requested": self.requested,
            "chosen": self.chosen,
            "passed_over": [{"provider": name, "reason": reason} for name, reason in self.passed_over],
        }
        if self.proof is not None:
            data["share_on_chosen"] = self.proof.get("share_on_requested")
        return data


def check_chain(chain: Sequence[str]) -> None:
    if not chain:
        raise HarnessError("the fallback chain is empty: list providers to try, e.g. fallback.chain = [\"dml\", \"cpu\"]")
    for name in chain:
        if short_name(name) == AUTO:
            raise HarnessError(f"the fallback chain cannot contain 'auto': list real providers ({', '.join(SPECS)})")
        spec_for(name)  # unknown names fail here


def require_usable(name: str, probe_fn: ProbeFn, disabled: Collection[str] = ()) -> ProbeResult:
    """A provider named explicitly: switched off or not usable is a one-line HarnessError."""
    wanted = short_name(name)
    spec_for(wanted)  # unknown names fail here, before probing
    if wanted in {short_name(item) for item in disabled}:
        raise HarnessError(
            f"provider {wanted} is switched off in the config (fallback.disabled): "
            "remove it from the disabled list or pick another"
        )
    result = probe_fn(wanted)
    if not result.usable:
        raise HarnessError(f"provider {wanted} is {result.status.replace('_', ' ')}: {result.reason}")
    return result


def choose_provider(
    requested: str,
    chain: Sequence[str] = DEFAULT_CHAIN,
    probe_fn: ProbeFn | None = None,
    disabled: Collection[str] = (),
    verify: VerifyFn | None = None,
    share_min: float = 0.5,
) -> Choice:
    """``auto`` walks ``chain`` and takes the first provider that is usable and proves itself.

    ``probe_fn(name)`` is usually ``make_probe_fn(model)``; ``verify(name)`` runs a profiled
    generation (harness.measure.proof) and returns its proof record. Without ``verify`` a usable
    probe is enough (callers that cannot run the engine say so). Nothing usable is one HarnessError.
    """
    if probe_fn is None:
        raise HarnessError("choose_provider needs a probe: pass make_probe_fn(model_dir)")
    wanted = short_name(requested)
    if wanted != AUTO:
        return Choice(wanted, wanted, [], require_usable(wanted, probe_fn, disabled))
    check_chain(chain)
    off = {short_name(name) for name in disabled}
    passed_over: list[tuple[str, str]] = []
    for name in (short_name(item) for item in chain):
        if name in off:
            passed_over.append((name, "switched off in the config (fallback.disabled)"))
            continue
        result = probe_fn(name)
        if not result.usable:
            passed_over.append((name, f"{result.status.replace('_', ' ')}: {result.reason}"))
            continue
        proof, why_not = _verified(name, verify, share_min)
        if why_not:
            passed_over.append((name, why_not))
            continue
        return Choice(AUTO, name, passed_over, result, proof)
    summary = "; ".join(f"{name}: {reason}" for name, reason in passed_over)
    raise HarnessError(f"no usable provider in the chain {', '.join(chain)} ({summary}): run 'phi3-harness doctor'")


def _verified(name: str, verify: VerifyFn | None, share_min: float) -> tuple[dict[str, Any] | None, str]:
    """(proof, "") when ``name`` runs enough of the graph, else (proof or None, why it was passed over)."""
    if verify is None:
        return None, ""
    try:
        proof = verify(name)
    except HarnessError as error:
        return None, f"usable, but the profiled generation failed: {error}"
    share = float(proof.get("share_on_requested") or 0.0)
    if share < share_min:
        ep = proof.get("execution_provider", name)
        return proof, (f"usable, but only {share:.0%} of kernel nodes ran on {ep} "
                       f"(auto needs >= {share_min:.0%}, thresholds.provider_share_min)")
    return proof, ""
