"""Execution providers: short names, session options, and session creation.

This first cut holds only what the engine needs (``ProviderSettings`` and ``create_session``);
availability probing, the fallback chain and proof of execution build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

# Short name -> ONNX Runtime execution provider. Adding a provider touches this table.
EXECUTION_PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "dml": "DmlExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "cuda": "CUDAExecutionProvider",
}

# Providers whose sessions accept only one Run at a time (DirectML's command queue).
SERIAL_RUN_PROVIDERS = frozenset({"dml"})


@dataclass(frozen=True)
class ProviderSettings:
    name: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    strict: bool = False  # session.disable_cpu_ep_fallback=1: any CPU-placed node is an error
    profile_prefix: Path | None = None  # enable ORT profiling, files start with this path

    @property
    def execution_provider(self) -> str:
        try:
            return EXECUTION_PROVIDERS[self.name]
        except KeyError:
            known = ", ".join(EXECUTION_PROVIDERS)
            raise HarnessError(f"unknown provider {self.name!r}: use one of {known}") from None

    @property
    def serial_runs(self) -> bool:
        return self.name in SERIAL_RUN_PROVIDERS


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise HarnessError(
            "ONNX Runtime is not installed: pip install 'phi3-harness[cpu]' "
            "(or [directml], [qnn], [cuda] - exactly one of them)"
        ) from None
    return onnxruntime


def session_options(settings: ProviderSettings) -> Any:
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if settings.intra_op_threads is not None:
        options.intra_op_num_threads = settings.intra_op_threads
    if settings.inter_op_threads is not None:
        options.inter_op_num_threads = settings.inter_op_threads
    if settings.name == "dml":
        # DirectML does not support memory patterns or parallel execution.
        options.enable_mem_pattern = False
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if settings.strict and settings.name != "cpu":
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    if settings.profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(settings.profile_prefix)
    return options


def create_session(model_path: Path, settings: ProviderSettings) -> Any:
    """An InferenceSession on exactly the requested provider (CPU added as fallback unless strict)."""
    ort = import_onnxruntime()
    providers: list[Any] = [(settings.execution_provider, dict(settings.options))]
    if settings.name != "cpu" and not settings.strict:
        providers.append("CPUExecutionProvider")
    try:
        session = ort.InferenceSession(str(model_path), session_options(settings), providers=providers)
    except Exception as error:  # ORT raises plain RuntimeError/Fail with its own message
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HarnessError(
            f"cannot create an ONNX Runtime session for {model_path} on {settings.name}: {first_line}"
        ) from error
    # ORT quietly drops a provider it cannot use and runs on CPU: never report that as success.
    if settings.execution_provider not in session.get_providers():
        raise HarnessError(
            f"{settings.execution_provider} is not usable in this ONNX Runtime "
            f"(session got {session.get_providers()}): run 'phi3-harness doctor --provider {settings.name}'"
        )
    return session
