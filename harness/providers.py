"""Execution providers: short names, session options, sessions, honest probing, fallback.

Facts this module is built on (ONNX Runtime 1.2x-1.3x):
- ``get_available_providers()`` lists what is compiled in, not what works. Creating a session is
  the only real probe, and even then ORT may drop a provider it cannot start (CUDA without its
  libraries, for one) and quietly run on CPU: a provider counts as usable only when it is still in
  ``session.get_providers()``.
- The Python wrapper retries a failed session on CPU unless ``enable_fallback=0`` is passed; the
  harness always passes it, so a failure is a failure with ORT's own message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Literal, Sequence

from harness.errors import HarnessError

# Short name -> ONNX Runtime execution provider. Adding a provider touches this table (and
# install_hint below). Provider options come from the run config ([provider.<name>], ORT's keys).
EXECUTION_PROVIDERS: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "dml": "DmlExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "cuda": "CUDAExecutionProvider",
}
_SHORT_BY_EP = {ep.lower(): short for short, ep in EXECUTION_PROVIDERS.items()}

AUTO = "auto"
# The order `auto` tries providers in: accelerators first, CPU as the floor.
DEFAULT_CHAIN: tuple[str, ...] = ("dml", "qnn", "cuda", "cpu")

# Providers whose sessions accept only one Run at a time (DirectML's command queue).
SERIAL_RUN_PROVIDERS = frozenset({"dml"})

ProbeStatus = Literal["not_installed", "failing", "usable"]


def short_name(name: str) -> str:
    """``DML``, ``dml`` and ``DmlExecutionProvider`` all become ``dml``; unknown names pass through."""
    cleaned = name.strip()
    lowered = cleaned.lower()
    if lowered in EXECUTION_PROVIDERS or lowered == AUTO:
        return lowered
    return _SHORT_BY_EP.get(lowered, cleaned)


def execution_provider_name(name: str) -> str:
    """The ORT provider name for a short name (or a full ``*ExecutionProvider`` name, kept as is)."""
    short = short_name(name)
    if short in EXECUTION_PROVIDERS:
        return EXECUTION_PROVIDERS[short]
    if short.endswith("ExecutionProvider"):
        return short
    known = ", ".join(EXECUTION_PROVIDERS)
    raise HarnessError(f"unknown provider {name!r}: use one of {known} (or auto)")


@dataclass(frozen=True)
class ProviderSettings:
    name: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)  # ORT provider options, ORT's own keys
    intra_op_threads: int | None = None  # None: ORT's default (one per physical core)
    inter_op_threads: int | None = None  # only used with execution_mode "parallel"
    # Spinning idle pool threads cost ~2x CPU per request and lost half the decode speed when other
    # processes ran (benchmarks/engine_vs_genai.py); off unless asked for.
    allow_spinning: bool = False
    execution_mode: str = "sequential"  # or "parallel" (ORT_PARALLEL: independent nodes at once)
    strict: bool = False  # session.disable_cpu_ep_fallback=1: any CPU-placed node is an error
    profile_prefix: Path | None = None  # enable ORT profiling, files start with this path

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", short_name(self.name))

    @property
    def execution_provider(self) -> str:
        return execution_provider_name(self.name)

    @property
    def serial_runs(self) -> bool:
        return self.name in SERIAL_RUN_PROVIDERS


# -- sessions ---------------------------------------------------------------------------------


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise HarnessError(
            "ONNX Runtime is not installed: pip install 'phi3-harness[cpu]' "
            "(or [directml], [qnn], [cuda] - exactly one of them)"
        ) from None
    return onnxruntime


def compiled_in_providers() -> list[str]:
    """What this ONNX Runtime build was compiled with (not proof that any of them works)."""
    return list(import_onnxruntime().get_available_providers())


def session_options(settings: ProviderSettings) -> Any:
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if settings.intra_op_threads is not None:
        options.intra_op_num_threads = settings.intra_op_threads
    if settings.inter_op_threads is not None:
        options.inter_op_num_threads = settings.inter_op_threads
    spinning = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    parallel = settings.execution_mode == "parallel" and settings.name != "dml"
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    if settings.name == "dml":
        # DirectML does not support memory patterns or parallel execution.
        options.enable_mem_pattern = False
    if settings.strict and settings.name != "cpu":
        options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    if settings.profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(settings.profile_prefix)
    return options


def threading_in_effect(session: Any) -> dict[str, Any]:
    """The threading a session really runs with, read back from it (0 = ORT's default, resolved).

    ORT's default intra-op pool has one thread per physical core (the caller's thread included);
    the inter-op pool exists only in parallel execution mode.
    """
    import psutil

    options = session.get_session_options()
    parallel = options.execution_mode == import_onnxruntime().ExecutionMode.ORT_PARALLEL
    intra = options.intra_op_num_threads or (psutil.cpu_count(logical=False) or 1)
    inter = (options.inter_op_num_threads or (psutil.cpu_count(logical=False) or 1)) if parallel else 0
    return {
        "intra_op_num_threads": intra,
        "inter_op_num_threads": inter,
        "intra_op_threads_source": "configured" if options.intra_op_num_threads else "default: one per physical core",
        "allow_spinning": _config_entry(options, "session.intra_op.allow_spinning", "1") == "1",
        "execution_mode": "parallel" if parallel else "sequential",
    }


def _config_entry(options: Any, key: str, default: str) -> str:
    try:
        return options.get_session_config_entry(key)
    except Exception:  # ORT raises when the key was never set: then its default applies
        return default


def provider_list(settings: ProviderSettings) -> list[Any]:
    """The ``providers=`` argument: the requested EP with its options, CPU behind it unless strict."""
    providers: list[Any] = [(settings.execution_provider, dict(settings.options))]
    if settings.name != "cpu" and not settings.strict:
        providers.append("CPUExecutionProvider")
    return providers


def _new_session(model_path: Path, settings: ProviderSettings) -> Any:
    ort = import_onnxruntime()
    # enable_fallback=0: ORT's wrapper would otherwise print the EP error and retry on CPU.
    return ort.InferenceSession(
        str(model_path), session_options(settings), providers=provider_list(settings), enable_fallback=0
    )


def create_session(model_path: Path, settings: ProviderSettings) -> Any:
    """An InferenceSession on exactly the requested provider (CPU added as fallback unless strict)."""
    compiled = compiled_in_providers()
    if settings.execution_provider not in compiled:
        # ORT would warn, drop it and load the whole model on CPU first; say so at once instead.
        raise HarnessError(_not_installed_reason(settings, compiled))
    try:
        session = _new_session(model_path, settings)
    except HarnessError:
        raise
    except Exception as error:  # ORT raises plain RuntimeError/Fail with its own message
        raise HarnessError(
            f"cannot create an ONNX Runtime session for {model_path} on {settings.name}: {one_line(str(error)) or type(error).__name__}"
        ) from error
    # ORT quietly drops a provider it cannot use and runs on CPU: never report that as success.
    if settings.execution_provider not in session.get_providers():
        raise HarnessError(
            f"{settings.execution_provider} is not usable in this ONNX Runtime "
            f"(session got {session.get_providers()}): run 'phi3-harness doctor --provider {settings.name}'"
        )
    return session


# -- probing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    name: str  # short name (or the EP name when it has none)
    execution_provider: str
    status: ProbeStatus
    reason: str  # one line, fit to show the user
    detail: str = ""  # ORT's full error text and anything it logged while the session was made
    compiled_in: bool = False
    session_providers: tuple[str, ...] = ()
    seconds: float = 0.0
    threading: dict[str, Any] = field(default_factory=dict)  # threading_in_effect() of the probe session

    @property
    def usable(self) -> bool:
        return self.status == "usable"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "execution_provider": self.execution_provider,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "compiled_in": self.compiled_in,
            "session_providers": list(self.session_providers),
            "seconds": round(self.seconds, 4),
            "threading": dict(self.threading),
        }


def model_onnx_path(model_path: Path | str) -> Path:
    """A model folder (genai layout) or a bare .onnx file -> the .onnx file."""
    path = Path(model_path).expanduser()
    if path.is_dir():
        from harness.model.folder import load_model_folder

        return load_model_folder(path).onnx_path
    if not path.is_file():
        raise HarnessError(f"model {path} does not exist: pass a model folder or an .onnx file")
    return path


def probe(name: str, model_path: Path | str, settings: ProviderSettings | None = None) -> ProbeResult:
    """Is ``name`` usable here? Decided by creating a session on ``model_path`` (folder or .onnx).

    ``settings`` carries the provider options, threads and strict mode to probe with (from the run
    config: ``config.provider_settings(name)``); profiling is never on for a probe.
    """
    settings = dataclasses.replace(settings or ProviderSettings(name=name), profile_prefix=None)
    if settings.name != short_name(name):
        raise HarnessError(f"probe({name!r}) was given settings for {settings.name!r}: pass settings for the same provider")
    ep = settings.execution_provider
    compiled = compiled_in_providers()
    if ep not in compiled:
        # Absence from the compiled-in list is reliable (ORT would only drop it with a warning).
        return ProbeResult(settings.name, ep, "not_installed", _not_installed_reason(settings, compiled))
    session, failure, logged, seconds = _try_session(model_onnx_path(model_path), settings)
    if session is None:
        text = str(failure).strip() or type(failure).__name__
        detail = "\n".join(part for part in (text, logged) if part)
        reason = f"{ep} failed to create a session: {one_line(text)}"
        return ProbeResult(settings.name, ep, "failing", reason, detail, True, (), seconds)
    got = tuple(session.get_providers())
    if ep not in got:
        said = summarise_ort_log(logged) or "ORT gave no error"
        reason = f"{ep} is compiled in but ORT dropped it and ran on {', '.join(got)}: {said}"
        return ProbeResult(settings.name, ep, "failing", reason, logged, True, got, seconds)
    reason = f"session created on {ep} ({', '.join(got)})"
    return ProbeResult(settings.name, ep, "usable", reason, logged, True, got, seconds, threading_in_effect(session))


def _try_session(onnx_path: Path, settings: ProviderSettings) -> tuple[Any, BaseException | None, str, float]:
    """(session or None, the exception, what ORT logged meanwhile, seconds taken)."""
    session: Any = None
    failure: BaseException | None = None
    started = time.perf_counter()
    with captured_output() as captured:
        try:
            session = _new_session(onnx_path, settings)
        except Exception as error:  # ORT's exception types vary by build (Fail, RuntimeError, ...)
            failure = error
    return session, failure, captured.text(), time.perf_counter() - started


def _not_installed_reason(settings: ProviderSettings, compiled: Sequence[str]) -> str:
    ep = settings.execution_provider
    return f"{ep} is not in this ONNX Runtime ({_runtime_label()}, has {_short_list(compiled)}): {install_hint(settings.name)}"


def make_probe_fn(
    model_path: Path | str, settings_for: Callable[[str], ProviderSettings] | None = None
) -> Callable[[str], ProbeResult]:
    """A probe bound to one model (and e.g. ``config.provider_settings``), remembering its answers."""
    cache: dict[str, ProbeResult] = {}

    def probe_fn(name: str) -> ProbeResult:
        key = short_name(name)
        if key not in cache:
            cache[key] = probe(key, model_path, settings_for(key) if settings_for else None)
        return cache[key]

    return probe_fn


def install_hint(name: str, info: Any = None) -> str:
    """What to install for a provider, said for this platform (``info``: a PlatformInfo)."""
    from harness.platform_info import platform_info

    info = info or platform_info()
    short = short_name(name)
    if short == "dml":
        if not info.is_windows:
            return "DirectML exists only on Windows; on this OS use cpu (or cuda with onnxruntime-gpu)"
        if info.python_arch == "arm64":
            return ("onnxruntime-directml has no Windows-on-Arm (arm64) wheel: use an x64 Python, "
                    "or reach the Hexagon NPU through qnn (pip install onnxruntime-qnn)")
        return "pip uninstall onnxruntime onnxruntime-directml, then pip install onnxruntime-directml (only that one)"
    if short == "qnn":
        return "pip install onnxruntime-qnn in place of onnxruntime (Snapdragon: the Hexagon NPU is reached only through QNN)"
    if short == "cuda":
        return ("pip install onnxruntime-gpu in place of onnxruntime (needs an NVIDIA GPU and the CUDA and cuDNN "
                "versions that onnxruntime-gpu release names)")
    if short == "cpu":
        return "reinstall onnxruntime"
    return f"install an ONNX Runtime build that includes {short}"


# -- fallback ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    requested: str
    chosen: str
    passed_over: list[tuple[str, str]]  # (short name, why it was not taken), in chain order
    probe: ProbeResult | None = None  # the chosen provider's probe

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "chosen": self.chosen,
            "passed_over": [{"provider": name, "reason": reason} for name, reason in self.passed_over],
        }


def check_chain(chain: Sequence[str]) -> None:
    if not chain:
        raise HarnessError("the fallback chain is empty: list providers to try, e.g. fallback.chain = [\"dml\", \"cpu\"]")
    for name in chain:
        if short_name(name) == AUTO:
            raise HarnessError("the fallback chain cannot contain 'auto': list real providers (dml, qnn, cuda, cpu)")
        execution_provider_name(name)  # unknown names fail here


def choose_provider(
    requested: str,
    chain: Sequence[str] = DEFAULT_CHAIN,
    probe_fn: Callable[[str], ProbeResult] | None = None,
    disabled: Collection[str] = (),
) -> Choice:
    """``auto`` walks ``chain`` and takes the first usable provider; an explicit name must be usable.

    ``probe_fn(name) -> ProbeResult`` is usually ``make_probe_fn(model)``. Anything not usable is a
    HarnessError with one line naming the reasons.
    """
    if probe_fn is None:
        raise HarnessError("choose_provider needs a probe: pass make_probe_fn(model_dir)")
    wanted = short_name(requested)
    off = {short_name(name) for name in disabled}
    if wanted != AUTO:
        execution_provider_name(wanted)  # unknown names fail here, before probing
        if wanted in off:
            raise HarnessError(f"provider {wanted} is switched off in the config: remove it from the disabled list or pick another")
        result = probe_fn(wanted)
        if not result.usable:
            raise HarnessError(f"provider {wanted} is {result.status.replace('_', ' ')}: {result.reason}")
        return Choice(wanted, wanted, [], result)
    check_chain(chain)
    passed_over: list[tuple[str, str]] = []
    for name in (short_name(item) for item in chain):
        if name in off:
            passed_over.append((name, "switched off in the config"))
            continue
        result = probe_fn(name)
        if result.usable:
            return Choice(AUTO, name, passed_over, result)
        passed_over.append((name, f"{result.status.replace('_', ' ')}: {result.reason}"))
    summary = "; ".join(f"{name}: {reason}" for name, reason in passed_over)
    raise HarnessError(f"no usable provider in the chain {', '.join(chain)} ({summary}): run 'phi3-harness doctor'")


# -- capturing what ORT says ------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_PREFIX = re.compile(r"^\S+ \S+ \[[EWIV]:onnxruntime:[^\]]*\] ")


class _Captured:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self) -> str:
        cleaned = _ANSI.sub("", "\n".join(part for part in self.parts if part.strip()))
        return "\n".join(line.rstrip() for line in cleaned.splitlines() if line.strip())


@contextlib.contextmanager
def captured_output() -> Iterator[_Captured]:
    """Collect what ORT says while a session is made: Python warnings, stdout, native stderr.

    ORT's C++ logger writes to file descriptor 2 directly (e.g. "Failed to load library
    libonnxruntime_providers_cuda.so"), so redirecting ``sys.stderr`` alone would miss it. The
    redirection is process-wide for the moment a session is made: probe from one thread at a time.
    """
    captured = _Captured()
    stdout = io.StringIO()
    with tempfile.TemporaryFile() as native, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = _redirect_fd(2, native.fileno())
        try:
            with contextlib.redirect_stdout(stdout):
                yield captured
        finally:
            _restore_fd(2, saved)
            native.seek(0)
            captured.parts.append(native.read().decode("utf-8", errors="replace"))
            captured.parts.append(stdout.getvalue())
            captured.parts.extend(str(warning.message) for warning in caught)


def _redirect_fd(fd: int, target: int) -> int | None:
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
        os.dup2(target, fd)
        return saved
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): capture what we can
        return None


def _restore_fd(fd: int, saved: int | None) -> None:
    if saved is not None:
        os.dup2(saved, fd)
        os.close(saved)


# "/onnxruntime_src/.../x.cc:729 void ns::Function(Args&) " before the words meant for people.
_SOURCE_LOCATION = re.compile(r"^\S+\.(?:cc|cpp|h):\d+ .*?\)\s+(?=[A-Z\[])")


def one_line(text: str) -> str:
    """ORT messages span lines and start with its source location; the user gets the words, on one line."""
    lines = (_LOG_PREFIX.sub("", _ANSI.sub("", line)).strip() for line in text.splitlines() if line.strip())
    return " ".join(_SOURCE_LOCATION.sub("", line) for line in lines)


_ORT_STATUS = re.compile(r"\[ONNXRuntimeError\] : \d+ : \w+ : ")


def summarise_ort_log(logged: str) -> str:
    """The gist of ORT's log: its first error (the cause) and its last warning (its advice)."""
    errors, warnings_ = [], []
    for line in logged.splitlines():
        message = _LOG_PREFIX.sub("", line).strip()
        message = _ORT_STATUS.split(message)[-1].strip()  # drop "<file>:<line> <function> [ONNXRuntimeError] : 1 : FAIL :"
        if "[E:onnxruntime" in line:
            errors.append(message)
        elif "[W:onnxruntime" in line or (message and not set(message) <= {"*"}):
            warnings_.append(message)
    picked = errors[:1] + [w for w in warnings_[-1:] if w not in errors[:1]]
    return " / ".join(picked)


def _runtime_label() -> str:
    return f"onnxruntime {import_onnxruntime().__version__}"


def _short_list(providers: Sequence[str]) -> str:
    return ", ".join(provider.replace("ExecutionProvider", "") for provider in providers) or "nothing"
