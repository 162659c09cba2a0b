"""State of one validation-suite session: engines per provider, the run folder, what was measured.

The pytest suites (suites/) are thin: they ask this object for an engine, measure through it, and
judge with harness.judge (the table in harness/judge/table.py). Every record reaches results.jsonl
the moment it is measured, every telemetry sample reaches telemetry.csv as it is taken, and
checklist.json is rewritten after each verdict, so an interrupted session leaves a readable run folder.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import psutil

from harness.judge.evidence import CheckInputs, Evidence
from harness.judge.gate import GateResult, gate
from harness.judge.table import CHECKS, judge_item, skip_all
from harness.config import Config
from harness.measure.environment import collect_environment
from harness.errors import HarnessError
from harness.measure.metrics import measure_request
from harness.targets.engine import Engine
from harness.measure.prompts import exact_length_prompt
from harness.providers import huge_pages_in_effect, make_probe_fn, prefill_logits_in_effect, threading_in_effect
from harness.measure.results import (
    CHECKLIST_FILE,
    ENVIRONMENT_FILE,
    PROVIDER_PROOF_FILE,
    RequestRecord,
    ResultsWriter,
    TelemetrySample,
    TelemetryWriter,
    Verdict,
    records_to_frame,
    telemetry_to_frame,
    write_json,
)
from harness.model.tokenizer import Phi3Tokenizer
from harness.suite.progress import ticker
from harness.suite.remote_target import REMOTE, Remote, RemoteOptions, adjust, connect
from harness.suite.targets import SuiteTarget
from harness.targets.base import Request
from harness.measure.telemetry import TelemetrySampler


class ProviderUnavailable(Exception):
    """The provider cannot run here; the message is the reason shown in the skip."""


class ModelLoadFailed(Exception):
    """The provider works but the model did not load on it; the message is the one-line reason."""


def case_id(provider: str, target: str, precision: str | None, prompt_length: int, max_new_tokens: int, *,
            concurrency: int = 1, rate_per_s: float | None = None) -> str:
    """Everything that changes a case's numbers, readable: cpu-engine-fp32-p128-n16-c4 (or -r2.5, open loop).

    The provider comes first (telemetry labels are grouped by it). Records carry each part as its own
    field as well; comparisons pair cases on those fields, never by parsing this id.
    """
    load = f"r{rate_per_s:g}" if rate_per_s is not None else f"c{concurrency}"
    return f"{provider}-{target}-{precision or 'na'}-p{prompt_length}-n{max_new_tokens}-{load}"


@dataclass
class ProviderState:
    """One provider's runtime state; ``evidence`` is what the judges read, filled in place."""

    engine: Engine | None = None
    unavailable: str | None = None
    evidence: Evidence = field(default_factory=Evidence)
    single_stream: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    @property
    def load_error(self) -> str | None:
        return self.evidence.load_error


class SuiteSession:
    def __init__(self, config: Config, model_dir: Path, run_dir: Path, providers: list[str],
                 provider_choices: list[dict[str, Any]] | None = None, remote: RemoteOptions | None = None,
                 required: list[str] | None = None) -> None:
        self.config = config
        self.model_dir = Path(model_dir)
        self.run_dir = run_dir
        self.run_id = run_dir.name
        self.providers = providers
        self.provider_choices = provider_choices or []  # how "auto" was resolved, with what was passed over
        self.remote_options = remote  # set: the suites measure this HTTP endpoint (provider axis "remote")
        self.remote: Remote | None = None
        self.required = list(required or [])  # providers the gate needs proven (empty: at least one)
        self.records: list[RequestRecord] = []
        self.samples: list[TelemetrySample] = []
        self.states: dict[str, ProviderState] = {}
        self._lock = threading.Lock()
        self._writer = ResultsWriter(run_dir)
        self._telemetry_writer = TelemetryWriter(run_dir)
        # keep_sessions: the session that showed a provider usable becomes its engine's (one model load, not two)
        self._probe = make_probe_fn(self.model_dir, config.provider_settings, keep_sessions=True)
        self._verdicts: dict[tuple[str, str], Verdict] = {}
        self._frames: dict[str, tuple[tuple[int, int], pd.DataFrame, pd.DataFrame]] = {}  # see frames()
        self._sampler_cost = {"cpu_s": 0.0, "wall_s": 0.0, "samples": 0}
        self._environment = collect_environment(
            self.model_dir, providers, run_id=self.run_id,
            extra={"config": config.as_dict(), "provider_choices": self.provider_choices,
                   "required_providers": self.required},
        )
        write_json(run_dir / ENVIRONMENT_FILE, self._environment)

    # -- engines ------------------------------------------------------------------------------

    def state(self, provider: str) -> ProviderState:
        return self.states.setdefault(provider, ProviderState())

    def evidence(self, provider: str) -> Evidence:
        return self.state(provider).evidence

    def engine(self, provider: str) -> Engine:
        """The provider's engine, loaded once; its first request is measured as the cold one."""
        state = self.state(provider)
        if state.unavailable:
            raise ProviderUnavailable(state.unavailable)
        if state.load_error:
            raise ModelLoadFailed(state.load_error)
        if state.engine is None:
            if provider in self.config.fallback.disabled:
                state.unavailable = f"{provider} is switched off in the config (fallback.disabled)"
                raise ProviderUnavailable(state.unavailable)
            try:
                probe = self._probe(provider)
                if probe.usable:
                    state.engine = Engine.load(self.model_dir, self.config.provider_settings(provider),
                                               session=self._probe.take_session(provider),
                                               session_seconds=probe.seconds)
            except HarnessError as error:  # a broken model folder, or a session the model cannot run in
                state.evidence.load_error = str(error)
                raise ModelLoadFailed(str(error)) from None
            if not probe.usable:
                state.unavailable = f"{provider} {probe.status.replace('_', ' ')}: {probe.reason}"
                raise ProviderUnavailable(state.unavailable)
            state.evidence.load_s = state.engine.load_seconds
            self._record_threading(provider, state.engine)
            self._record_attachment(provider, probe)
            self._measure_cold(provider, state.engine, state.engine.tokenizer)
        return state.engine

    def target(self, provider: str) -> SuiteTarget:
        """What the suites measure for ``provider``: its engine, or the HTTP endpoint for "remote"."""
        if provider == REMOTE and self.remote_options is not None:
            return self._remote_target()
        engine = self.engine(provider)
        return SuiteTarget("engine", engine, engine.tokenizer)

    def _remote_target(self) -> SuiteTarget:
        state = self.state(REMOTE)
        if state.load_error:
            raise ModelLoadFailed(state.load_error)
        if self.remote is None:
            try:
                self.remote = connect(self.remote_options, self.model_dir, self.config.http)
            except HarnessError as error:
                state.evidence.load_error = str(error)
                raise ModelLoadFailed(str(error)) from None
            state.evidence.load_s = self.remote.load_s
            state.evidence.health_model_loaded = self.remote.health.model_loaded
            state.evidence.health_detail = self.remote.health.detail
            with self._lock:
                self._environment["http_target"] = self.remote.describe()
                write_json(self.run_dir / ENVIRONMENT_FILE, self._environment)
            target = self.remote.suite_target
            self._measure_cold(REMOTE, target.target, target.tokenizer)
        return self.remote.suite_target

    def _record_threading(self, provider: str, engine: Engine) -> None:
        """The threading (huge-page advice, graph edit) each provider's session really runs with, read back from it."""
        with self._lock:
            self._environment.setdefault("threading", {})[provider] = threading_in_effect(engine.session)
            self._environment.setdefault("huge_pages", {})[provider] = huge_pages_in_effect(engine.session)
            self._environment.setdefault("prefill_logits", {})[provider] = prefill_logits_in_effect(engine.session)
            write_json(self.run_dir / ENVIRONMENT_FILE, self._environment)

    def case_id(self, target: Any, prompt_length: int, *, concurrency: int = 1, rate_per_s: float | None = None) -> str:
        """The case id of a measurement of ``target`` at this config's max_new_tokens."""
        return case_id(target.provider, target.name, getattr(target, "precision", None), prompt_length,
                       self.config.matrix.max_new_tokens, concurrency=concurrency, rate_per_s=rate_per_s)

    def _record_attachment(self, provider: str, probe: Any) -> None:
        """How this ORT attached the provider (adapter, backend, plugin) and what no hardware confirmed."""
        with self._lock:
            self._environment.setdefault("provider_attachments", {})[provider] = {
                "notes": list(probe.notes), "unverified_on_hardware": list(probe.unverified)}
            write_json(self.run_dir / ENVIRONMENT_FILE, self._environment)

    def _measure_cold(self, provider: str, target: Any, tokenizer: Phi3Tokenizer) -> None:
        """The first request after load (for an HTTP target: the first this run sends)."""
        length = min(self.config.matrix.prompt_lengths)
        request = Request(prompt_ids=exact_length_prompt(tokenizer, length), max_new_tokens=self.config.matrix.max_new_tokens)
        with self.sampling(f"{provider}-cold"):
            self.measure(target, request, case=f"{provider}-cold", test="cold", prompt_length=length, cold=True)

    # -- measuring ----------------------------------------------------------------------------

    def add_record(self, record: RequestRecord) -> None:
        self._writer.write(record)
        with self._lock:
            self.records.append(record)
            ticker().request_done()

    def measure(self, target: Any, request: Request, *, case: str, test: str, prompt_length: int,
                concurrency: int = 1, index: int = 0, worker: int = 0, cold: bool = False,
                read_memory: bool = False) -> RequestRecord:
        """Measure one request and write its record; ``read_memory``: read the serving process's
        resident memory right after it, into the record (memory-growth cases)."""
        record = measure_request(
            target, request, run_id=self.run_id, case_id=case, test=test, prompt_length=prompt_length,
            concurrency=concurrency, request_index=index, worker=worker, cold=cold,
        )
        if read_memory:
            record.rss_after_bytes = self.serving_rss(record.provider)
        self.add_record(record)
        return record

    def serving_rss(self, provider: str) -> int | None:
        """Resident memory of the process that serves ``provider``: this one, or the HTTP server found
        by its port (None when that server cannot be read)."""
        process = psutil.Process()
        if provider == REMOTE and self.remote is not None:
            process = self.remote.process
        try:
            return int(process.memory_info().rss) if process is not None else None
        except psutil.Error:
            return None

    @contextlib.contextmanager
    def sampling(self, label: str) -> Iterator[TelemetrySampler]:
        """Telemetry around only the measured code; samples go to telemetry.csv as they are taken."""
        if not self.config.telemetry.enabled:
            yield None  # type: ignore[misc]
            return

        def sink(sample: TelemetrySample) -> None:
            self._telemetry_writer.write(sample)
            with self._lock:
                self.samples.append(sample)

        pid = None
        if label.startswith(f"{REMOTE}-") and self.remote is not None:
            if self.remote.process is None:  # a server elsewhere: its memory and CPU are not sampled
                yield None  # type: ignore[misc]
                return
            pid = self.remote.process.pid
        with TelemetrySampler(self.config.telemetry.interval_s, label, pid=pid, sink=sink) as sampler:
            yield sampler
        with self._lock:
            for key in self._sampler_cost:
                self._sampler_cost[key] += getattr(sampler.cost, key)
        provider = label.split("-", 1)[0]
        if not sampler.gpu_available:
            self.evidence(provider).gpu_counters_reason = sampler.gpu_reason

    # -- judging ------------------------------------------------------------------------------

    def frames(self, provider: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The provider's records and telemetry so far, as frames (copies: a judge may change its own).

        Built again only when something was measured since: the checklist judges its items one after
        another from the same measurements, and building the frames was most of a verdict's cost.
        """
        with self._lock:
            measured = (len(self.records), len(self.samples))  # both lists only grow
            records = [r for r in self.records if r.provider == provider]
            samples = [s for s in self.samples if s.label.startswith(f"{provider}-")]
        built = self._frames.get(provider)
        if built is None or built[0] != measured:
            built = (measured, records_to_frame(records), telemetry_to_frame(samples))
            self._frames[provider] = built
        return built[1].copy(), built[2].copy()

    def target_kind(self, provider: str) -> str:
        return "http" if provider == REMOTE and self.remote_options is not None else "engine"

    def inputs(self, provider: str) -> CheckInputs:
        records, telemetry = self.frames(provider)
        return CheckInputs(provider, records, telemetry, self.evidence(provider), self.target_kind(provider))

    def verdict(self, provider: str, check: str) -> Verdict:
        """Judge one checklist item for a provider from everything measured so far, and save it."""
        state, kind = self.state(provider), self.target_kind(provider)
        if state.unavailable:
            chosen = next(v for v in skip_all(provider, state.unavailable, kind) if v.check == check)
        elif state.load_error and check != "model_loads":
            reason = f"the model did not load: {state.load_error}"
            chosen = next(v for v in skip_all(provider, reason, kind) if v.check == check)
        else:
            chosen = judge_item(check, self.inputs(provider), self.config.thresholds)
        if provider == REMOTE and self.remote is not None:
            chosen = adjust(chosen, self.remote)
        chosen.provider = provider
        self._verdicts[(provider, check)] = chosen
        self.save_checklist()
        return chosen

    def save_checklist(self) -> None:
        """checklist.json, provider by provider in matrix order, items in the checklist's order."""
        write_json(self.run_dir / CHECKLIST_FILE, self.verdicts())

    def finish(self, interrupted: str | None = None) -> list[Verdict]:
        """Give every matrix provider x checklist item a verdict ("skip: not run" when no test judged it).

        ``interrupted`` (a signal's name): the run was stopped; unreached items say so, and so does
        environment.json.
        """
        reason = (f"interrupted ({interrupted}) before this item was judged" if interrupted
                  else "not run (deselected, or the run stopped before this item was judged)")
        for provider in self.providers:
            for skipped in skip_all(provider, reason, self.target_kind(provider)):
                if (provider, skipped.check) not in self._verdicts:
                    judged = self._judge_partial(provider, skipped.check, reason) if interrupted else None
                    self._verdicts[(provider, skipped.check)] = judged or skipped
        if interrupted:
            self._environment["interrupted"] = {"signal": interrupted, "forced": False}
        self.save_checklist()
        self._save_sampler_cost()
        return self.verdicts()

    def _judge_partial(self, provider: str, check: str, interrupted: str) -> Verdict | None:
        """After an interrupt: the item's verdict from what was measured, or None when the judge failed."""
        try:
            verdict = self.verdict(provider, check)
        except Exception:  # noqa: BLE001 - partial evidence the judge cannot read counts as not reached
            return None
        state = self.state(provider)
        if state.unavailable or state.load_error:
            return verdict  # skipped (or failed) for its own reason, interrupt or not
        if verdict.verdict == "skip":  # the judge's own reason says what was missing (or not applicable)
            verdict.reason = f"{interrupted}: {verdict.reason}" if verdict.reason else interrupted
            return verdict
        verdict.reason = "; ".join(p for p in (verdict.reason, "judged on what was measured before the interrupt") if p)
        return verdict

    def _save_sampler_cost(self) -> None:
        """What measuring cost: the telemetry thread's CPU time over the time it ran (target < 1 % of a core)."""
        cost = dict(self._sampler_cost, interval_s=self.config.telemetry.interval_s)
        cost["percent_of_one_core"] = round(100 * cost["cpu_s"] / cost["wall_s"], 3) if cost["wall_s"] else None
        self._environment["telemetry_sampler"] = cost
        write_json(self.run_dir / ENVIRONMENT_FILE, self._environment)

    def verdicts(self) -> list[Verdict]:
        check_order = {check: i for i, check in enumerate(CHECKS)}
        provider_order = {name: i for i, name in enumerate(self.providers)}
        keys = sorted(self._verdicts, key=lambda key: (provider_order.get(key[0], 99), check_order.get(key[1], 99)))
        return [self._verdicts[key] for key in keys]

    def gate(self) -> GateResult:
        """The exit rule on what was judged (harness/judge/gate.py)."""
        return gate(self.verdicts(), self.required)

    def save_proofs(self) -> None:
        proofs = [s.evidence.proof for s in self.states.values() if s.evidence.proof]
        write_json(self.run_dir / PROVIDER_PROOF_FILE, proofs)

    def close(self) -> None:
        self._writer.close()
        self._telemetry_writer.close()
        for state in self.states.values():
            if state.engine is not None:
                state.engine.close()
        if self.remote is not None:
            self.remote.suite_target.target.close()
