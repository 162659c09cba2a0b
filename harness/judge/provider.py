"""Provider proof: the requested execution provider ran the graph's kernels (ORT profiling), and
which kind of device stands behind it."""

from __future__ import annotations

from typing import Any, Mapping

from harness.judge.evidence import CheckInputs
from harness.judge.verdicts import Judgement, fmt
from harness.measure.results import Verdict


def _nodes(proof: Mapping[str, Any]) -> int:
    return sum(int(entry.get("nodes") or 0) for entry in proof.get("providers", []))


def provider_active(j: Judgement, inputs: CheckInputs) -> Verdict:
    proof, requested = inputs.evidence.proof, inputs.provider
    if not proof:
        return j.skip(f"no provider proof for {requested} (profiling was not run)")
    if not proof.get("requested"):
        return j.fail("the provider proof does not say which provider it was taken for (no 'requested')")
    if proof["requested"] != requested:
        return j.fail(f"the proof is for {proof['requested']!r}, not {requested!r}")
    share = proof.get("share_on_requested")
    ep = proof.get("execution_provider", requested)
    nodes = _nodes(proof)
    if share is None or nodes == 0:
        return j.inconclusive(f"the profile has no kernel nodes attributed to providers for {ep}", samples=nodes)
    others = ", ".join(f"{p.get('provider')} {fmt(p.get('node_share'))}" for p in proof.get("providers", [])
                       if p.get("provider") != ep)
    note = f"share of {nodes} kernel nodes on {ep}" + (f" (others: {others})" if others else "")
    return j.against(float(share), case=requested, samples=nodes, note=note)


def accelerator_kind(j: Judgement, inputs: CheckInputs) -> Verdict:
    proof = inputs.evidence.proof
    kind = proof.get("device_kind") if proof else None
    if not kind:
        return j.skip("the platform does not tell which device runs the provider")
    ep = proof.get("execution_provider", inputs.provider) if proof else inputs.provider
    return j.make("info", f"{ep} runs on {kind}", kind, samples=1)
