"""Sessions on exactly the requested provider, attached the way the installed ONNX Runtime needs.

Facts this module is built on (ONNX Runtime 1.20-1.3x):
- ``get_available_providers()`` lists what is compiled in, not what works, and never lists plugin
  providers (onnxruntime-qnn 2.x). Creating a session is the only real probe, and even then ORT may
  drop a provider it cannot start and quietly run on CPU: a provider counts only when it is still
  in ``session.get_providers()``.
- The Python wrapper retries a failed session on CPU unless ``enable_fallback=0`` is passed, and
  before 1.23 it ignores that flag (runtime.py); ``_session_class`` stops the retry there too, so a
  failure is always a failure with ORT's own message.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.model.last_logits import EXTERNAL_DATA_FOLDER_KEY, DecoderGraph
from harness.providers.capture import one_line
from harness.providers.huge_pages import HugePageResult, load_on_huge_pages
from harness.providers.runtime import OrtRuntime, detect_runtime, import_onnxruntime
from harness.providers.attachment import Attachment, Placement
from harness.providers.spec import ProviderSpec, short_name, spec_for
from harness.providers.thread_default import ORT_DEFAULT, default_intra_op_threads

CPU_EP = "CPUExecutionProvider"
STRICT_KEY = "session.disable_cpu_ep_fallback"


@dataclass(frozen=True)
class ProviderSettings:
    name: str = "cpu"
    options: dict[str, Any] = field(default_factory=dict)  # the user's provider options, ORT's own keys
    # None: one per physical core, or one for a toy-sized model on cpu (providers/thread_default.py)
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None  # only used with execution_mode "parallel"
    # Spinning idle pool threads cost ~2x CPU per request and lost half the decode speed when other
    # processes ran (benchmarks/engine_vs_genai.py); off unless asked for.
    allow_spinning: bool = False
    # With spinning: idle threads stop spinning as soon as the last Run returns (ORT's
    # session.force_spinning_stop), so they spin between a Run's operators but not between requests.
    force_spinning_stop: bool = False
    # ORT's session.dynamic_block_base: >0 splits each parallel loop into blocks that shrink as it
    # progresses, so a thread descheduled by another process holds up less of it. 0: ORT's default.
    dynamic_block_base: int = 0
    execution_mode: str = "sequential"  # or "parallel" (ORT_PARALLEL: independent nodes at once)
    # CPU provider on Linux: the weights ORT copies at load go onto 2 MiB pages (providers/huge_pages.py).
    huge_pages: bool = True
    # The engine's session runs the graph's last-position edit (model/last_logits.py) where it can
    # be made; false runs the folder's graph as it is (logits for every prompt position, as genai).
    last_position_logits: bool = True
    # With the last-position edit, on cpu: GroupQueryAttention's two length inputs are fed by the
    # engine instead of computed from the attention mask (model/length_inputs.py); false keeps the mask.
    direct_attention_lengths: bool = True
    strict: bool = False  # session.disable_cpu_ep_fallback=1: any CPU-placed node is an error
    profile_prefix: Path | None = None  # enable ORT profiling, files start with this path

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", short_name(self.name))

    @property
    def attention_lengths_refused(self) -> str | None:
        """Why the lengths edit is not asked for (None: it is): it is made on cpu only
        (model/length_inputs.py says why), and the config can turn it off."""
        if not self.direct_attention_lengths:
            return "direct_attention_lengths = false"
        if self.name != "cpu":
            return f"the edit is made on cpu only, not on {self.name}"
        return None

    @property
    def spec(self) -> ProviderSpec:
        return spec_for(self.name)

    @property
    def execution_provider(self) -> str:
        return self.spec.execution_provider

    @property
    def serial_runs(self) -> bool:
        return self.spec.serial_runs


def attachment_for(settings: ProviderSettings, runtime: OrtRuntime | None = None) -> Attachment:
    """How this ORT takes the provider: final options, plugin or not, where the KV cache goes."""
    spec = settings.spec
    return spec.attach(runtime or detect_runtime(), spec.options_for(settings.options))


def placement_for(settings: ProviderSettings, runtime: OrtRuntime | None = None) -> Placement:
    """Where the engine keeps its KV cache: on the device (and adapter) the session computes on."""
    return attachment_for(settings, runtime).kv


def session_options(settings: ProviderSettings, runtime: OrtRuntime | None = None, default_intra_op: int | None = None) -> Any:
    """``default_intra_op``: the thread count to use when the settings name none (None: ORT's own)."""
    runtime = runtime or detect_runtime()
    ort = runtime.module
    options = ort.SessionOptions()
    options.log_severity_level = 3
    intra = settings.intra_op_threads if settings.intra_op_threads is not None else default_intra_op
    if intra is not None:
        options.intra_op_num_threads = intra
    if settings.inter_op_threads is not None:
        options.inter_op_num_threads = settings.inter_op_threads
    spinning = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    if settings.force_spinning_stop:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    if settings.dynamic_block_base:
        options.add_session_config_entry("session.dynamic_block_base", str(settings.dynamic_block_base))
    # DirectML does not support memory patterns or parallel execution.
    parallel = settings.execution_mode == "parallel" and not settings.spec.sequential_no_mem_pattern
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    if settings.spec.sequential_no_mem_pattern:
        options.enable_mem_pattern = False
    if settings.strict and settings.spec.accelerator:
        options.add_session_config_entry(STRICT_KEY, "1")
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
        "intra_op_threads_source": _THREAD_SOURCE.get(session)
        or ("configured" if options.intra_op_num_threads else ORT_DEFAULT),
        "allow_spinning": _config_entry(options, "session.intra_op.allow_spinning", "1") == "1",
        "force_spinning_stop": _config_entry(options, "session.force_spinning_stop", "0") == "1",
        "dynamic_block_base": int(_config_entry(options, "session.dynamic_block_base", "0")),
        "execution_mode": "parallel" if parallel else "sequential",
    }


def huge_pages_in_effect(session: Any) -> dict[str, Any]:
    """What the huge-page advice did for this session's weights (providers/huge_pages.py)."""
    result = _HUGE_PAGES.get(session) or HugePageResult(False, note="not requested")
    return result.as_dict()


def prefill_logits_in_effect(session: Any) -> dict[str, Any]:
    """Whether this session's graph returns logits for the last position only (model/last_logits.py)."""
    return dict(_GRAPHS.get(session) or {"logits": "every position", "note": "opened outside open_session"})


# Per session, the huge-page result of its load and the graph it was opened on; weak keys, so a
# closed session takes its entries along.
_HUGE_PAGES: "weakref.WeakKeyDictionary[Any, HugePageResult]" = weakref.WeakKeyDictionary()
_GRAPHS: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()
_THREAD_SOURCE: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()  # sessions on a default count


def _config_entry(options: Any, key: str, default: str) -> str:
    try:
        return options.get_session_config_entry(key)
    except Exception:  # ORT raises when the key was never set: then its default applies
        return default


def provider_list(settings: ProviderSettings, attachment: Attachment) -> list[Any]:
    """The ``providers=`` argument: the requested EP with its options, CPU behind it unless strict."""
    providers: list[Any] = [(settings.execution_provider, dict(attachment.options))]
    if settings.spec.accelerator and not settings.strict:
        providers.append(CPU_EP)
    return providers


def not_installed_reason(settings: ProviderSettings, runtime: OrtRuntime, attachment: Attachment) -> str | None:
    """Why the provider cannot even be tried here (None when it can): absent builds, missing plugins."""
    spec = settings.spec
    if attachment.mode == "plugin":
        try:
            runtime.importer(attachment.plugin_package)
        except ImportError as error:
            return f"{spec.packages[0]} is installed but its package does not import ({error}): {spec.install_hint_text()}"
        return None
    compiled = runtime.compiled_in()
    if spec.execution_provider in compiled:
        return None
    have = ", ".join(p.replace("ExecutionProvider", "") for p in compiled) or "nothing"
    return (f"{spec.execution_provider} is not in this ONNX Runtime (onnxruntime {runtime.version_text}, has {have}): "
            f"{spec.install_hint_text()}")


def open_session(model: Path | DecoderGraph, settings: ProviderSettings, runtime: OrtRuntime,
                 attachment: Attachment) -> Any:
    """A session, or ORT's own exception (HarnessError for what the harness refuses first).

    ``model``: an .onnx file, opened as it is, or a decoder graph (model/last_logits.py): its
    last-position edit when it has one. Should ORT refuse the edit, the file is opened as it is and
    the refusal is what ``prefill_logits_in_effect`` reports; when the file fails too, its error is
    the one raised.

    On the CPU provider the weights ORT copied while loading are advised onto huge pages
    (``settings.huge_pages``; huge_pages_in_effect() tells what that did). Other providers keep
    their weights in device memory, where the advice means nothing.
    """
    graph = model if isinstance(model, DecoderGraph) else DecoderGraph(Path(model), note="every position: opened as it is")
    session = None
    if graph.edited is not None:
        try:
            session = _open(graph, settings, runtime, attachment)
        except HarnessError:
            raise
        except Exception as error:  # ORT's exception types vary by build
            graph = DecoderGraph(graph.path, note=f"every position: ORT refused the edited graph ({one_line(str(error))})")
    if session is None:  # the file as it is (outside the except: its own error is not chained to the edit's)
        session = _open(graph, settings, runtime, attachment)
    _GRAPHS[session] = graph.as_dict()
    return session


def _open(graph: DecoderGraph, settings: ProviderSettings, runtime: OrtRuntime, attachment: Attachment) -> Any:
    threads, source = default_intra_op_threads(settings.name, graph.path)
    session = _open_with_options(graph, settings, runtime, attachment, session_options(settings, runtime, threads))
    if settings.intra_op_threads is None:
        _THREAD_SOURCE[session] = source
    return session


def _open_with_options(graph: DecoderGraph, settings: ProviderSettings, runtime: OrtRuntime,
                       attachment: Attachment, options: Any) -> Any:
    source: Any = str(graph.path)
    if graph.edited is not None:
        source = graph.edited  # bytes: their external data is found through the folder named here
        options.add_session_config_entry(EXTERNAL_DATA_FOLDER_KEY, str(graph.path.parent))
    session_class = _session_class(runtime)
    if attachment.mode == "plugin":
        options.add_provider_for_devices(plugin_devices(settings.spec, runtime, attachment), dict(attachment.options))
        session = session_class(source, options, enable_fallback=0)
        # plugin providers (QNN 2.x) are accelerators: their weights are the device's
        _HUGE_PAGES[session] = HugePageResult(False, note=_huge_pages_skip(settings) or "not applied: a plugin provider")
        return session
    providers = provider_list(settings, attachment)
    session, pages = load_on_huge_pages(
        lambda: session_class(source, options, providers=providers, enable_fallback=0),
        skip=_huge_pages_skip(settings),
    )
    _HUGE_PAGES[session] = pages
    return session


def _huge_pages_skip(settings: ProviderSettings) -> str | None:
    if not settings.huge_pages:
        return "not requested"
    if settings.spec.accelerator:
        return f"not applied: {settings.name} keeps its weights in device memory"
    return None


def plugin_devices(spec: ProviderSpec, runtime: OrtRuntime, attachment: Attachment) -> list[Any]:
    """Register the plugin library, then the OrtEpDevices of its kind (QNN: the NPU) that ORT lists."""
    from harness.providers.rules import hardware_type

    package = runtime.importer(attachment.plugin_package)
    runtime.register_plugin(spec.execution_provider, package.get_library_path())
    found = [device for device in runtime.ep_devices() if str(getattr(device, "ep_name", "")) == spec.execution_provider]
    chosen = [device for device in found if hardware_type(device) == attachment.plugin_device_type]
    if not chosen:
        kinds = ", ".join(sorted({hardware_type(device) for device in found})) or "none"
        raise HarnessError(
            f"{spec.execution_provider} is registered but ONNX Runtime lists no {attachment.plugin_device_type} "
            f"device for it (devices: {kinds}): update the NPU driver, or use another provider"
        )
    return chosen


def create_session(model_path: Path | DecoderGraph, settings: ProviderSettings, runtime: OrtRuntime | None = None) -> Any:
    """An InferenceSession on exactly the requested provider (CPU added as fallback unless strict);
    ``model_path`` as open_session takes it."""
    runtime = runtime or detect_runtime()
    attachment = attachment_for(settings, runtime)
    reason = not_installed_reason(settings, runtime, attachment)
    if reason:
        # ORT would warn, drop it and load the whole model on CPU first; say so at once instead.
        raise HarnessError(reason)
    try:
        session = open_session(model_path, settings, runtime, attachment)
    except HarnessError:
        raise
    except Exception as error:  # ORT raises plain RuntimeError/Fail with its own message
        shown = model_path.path if isinstance(model_path, DecoderGraph) else model_path
        raise HarnessError(session_error(shown, settings, error)) from error
    got = session.get_providers()
    # ORT quietly drops a provider it cannot use and runs on CPU: never report that as success.
    if settings.execution_provider not in got:
        raise HarnessError(
            f"{settings.execution_provider} is not usable in this ONNX Runtime "
            f"(session got {got}): run 'phi3-harness doctor --provider {settings.name}'"
        )
    return session


def session_error(model_path: Path | str, settings: ProviderSettings, error: BaseException) -> str:
    """ORT's failure in one line; in strict mode on DML/CUDA, the reason that is not the model's fault."""
    said = one_line(str(error)) or type(error).__name__
    if settings.strict and settings.spec.strict_note:
        return f"strict mode refused the session on {settings.name}: {settings.spec.strict_note} (ORT said: {said})"
    return f"cannot create an ONNX Runtime session for {model_path} on {settings.name}: {said}"


def _session_class(runtime: OrtRuntime) -> Any:
    base = runtime.module.InferenceSession
    return base if runtime.honours_enable_fallback else _without_cpu_retry(base)


@functools.lru_cache(maxsize=None)
def _without_cpu_retry(base: type) -> type:
    """ORT < 1.23 sets ``_enable_fallback = True`` whatever is passed; a property swallows that write."""

    class SessionWithoutCpuRetry(base):  # type: ignore[misc, valid-type]
        @property
        def _enable_fallback(self) -> bool:
            return False

        @_enable_fallback.setter
        def _enable_fallback(self, value: bool) -> None:
            pass

    return SessionWithoutCpuRetry
