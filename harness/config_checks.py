"""Config checks: ranges, provider names and combinations on a built config (harness/config.py).

Apart from config.py so that each stays one job: config.py reads, merges and types the layers; this
says whether the merged values make sense, naming the file (or "override") each bad value came from.
It takes the Config by duck type: importing config.py here would make the two a cycle.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.providers.spec import AUTO, EXECUTION_PROVIDERS

# Blocks per thread at the start of a loop: beyond a few dozen the blocks are single iterations.
MAX_DYNAMIC_BLOCK_BASE = 1024


def check_config(config: Any, origin: Mapping[str, str]) -> None:
    """Range and name checks on a built ``harness.config.Config``; errors name where the value came from."""

    def fail(key: str, problem: str, fix: str) -> None:
        raise HarnessError(f"{origin.get(key, 'defaults')}: key '{key}' {problem}: {fix}")

    known = ", ".join(EXECUTION_PROVIDERS)
    for key, names, allowed in (
        ("matrix.providers", config.matrix.providers, (*EXECUTION_PROVIDERS, AUTO)),
        ("fallback.chain", config.fallback.chain, tuple(EXECUTION_PROVIDERS)),
        ("fallback.disabled", config.fallback.disabled, tuple(EXECUTION_PROVIDERS)),
        ("gate.require", config.gate.require, tuple(EXECUTION_PROVIDERS)),
    ):
        if not names and key not in ("fallback.disabled", "gate.require"):
            fail(key, "is empty", f"list at least one of {known}")
        for name in names:
            if name not in allowed:
                fail(key, f"names unknown provider {name!r}", f"use {', '.join(allowed)}")
        if len(set(names)) != len(names):
            fail(key, "repeats a provider", "list each once")
    matrix = config.matrix
    for key, values in (("matrix.prompt_lengths", matrix.prompt_lengths), ("matrix.concurrency", matrix.concurrency)):
        if not values or any(v < 1 for v in values):
            fail(key, f"must be a non-empty list of integers >= 1, got {list(values)}", "fix the list")
    if any(rate <= 0 for rate in matrix.arrival_rates):
        fail("matrix.arrival_rates", f"must be rates > 0 (requests per second), got {list(matrix.arrival_rates)}",
             "fix the list, or leave it empty for no open-loop cases")
    if any(not 0 < load <= 100 for load in matrix.sweep):
        fail("matrix.sweep", f"must be loads > 0 and <= 100 (multiples of capacity), got {list(matrix.sweep)}",
             "e.g. [0.25, 0.5, 1, 2, 3], or leave it empty for no sweep")
    for key, value, low in (
        ("matrix.max_new_tokens", matrix.max_new_tokens, 1),
        ("matrix.repetitions", matrix.repetitions, 1),
        ("matrix.warmup", matrix.warmup, 0),
        ("matrix.requests_per_level", matrix.requests_per_level, 1),
        ("matrix.seed", matrix.seed, 0),
    ):
        if value < low:
            fail(key, f"must be >= {low}, got {value}", "raise it")
    if config.telemetry.interval_s < 0.005:  # shorter only busy-loops the sampler and measures itself
        fail("telemetry.interval_s", f"must be > 0 and >= 0.005 s, got {config.telemetry.interval_s}", "use e.g. 0.05")
    for f in fields(config.http):
        value = getattr(config.http, f.name)
        if value < 0 or (value == 0 and f.name != "health_wait_s"):  # a zero wait: judge /health at once
            fail(f"http.{f.name}", f"must be > 0, got {value}", "use a number of seconds")
    for name, entry in config.providers.items():
        for key in ("threads", "intra_op_num_threads", "inter_op_num_threads"):
            value = getattr(entry, key)
            if value is not None and value < 1:
                fail(f"provider.{name}.{key}", f"must be >= 1, got {value}", "remove it for ORT's default")
        if not 0 <= entry.dynamic_block_base <= MAX_DYNAMIC_BLOCK_BASE:  # ORT parses it as a C int
            fail(f"provider.{name}.dynamic_block_base",
                 f"must be 0..{MAX_DYNAMIC_BLOCK_BASE}, got {entry.dynamic_block_base}",
                 "use 0 for ORT's fixed blocks, or e.g. 4")
        if entry.force_spinning_stop and not entry.allow_spinning:
            fail(f"provider.{name}.force_spinning_stop", "only matters with allow_spinning = true",
                 "set allow_spinning = true too, or remove it")
        if entry.options.get("device_id", 0) < 0:
            fail(f"provider.{name}.device_id", f"must be >= 0, got {entry.options['device_id']}", "use 0 for the first")
    for f in fields(config.thresholds):
        value = getattr(config.thresholds, f.name)
        if value < 0:
            fail(f"thresholds.{f.name}", f"must be >= 0, got {value}", "use a non-negative value")
    for name, value in config.slo.limits().items():
        if not value > 0 or value == float("inf"):
            fail(f"slo.{name}_s", f"must be a positive, finite number of seconds, got {value}", "e.g. 0.3")
    if config.thresholds.provider_share_min > 1:
        fail("thresholds.provider_share_min", f"is a fraction, got {config.thresholds.provider_share_min}", "use 0..1")
