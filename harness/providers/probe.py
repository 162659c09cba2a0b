"""Is a provider usable here? Decided by creating a real session on the model, never by a list.

A probe answers "not installed" (the build or plugin is absent: reliable without a session),
"failing" (compiled in or registered, but the session failed or ORT dropped the provider) or
"usable" (a session was created and the provider is still in ``get_providers()``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from harness.errors import HarnessError
from harness.model.last_logits import DecoderGraph, decoder_graph
from harness.providers.capture import captured_output, one_line, summarise_ort_log
from harness.providers.runtime import OrtRuntime, detect_runtime
from harness.providers.session import (
    ProviderSettings,
    attachment_for,
    not_installed_reason,
    open_session,
    session_error,
    huge_pages_in_effect,
    prefill_logits_in_effect,
    threading_in_effect,
)
from harness.providers.spec import short_name

if TYPE_CHECKING:
    from harness.model.folder import ModelFolder

ProbeStatus = Literal["not_installed", "failing", "usable"]


@dataclass(frozen=True)
class ProbeResult:
    name: str  # short name
    execution_provider: str
    status: ProbeStatus
    reason: str  # one line, fit to show the user
    detail: str = ""  # ORT's full error text and anything it logged while the session was made
    compiled_in: bool = False  # compiled into this build, or a plugin that is installed
    session_providers: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = ()  # how the provider was attached on this ORT version (spec rules)
    unverified: tuple[str, ...] = ()  # what about that attachment no hardware here has confirmed
    threading: dict[str, Any] = dataclasses.field(default_factory=dict)  # threading_in_effect() of the probe session
    huge_pages: dict[str, Any] = dataclasses.field(default_factory=dict)  # huge_pages_in_effect() of the probe session
    prefill_logits: dict[str, Any] = dataclasses.field(default_factory=dict)  # prefill_logits_in_effect() of it

    @property
    def usable(self) -> bool:
        return self.status == "usable"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["session_providers"] = list(self.session_providers)
        data["notes"], data["unverified"] = list(self.notes), list(self.unverified)
        data["seconds"] = round(self.seconds, 4)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProbeResult":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in fields}
        for key in ("session_providers", "notes", "unverified"):
            values[key] = tuple(values.get(key) or ())
        values["threading"] = dict(values.get("threading") or {})
        values["huge_pages"] = dict(values.get("huge_pages") or {})
        values["prefill_logits"] = dict(values.get("prefill_logits") or {})
        return cls(**values)


def folder_graph(folder: ModelFolder, settings: ProviderSettings) -> DecoderGraph:
    """A model folder's decoder graph with the edits ``settings`` ask for (model/last_logits.py)."""
    refused = settings.attention_lengths_refused
    graph = decoder_graph(folder.onnx_path, folder.config.names.logits, edit=settings.last_position_logits,
                          lengths_from=None if refused else folder.config.names.attention_mask)
    if refused and graph.last_position_only:  # say why the mask stayed
        graph = dataclasses.replace(graph, attention_lengths=f"{graph.attention_lengths} ({refused})")
    return graph


def graph_to_open(model_path: Path | str, settings: ProviderSettings) -> Path | DecoderGraph:
    """A model folder (genai layout) -> its decoder graph, as the engine opens it with ``settings``
    (so the engine can run on the probe's session); a bare .onnx file -> the file, opened as it is."""
    path = Path(model_path).expanduser()
    if path.is_dir():
        from harness.model.folder import load_model_folder

        return folder_graph(load_model_folder(path), settings)
    if not path.is_file():
        raise HarnessError(f"model {path} does not exist: pass a model folder or an .onnx file")
    return path


def probe(name: str, model_path: Path | str, settings: ProviderSettings | None = None,
          runtime: OrtRuntime | None = None) -> ProbeResult:
    """Is ``name`` usable here? Decided by creating a session on ``model_path`` (folder or .onnx).

    ``settings`` carries the provider options, threads and strict mode to probe with (from the run
    config: ``config.provider_settings(name)``); profiling is never on for a probe.
    """
    return probe_with_session(name, model_path, settings, runtime)[0]


def probe_with_session(name: str, model_path: Path | str, settings: ProviderSettings | None = None,
                       runtime: OrtRuntime | None = None) -> tuple[ProbeResult, Any]:
    """``probe``, and the session it created when the provider is usable (else None)."""
    settings = dataclasses.replace(settings or ProviderSettings(name=name), profile_prefix=None)
    if settings.name != short_name(name):
        raise HarnessError(f"probe({name!r}) was given settings for {settings.name!r}: pass settings for the same provider")
    runtime = runtime or detect_runtime()
    ep = settings.execution_provider
    try:
        attachment = attachment_for(settings, runtime)
    except HarnessError as error:  # options this ORT cannot take (e.g. QNN 2.x beside an old onnxruntime)
        return ProbeResult(settings.name, ep, "failing", str(error)), None
    found = dict(notes=attachment.notes, unverified=attachment.unverified)
    absent = not_installed_reason(settings, runtime, attachment)
    if absent:  # how it would be attached says nothing while it is absent
        return ProbeResult(settings.name, ep, "not_installed", absent), None
    session, failure, logged, seconds = _try_session(graph_to_open(model_path, settings), settings, runtime, attachment)
    if session is None:
        text = str(failure).strip() or type(failure).__name__
        detail = "\n".join(part for part in (text, logged) if part)
        if isinstance(failure, HarnessError):  # refused before ORT was asked (e.g. no NPU device listed)
            reason = f"{ep}: {failure}"
        elif settings.strict and settings.spec.strict_note:
            reason = session_error(model_path, settings, failure)
        else:
            reason = f"{ep} failed to create a session: {one_line(text)}"
        return ProbeResult(settings.name, ep, "failing", reason, detail, True, (), seconds, **found), None
    got = tuple(session.get_providers())
    if ep not in got:
        said = summarise_ort_log(logged) or "ORT gave no error"
        reason = f"{ep} is installed but ORT dropped it and ran on {', '.join(got)}: {said}"
        return ProbeResult(settings.name, ep, "failing", reason, logged, True, got, seconds, **found), None
    # the session's list names the fallback behind the requested EP (e.g. "DmlExecutionProvider, then
    # CPUExecutionProvider"); saying the EP twice when it is the only one reads like a typo
    others = [name for name in got if name != ep]
    reason = f"session created on {ep}" + (f" (then {', '.join(others)} for what it cannot run)" if others else "")
    result = ProbeResult(settings.name, ep, "usable", reason, logged, True, got, seconds, **found,
                         threading=threading_in_effect(session), huge_pages=huge_pages_in_effect(session),
                         prefill_logits=prefill_logits_in_effect(session))
    return result, session


def _try_session(onnx_path: Path | DecoderGraph, settings: ProviderSettings, runtime: OrtRuntime,
                 attachment: Any) -> tuple[Any, BaseException | None, str, float]:
    """(session or None, the exception, what ORT logged meanwhile, seconds taken)."""
    session: Any = None
    failure: BaseException | None = None
    started = time.perf_counter()
    with captured_output() as captured:
        try:
            session = open_session(onnx_path, settings, runtime, attachment)
        except Exception as error:  # ORT's exception types vary by build (Fail, RuntimeError, ...)
            failure = error
    return session, failure, captured.text(), time.perf_counter() - started


ProbeFn = Callable[[str], ProbeResult]


class ProbeCache:
    """A probe bound to one model (and e.g. ``config.provider_settings``), remembering its answers.

    With ``keep_sessions``, the session that showed a provider usable is kept until
    ``take_session`` hands it over: the suites run on it instead of opening the model a second
    time (on a laptop's GPU, seconds and a second copy of the weights in flight).
    """

    def __init__(self, model_path: Path | str, settings_for: Callable[[str], ProviderSettings] | None = None,
                 keep_sessions: bool = False) -> None:
        self._model_path = model_path
        self._settings_for = settings_for
        self._keep = keep_sessions
        self._results: dict[str, ProbeResult] = {}
        self._sessions: dict[str, Any] = {}

    def __call__(self, name: str) -> ProbeResult:
        key = short_name(name)
        if key not in self._results:
            settings = self._settings_for(key) if self._settings_for else None
            result, session = probe_with_session(key, self._model_path, settings)
            self._results[key] = result
            if self._keep and session is not None:
                self._sessions[key] = session
        return self._results[key]

    def take_session(self, name: str) -> Any:
        """The usable probe session of ``name`` (once; None if not kept or already taken)."""
        return self._sessions.pop(short_name(name), None)


def make_probe_fn(model_path: Path | str, settings_for: Callable[[str], ProviderSettings] | None = None,
                  keep_sessions: bool = False) -> ProbeCache:
    """A ``ProbeCache`` (callable like ``probe``) for one model; see ProbeCache."""
    return ProbeCache(model_path, settings_for, keep_sessions)
