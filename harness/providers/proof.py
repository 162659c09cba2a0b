"""Proof of execution: where ORT actually ran the kernels, read from its profiling file.

ORT profiling (``SessionOptions.enable_profiling``) writes a JSON array of Chrome-trace events.
Events with ``cat == "Node"`` and a name ending in ``_kernel_time`` are kernel executions: ``dur``
is microseconds and ``args.provider`` names the execution provider. Partitions an EP compiled into
one fused node keep their own names (DirectML: ``DmlFusedNode_<i>_<j>``, sometimes with no
``args``); those are classified by name.

Caveat worth stating in reports: accelerator EPs enqueue work asynchronously, so their kernel time
is mostly host-side submit time. The node share (placement) is the primary measure; time share
is secondary. Running the profiled generation needs the engine, so it lives in
harness/measure/proof.py; this module only reads profiles.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from harness.errors import HarnessError
from harness.providers.session import ProviderSettings

KERNEL_SUFFIX = "_kernel_time"
UNKNOWN_PROVIDER = "unknown"

# Fused-partition name prefixes -> provider, for events that come without args.provider.
FUSED_NODE_PREFIXES: dict[str, str] = {
    "DmlFusedNode": "DmlExecutionProvider",
    "OpenVINO-EP-subgraph": "OpenVINOExecutionProvider",
}
# Compiling EPs also name fused nodes "<EP>_<...>" (QNNExecutionProvider_QNN_<hash>_0_0, ...).
_EP_PREFIX = re.compile(r"^([A-Za-z0-9]+ExecutionProvider)_")


@dataclass(frozen=True)
class ProviderRow:
    provider: str
    nodes: int  # distinct graph nodes (or fused partitions) that ran on this provider
    kernel_time_us: int  # summed over every execution of those nodes
    node_share: float
    time_share: float
    executions: int  # kernel events: nodes x runs

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "nodes": self.nodes,
            "kernel_time_us": self.kernel_time_us,
            "node_share": self.node_share,
            "time_share": self.time_share,
        }


@dataclass(frozen=True)
class ProviderTable:
    rows: tuple[ProviderRow, ...]  # most nodes first
    total_nodes: int
    total_time_us: int
    classified_by_name: int  # kernel events whose provider came from the node name, not args

    def row(self, provider: str) -> ProviderRow | None:
        return next((row for row in self.rows if row.provider == provider), None)

    def node_share(self, provider: str) -> float:
        row = self.row(provider)
        return row.node_share if row else 0.0

    def time_share(self, provider: str) -> float:
        row = self.row(provider)
        return row.time_share if row else 0.0

    def to_rows(self) -> list[dict[str, Any]]:
        return [row.to_dict() for row in self.rows]


@dataclass(frozen=True)
class KernelEvent:
    node: str
    provider: str
    dur_us: int
    by_name: bool


def load_profile(path: Path | str) -> list[dict[str, Any]]:
    """The event list of an ORT profile (a bare JSON array, or Chrome's {"traceEvents": [...]})."""
    profile = Path(path)
    try:
        text = profile.read_text(encoding="utf-8")
    except OSError as error:
        raise HarnessError(f"cannot read profile {profile} ({error.strerror}): profile the run again") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # A run killed mid-write leaves "[{...},{...}," - keep the complete events.
        data = _salvage(text, profile)
    if isinstance(data, Mapping):
        data = data.get("traceEvents")
    if not isinstance(data, list):
        raise HarnessError(f"{profile} is not an ONNX Runtime profile (expected a JSON array of events)")
    return [event for event in data if isinstance(event, Mapping)]


def kernel_events(events: Iterable[Mapping[str, Any]]) -> list[KernelEvent]:
    found = []
    for event in events:
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX):
            continue  # session phases, fence_before/after markers, etc.
        node = name[: -len(KERNEL_SUFFIX)]
        args = event.get("args")
        provider = args.get("provider") if isinstance(args, Mapping) else None
        by_name = not provider
        found.append(KernelEvent(node, str(provider or classify_by_name(node)), _duration(event.get("dur")), by_name))
    return found


def classify_by_name(node: str) -> str:
    """Provider of a kernel event that carries no ``args.provider``, judged from the node's name."""
    for prefix, provider in FUSED_NODE_PREFIXES.items():
        if node.startswith(prefix):
            return provider
    match = _EP_PREFIX.match(node)
    return match.group(1) if match else UNKNOWN_PROVIDER


def provider_table(events: Iterable[Mapping[str, Any]]) -> ProviderTable:
    """Kernel nodes and time per provider; shares are of all kernel nodes / all kernel time."""
    kernels = kernel_events(events)
    if not kernels:
        raise HarnessError(
            "the profile has no kernel events: profile a session that ran at least once "
            "(enable_profiling before the first Run)"
        )
    nodes: dict[str, set[str]] = {}
    time_us: dict[str, int] = {}
    executions: dict[str, int] = {}
    for kernel in kernels:
        nodes.setdefault(kernel.provider, set()).add(kernel.node)
        time_us[kernel.provider] = time_us.get(kernel.provider, 0) + kernel.dur_us
        executions[kernel.provider] = executions.get(kernel.provider, 0) + 1
    total_nodes = sum(len(names) for names in nodes.values())
    total_time = sum(time_us.values())
    rows = [
        ProviderRow(
            provider=provider,
            nodes=len(names),
            kernel_time_us=time_us[provider],
            node_share=_share(len(names), total_nodes),
            time_share=_share(time_us[provider], total_time),
            executions=executions[provider],
        )
        for provider, names in nodes.items()
    ]
    rows.sort(key=lambda row: (-row.nodes, -row.kernel_time_us, row.provider))
    return ProviderTable(tuple(rows), total_nodes, total_time, sum(k.by_name for k in kernels))


def parse_profile(path: Path | str) -> ProviderTable:
    return provider_table(load_profile(path))


def proof_record(
    table: ProviderTable, settings: ProviderSettings, device_kind: str = "unknown"
) -> dict[str, Any]:
    """The record the "provider active" checklist item reads (run folder: provider_proof.json)."""
    ep = settings.execution_provider
    return {
        "requested": settings.name,
        "execution_provider": ep,
        "providers": table.to_rows(),
        "share_on_requested": table.node_share(ep),
        "strict": settings.strict,
        "device_kind": device_kind,
    }


def check_strict(table: ProviderTable, settings: ProviderSettings) -> None:
    """Strict mode: a node anywhere but on the requested provider is an error (CPU fallback included)."""
    if not settings.strict:
        return
    elsewhere = [row for row in table.rows if row.provider != settings.execution_provider]
    if elsewhere:
        spots = ", ".join(f"{row.nodes} on {row.provider}" for row in elsewhere)
        why = settings.spec.strict_note or (
            "the model has ops this provider does not run; use a model built for it, or drop strict mode "
            "to allow the fallback")
        raise HarnessError(f"strict mode: {spots} instead of {settings.execution_provider}: {why}")


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _duration(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0


def _salvage(text: str, profile: Path) -> Any:
    """Drop a half-written last event: ORT writes one event per line, so cut at line starts."""
    with contextlib.suppress(json.JSONDecodeError):
        return json.loads(text.rstrip().rstrip(",") + "]")  # only the closing bracket is missing
    end = len(text)
    for _ in range(3):
        start = text.rfind("\n{", 0, end)
        if start < 0:
            break
        try:
            return json.loads(text[:start].rstrip().rstrip(",") + "]")
        except json.JSONDecodeError:
            end = start
    raise HarnessError(f"{profile} is not valid JSON: the profile is damaged, profile the run again")
