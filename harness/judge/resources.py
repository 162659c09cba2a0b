"""Resource items from telemetry during generation: process CPU, accelerator engine utilisation."""

from __future__ import annotations

from harness.judge import families
from harness.judge.evidence import CheckInputs
from harness.judge.verdicts import Judgement
from harness.measure.results import Verdict


def cpu_usage(j: Judgement, inputs: CheckInputs) -> Verdict:
    values = families.during_generation(inputs.telemetry, inputs.records)["cpu_percent"].dropna()
    if values.empty:
        return j.skip("no telemetry samples during generation")
    if (short := j.too_few(len(values), "telemetry samples during generation")) is not None:
        return short
    return j.against(float(values.mean()), samples=len(values),
                     note=f"mean of {len(values)} samples, all cores = 100 %")


def accelerator_utilisation(j: Judgement, inputs: CheckInputs) -> Verdict:
    values = families.during_generation(inputs.telemetry, inputs.records)["gpu_util_percent"].dropna()
    if values.empty:
        return j.skip(inputs.evidence.gpu_counters_reason or "no GPU counter readings during generation")
    return j.against(float(values.max()), samples=len(values),
                     note=f"peak engine utilisation of this process over {len(values)} samples")
