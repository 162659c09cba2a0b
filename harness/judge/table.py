"""The checklist as one table: key, title, operator, unit, case family, minimum samples, threshold,
applicability, gating, and the function that judges it. DESIGN.md's table in code; the terminal,
the page and checklist.json list items in this order.
"""

from __future__ import annotations

from typing import Sequence

from harness.config import Thresholds
from harness.judge import concurrency, families, latency, load, memory, provider, resources, responses, tokens
from harness.judge.evidence import CheckInputs
from harness.judge.item import Item, accelerators_only, http_targets_only, in_process_only
from harness.judge.verdicts import Judgement
from harness.measure.results import Verdict
from harness.providers.spec import runs_on_cpu

PROFILE = "a profiled generation (ONNX Runtime profiling, one event per kernel)"

ITEMS: tuple[Item, ...] = (
    Item("model_loads", "Model loads", "", "s", "the model load of the provider", 1, "no error", load.model_loads),
    Item("health", "Health endpoint", "", "", "the server's health endpoint", 1, "ok", load.health,
         applies=http_targets_only),
    Item("real_responses", "Real responses", "", "", families.RESPONSES, 2, "pass", responses.real_responses),
    Item("provider_active", "Provider active", ">=", "", PROFILE, 1, "provider_share_min", provider.provider_active,
         applies=in_process_only),
    Item("accelerator_kind", "Accelerator kind", "", "", PROFILE, 1, "reported", provider.accelerator_kind,
         gating=False),
    Item("simple_query", "Simple query (E2E p50)", "<=", "s", families.LATENCY_SWEEP, 8, "simple_query_p50_s",
         latency.simple_query),
    Item("first_response", "First response (cold TTFT)", "<=", "s", families.COLD, 1, "first_response_s",
         latency.first_response),
    Item("subsequent_responses", "Subsequent responses (warm TTFT p50)", "<=", "s", families.LATENCY_SWEEP, 8,
         "subsequent_p50_s", latency.subsequent_responses),
    Item("token_counting", "Token counting", "", "", families.RESPONSES + ", counted independently", 3, "exact",
         tokens.token_counting),
    Item("memory", "Memory peak", "<=", "GiB", families.ALL_TELEMETRY, 1, "memory_peak_gib", memory.memory),
    Item("memory_stable", "Memory stable", "<=", "MiB/request", families.MEMORY_GROWTH, 8,
         "memory_growth_mib_per_request", memory.memory_stable),
    Item("concurrency", "Concurrency", "", "", families.CONCURRENT, 4, "all ok", concurrency.concurrency),
    Item("cpu_usage", "CPU usage", "<=", "%", families.DURING_GENERATION, 3, "cpu_percent_max", resources.cpu_usage,
         info_on=runs_on_cpu),  # a provider that computes on the CPU: high usage is the expected outcome
    Item("accelerator_utilisation", "Accelerator utilisation", ">", "%", families.DURING_GENERATION, 1,
         "accelerator_util_min_percent", resources.accelerator_utilisation, applies=accelerators_only),
)

BY_KEY: dict[str, Item] = {item.key: item for item in ITEMS}
# key -> title, in the checklist's order
CHECKS: dict[str, str] = {item.key: item.title for item in ITEMS}


def judgement(item: Item, provider: str, target: str, thresholds: Thresholds) -> Judgement:
    value = getattr(thresholds, item.threshold) if item.numeric else item.threshold
    return Judgement(item, provider, target, value)


def judge_item(key: str, inputs: CheckInputs, thresholds: Thresholds) -> Verdict:
    """One item's verdict; "skip" (not gating) where the item does not apply to the provider or target."""
    item = BY_KEY[key]
    j = judgement(item, inputs.provider, inputs.target, thresholds)
    if (why := item.applies(inputs.provider, inputs.target)) is not None:
        verdict = j.skip(why)
        verdict.applicable = False
        return verdict
    return item.judge(j, inputs)


def evaluate(inputs: CheckInputs, thresholds: Thresholds) -> list[Verdict]:
    """Every item for one provider and target, in the table's order."""
    return [judge_item(item.key, inputs, thresholds) for item in ITEMS]


def skip_all(provider: str, reason: str, target: str = "engine", thresholds: Thresholds | None = None,
             keep: Sequence[Verdict] = ()) -> list[Verdict]:
    """Every item skipped with ``reason`` (a provider that could not run), except the verdicts in ``keep``."""
    kept = {verdict.check: verdict for verdict in keep}
    verdicts = []
    for item in ITEMS:
        if item.key in kept:
            verdicts.append(kept[item.key])
            continue
        verdict = judgement(item, provider, target, thresholds or Thresholds()).skip(reason)
        verdict.applicable = item.applies(provider, target) is None
        verdicts.append(verdict)
    return verdicts
