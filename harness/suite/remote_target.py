"""The suites' view of an OpenAI-compatible endpoint (``phi3-harness run --target-url URL``).

``connect`` asks the endpoint's health (harness.suite.remote), picks the model name, builds the
HTTP target with the model folder's tokenizer, and finds the serving process by its port so that
telemetry samples it exactly as it samples the in-process engine. ``adjust`` gives the checklist
items their HTTP meaning where the engine's does not fit (where the figures came from, and why an
item cannot be measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.config import Http
from harness.errors import HarnessError
from harness.measure.results import Verdict
from harness.model.folder import load_model_folder
from harness.model.tokenizer import Phi3Tokenizer
from harness.suite.remote import Health, listening_process, model_names, probe_health
from harness.suite.targets import SuiteTarget
from harness.targets.http import HttpTarget
from harness.targets.http_conn import HttpTimeouts, parse_endpoint

REMOTE = "remote"  # the provider axis value of an HTTP target (the server's provider is its business)
PROCESS_ITEMS = ("memory", "memory_stable", "cpu_usage")


@dataclass(frozen=True)
class RemoteOptions:
    url: str
    api_key: str | None = None
    model_name: str | None = None
    model_dir: Path | None = None  # --model: the folder the server runs (enables exact token checks)


@dataclass
class Remote:
    options: RemoteOptions
    health: Health
    process: psutil.Process | None
    process_reason: str  # why there is no process to sample ("" when there is)
    suite_target: SuiteTarget

    @property
    def server_provider(self) -> str | None:
        """The provider the server says it executes on (phi3-harness serve's /health tells)."""
        provider = self.health.info.get("provider")
        return str(provider) if provider else None

    @property
    def load_s(self) -> float | None:
        value = self.health.info.get("load_s")
        return float(value) if isinstance(value, (int, float)) else None

    def describe(self) -> dict:
        """For environment.json: what the harness learned about the endpoint."""
        return {
            "url": parse_endpoint(self.options.url).url, "model_name": self.suite_target.target.model_name,
            "health_convention": self.health.convention, "health": self.health.detail,
            "health_info": self.health.info, "server_pid": self.process.pid if self.process else None,
            "server_process": self.process.name() if self.process else None,
            "process_not_sampled": self.process_reason or None,
            "tokenizer": "the model folder's (--model)" if self.options.model_dir else
                         "the embedded tiny model's (prompt building only; no --model)",
        }


def connect(options: RemoteOptions, default_model_dir: Path, settings: Http | None = None) -> Remote:
    """Health first (a one-line error when nothing answers), then the target and the process."""
    settings = settings or Http()
    endpoint = parse_endpoint(options.url)
    health = probe_health(endpoint, options.api_key, wait_s=settings.health_wait_s)
    if not any(answer.status is not None for answer in health.tried):
        raise HarnessError(f"nothing answers at {endpoint.url} ({health.detail}): start the server first, "
                           "e.g. phi3-harness serve --port 8000")
    folder = load_model_folder(options.model_dir or default_model_dir)
    tokenizer = Phi3Tokenizer(folder.tokenizer_path, folder.config.bos_token_id)
    name = options.model_name or next(iter(model_names(endpoint, options.api_key)), None)
    timeouts = HttpTimeouts(settings.connect_s, settings.first_byte_s, settings.total_s)
    target = HttpTarget(options.url, api_key=options.api_key, model_name=name, tokenizer=tokenizer, timeouts=timeouts)
    process, reason = listening_process(endpoint)
    suite_target = SuiteTarget("http", target, tokenizer, tokenizer_is_the_servers=options.model_dir is not None)
    return Remote(options, health, process, reason, suite_target)


def adjust(verdict: Verdict, remote: Remote) -> Verdict:
    """An engine-shaped verdict, told in the HTTP target's terms."""
    if verdict.check in PROCESS_ITEMS and remote.process is None:
        verdict.verdict, verdict.measured, verdict.reason = "skip", None, remote.process_reason
    elif verdict.check in PROCESS_ITEMS and verdict.verdict != "skip":
        where = f"server process {remote.process.pid} ({remote.process.name()}) found by its port"
        verdict.reason = f"{verdict.reason}; {where}" if verdict.reason else where
    if verdict.check == "cpu_usage" and remote.server_provider == "cpu" and verdict.verdict in ("pass", "fail"):
        verdict.verdict, verdict.gating = "info", False
        verdict.reason = f"info only: the server computes on the CPU provider: {verdict.reason}"
    if verdict.check == "model_loads":
        verdict.reason = (f"the server's /health reports load_s {remote.load_s}" if remote.load_s is not None
                          else "the server loaded the model; its load time is not visible over HTTP")
    if verdict.check in ("provider_active", "accelerator_kind") and verdict.verdict == "skip":
        said = remote.health.info.get("execution_providers") or remote.server_provider
        verdict.reason = ("measured with an ONNX Runtime profile of the in-process engine only; "
                          + (f"the server's /health says it runs on {said}" if said else "the server does not say its provider"))
    if verdict.check == "health":
        convention = remote.health.convention
        verdict.reason = (f"judged on {convention}: " if convention else "") + remote.health.detail
    return verdict
