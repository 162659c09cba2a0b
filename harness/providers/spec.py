"""One ``ProviderSpec`` per execution provider: every fact the harness knows about it, in one record.

Adding a provider is adding one record to ``SPECS`` (and, when its options depend on the ONNX
Runtime version, one ``attach`` function in rules.py). Everything else - config validation, the
auto chain, session options, KV placement, the genai name, install hints, what the checklist
treats as an accelerator, the "unverified on hardware" flags - reads these records.
docs/ARCHITECTURE.md ("Adding a provider") walks through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from harness.errors import HarnessError
import harness.providers.rules as rules  # the module, not the package: no edge back to __init__
from harness.providers.attachment import Attachment

if TYPE_CHECKING:
    from harness.providers.platform import PlatformInfo
    from harness.providers.runtime import OrtRuntime

AUTO = "auto"


AttachFn = Callable[["OrtRuntime", Mapping[str, Any]], Attachment]
HintFn = Callable[["PlatformInfo"], str]


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # short name on the command line and in configs
    execution_provider: str  # ONNX Runtime's name
    packages: tuple[str, ...]  # pip distributions that bring it; the first is the one to install
    extra: str  # phi3-harness extra that installs it
    platforms: str  # where its wheels exist, in words
    device_type: str  # what it is meant to run on: CPU | GPU | NPU
    attach: AttachFn  # version-dependent: options, plugin registration, KV placement
    install_hint: HintFn  # what to install, said for this platform
    option_types: Mapping[str, type] = field(default_factory=dict)  # accepted [provider.<name>] options
    option_choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    default_options: Mapping[str, Any] = field(default_factory=dict)
    defaults_yield_to: tuple[str, ...] = ()  # a user option named here drops every default option
    kv_strategies: tuple[str, ...] = ("shared", "growing")  # KV strategies that are correct on it
    kv_strategy_note: str = ""  # why a strategy is missing, for the error
    serial_runs: bool = False  # one Run at a time per session (DirectML's command queue)
    sequential_no_mem_pattern: bool = False  # DirectML: no memory patterns, sequential execution
    genai_name: str | None = None  # onnxruntime-genai's provider name; None = clear_providers() (CPU)
    accelerator: bool = True  # False: CPU usage is info only and accelerator utilisation does not apply
    chunked_prefill: bool = False  # GroupQueryAttention takes a prompt chunk after cached tokens (engine)
    strict_note: str = ""  # why strict mode (disable_cpu_ep_fallback) fails on it even for a right model
    unverified: tuple[str, ...] = ()  # behaviour built from sources that no hardware here confirmed

    def install_hint_text(self, info: "PlatformInfo | None" = None) -> str:
        """What to install for this provider, said for this platform (or ``info``'s)."""
        from harness.providers.platform import platform_info

        return self.install_hint(info or platform_info())

    def options_for(self, user: Mapping[str, Any]) -> dict[str, Any]:
        """The spec's default options under the user's; some user keys (DML device_id) drop all defaults."""
        if any(key in user for key in self.defaults_yield_to):
            return dict(user)
        return {**self.default_options, **user}


SPECS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="dml", execution_provider="DmlExecutionProvider", packages=("onnxruntime-directml",),
            extra="directml", platforms="Windows x64 only (no Windows-on-Arm wheel)", device_type="GPU",
            attach=rules.attach_dml, install_hint=rules.dml_hint,
            option_types={"device_id": int, "performance_preference": str, "device_filter": str},
            option_choices={"performance_preference": ("default", "high_performance", "minimum_power"),
                            "device_filter": ("gpu", "npu", "any")},
            default_options={"performance_preference": "high_performance", "device_filter": "gpu"},
            defaults_yield_to=("device_id",),
            kv_strategies=("shared",),
            kv_strategy_note=("DirectML's GroupQueryAttention never reads past_key/past_value: it needs present "
                              "to share the past buffer (search.past_present_share_buffer: true, as published "
                              "DirectML folders have)"),
            serial_runs=True, sequential_no_mem_pattern=True, genai_name="dml",
            strict_note=rules.SHAPE_OPS_ON_CPU, unverified=rules.DML_UNVERIFIED,
        ),
        ProviderSpec(
            name="qnn", execution_provider="QNNExecutionProvider", packages=("onnxruntime-qnn",),
            extra="qnn", platforms="Windows on Arm (Snapdragon X) for the HTP NPU", device_type="NPU",
            attach=rules.attach_qnn, install_hint=rules.qnn_hint,
            option_types={"backend_type": str, "backend_path": str, "htp_performance_mode": str},
            option_choices={"backend_type": ("htp", "cpu", "gpu", "saver")},
            default_options={"backend_type": "htp"},
            defaults_yield_to=("backend_path",),
            genai_name="QNN", unverified=rules.QNN_UNVERIFIED,
        ),
        ProviderSpec(
            name="cuda", execution_provider="CUDAExecutionProvider", packages=("onnxruntime-gpu",),
            extra="cuda", platforms="Windows x64 and Linux x86_64 with an NVIDIA GPU", device_type="GPU",
            attach=rules.attach_cuda, install_hint=rules.cuda_hint,
            option_types={"device_id": int},
            genai_name="cuda", strict_note=rules.SHAPE_OPS_ON_CPU, unverified=rules.CUDA_UNVERIFIED,
        ),
        ProviderSpec(
            name="cpu", execution_provider="CPUExecutionProvider", packages=("onnxruntime",),
            extra="cpu", platforms="everywhere", device_type="CPU",
            attach=rules.attach_cpu, install_hint=rules.cpu_hint, accelerator=False, chunked_prefill=True,
        ),
    )
}

# The order `auto` tries providers in (accelerators first, CPU as the floor); also the default matrix.
DEFAULT_CHAIN: tuple[str, ...] = tuple(SPECS)
EXECUTION_PROVIDERS: dict[str, str] = {name: spec.execution_provider for name, spec in SPECS.items()}
_SHORT_BY_EP = {spec.execution_provider.lower(): name for name, spec in SPECS.items()}


def short_name(name: str) -> str:
    """``DML``, ``dml`` and ``DmlExecutionProvider`` all become ``dml``; unknown names pass through."""
    cleaned = name.strip()
    lowered = cleaned.lower()
    if lowered in SPECS or lowered == AUTO:
        return lowered
    return _SHORT_BY_EP.get(lowered, cleaned)


def spec_for(name: str) -> ProviderSpec:
    """The record of a provider (short or ORT name); a one-line error naming the known ones."""
    short = short_name(name)
    if short in SPECS:
        return SPECS[short]
    raise HarnessError(f"unknown provider {name!r}: use one of {', '.join(SPECS)} (or auto)")


def execution_provider_name(name: str) -> str:
    """The ORT provider name for a short name."""
    return spec_for(name).execution_provider


def is_accelerator(name: str) -> bool:
    """False for the CPU provider (and for names that are not providers, e.g. a remote target)."""
    short = short_name(name)
    return short in SPECS and SPECS[short].accelerator


def runs_on_cpu(name: str) -> bool:
    """True for a provider that computes on the CPU itself (not for a remote target or an unknown name)."""
    short = short_name(name)
    return short in SPECS and not SPECS[short].accelerator
