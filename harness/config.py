"""Run configuration: the matrix, provider options, fallback chain, thresholds, telemetry.

Layers, later wins: code defaults <- a TOML file <- overrides (dotted keys from the command line,
e.g. {"matrix.providers": ["cpu"], "thresholds.first_response_s": 0.1}). Every layer is validated
on its own, so an unknown key or a wrong type is reported with the file (or "override") it came from.
The result is frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from harness.config_checks import check_config
from harness.config_values import coerce, type_name
from harness.errors import HarnessError
from harness.providers.session import ProviderSettings
from harness.providers.spec import DEFAULT_CHAIN, SPECS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
OVERRIDE_SOURCE = "override"


@dataclass(frozen=True)
class Matrix:
    providers: tuple[str, ...] = DEFAULT_CHAIN  # short names, see harness/providers/spec.py
    prompt_lengths: tuple[int, ...] = (128, 512, 1024)  # prompt tokens per case
    concurrency: tuple[int, ...] = (1, 4)  # concurrent requests per case
    max_new_tokens: int = 32  # generated tokens per request
    repetitions: int = 10  # measured requests per latency case
    warmup: int = 2  # unmeasured requests before each case (after the cold one)
    requests_per_level: int = 16  # requests per concurrency level (and per arrival rate)
    arrival_rates: tuple[float, ...] = ()  # open loop: Poisson arrivals per second; empty = no open-loop cases
    sweep: tuple[float, ...] = ()  # rate sweep: offered loads as multiples of single-stream capacity; empty = none
    seed: int = 0  # prompt text and Poisson arrivals


@dataclass(frozen=True)
class ProviderConfig:
    threads: int | None = None  # short for intra_op_num_threads
    intra_op_num_threads: int | None = None  # None: providers/thread_default.py decides
    inter_op_num_threads: int | None = None  # used only with execution_mode = "parallel"
    allow_spinning: bool = ProviderSettings.allow_spinning  # idle pool threads spin (ORT's default: true)
    force_spinning_stop: bool = ProviderSettings.force_spinning_stop  # spin only while a Run is in progress
    dynamic_block_base: int = ProviderSettings.dynamic_block_base  # >0: ORT splits parallel loops in shrinking blocks
    execution_mode: str = ProviderSettings.execution_mode  # sequential | parallel
    huge_pages: bool = ProviderSettings.huge_pages  # cpu on Linux: weights on 2 MiB pages (providers/huge_pages.py)
    last_position_logits: bool = ProviderSettings.last_position_logits  # prefill on the graph's last-position edit
    direct_attention_lengths: bool = ProviderSettings.direct_attention_lengths  # cpu: no mask reformat per step
    strict: bool = False  # refuse CPU fallback for any node (session.disable_cpu_ep_fallback)
    options: dict[str, Any] = field(default_factory=dict)  # ONNX Runtime provider options, passed as is


@dataclass(frozen=True)
class Fallback:
    chain: tuple[str, ...] = DEFAULT_CHAIN  # tried in order when no provider is named
    disabled: tuple[str, ...] = ()  # switched off: auto never picks them, their matrix cases skip


@dataclass(frozen=True)
class Thresholds:
    """One threshold per checklist item (docs/ARCHITECTURE.md, "The checklist"); the unit is the name's suffix."""

    provider_share_min: float = 0.5  # fraction of kernel nodes on the requested provider, >=
    simple_query_p50_s: float = 1.0  # E2E p50, short prompt, concurrency 1, <=
    first_response_s: float = 0.5  # TTFT of the first request after load (cold), <=
    subsequent_p50_s: float = 0.3  # TTFT p50 of warm requests, short prompt, concurrency 1, <=
    memory_peak_gib: float = 14.0  # peak process memory (+ GPU process memory where readable), <=
    memory_growth_mib_per_request: float = 1.0  # RSS growth over repeated requests, <=
    cpu_percent_max: float = 50.0  # mean process CPU normalised to all cores, <= (info on cpu)
    accelerator_util_min_percent: float = 0.0  # peak GPU/NPU engine utilisation of this process, >


@dataclass(frozen=True)
class Slo:
    """Service-level objectives per request (harness/judge/slo.py); unset ones are not applied."""

    ttft_s: float | None = None  # time to first token, <=
    tpot_s: float | None = None  # time per output token after the first, <=
    e2el_s: float | None = None  # end-to-end latency, <=

    def limits(self) -> dict[str, float]:
        """{"ttft": 0.3, ...} for the objectives that are set (vLLM/AIPerf/GuideLLM names)."""
        return {name[:-2]: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class Gate:
    # providers that must be proven: every applicable gating item measured (docs/ARCHITECTURE.md);
    # empty = the providers named with --provider, or at least one provider of the run
    require: tuple[str, ...] = ()


@dataclass(frozen=True)
class Telemetry:
    interval_s: float = 0.05  # sampling period
    enabled: bool = True


# ONNX Runtime option names and types per provider come from the provider records (to catch typos).
PROVIDER_OPTIONS: dict[str, dict[str, type]] = {name: dict(spec.option_types) for name, spec in SPECS.items()}
OPTION_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    **{(name, key): choices for name, spec in SPECS.items() for key, choices in spec.option_choices.items()},
    **{(name, "execution_mode"): ("sequential", "parallel") for name in SPECS},
}


@dataclass(frozen=True)
class Http:  # run --target-url: timeouts (a request past one is a failed record), /health's loading wait
    connect_s: float = 5.0
    first_byte_s: float = 60.0  # request sent -> response headers
    total_s: float = 300.0  # submit -> end of the answer
    health_wait_s: float = 60.0


SECTIONS: dict[str, type] = {
    "matrix": Matrix, "fallback": Fallback, "thresholds": Thresholds, "slo": Slo, "telemetry": Telemetry, "http": Http,
    "gate": Gate,
}
PROVIDER_KEYS = (
    "threads", "intra_op_num_threads", "inter_op_num_threads", "allow_spinning", "force_spinning_stop",
    "dynamic_block_base", "execution_mode", "huge_pages", "last_position_logits", "direct_attention_lengths", "strict",
)


@dataclass(frozen=True)
class Config:
    matrix: Matrix = Matrix()
    providers: dict[str, ProviderConfig] = field(default_factory=dict)  # [provider.<name>]
    fallback: Fallback = Fallback()
    thresholds: Thresholds = Thresholds()
    slo: Slo = Slo()
    telemetry: Telemetry = Telemetry()
    http: Http = Http()
    gate: Gate = Gate()
    sources: tuple[str, ...] = ()  # files and "override", in the order applied

    def provider(self, name: str) -> ProviderConfig:
        return self.providers.get(name, ProviderConfig())

    def provider_settings(self, name: str) -> ProviderSettings:
        entry = self.provider(name)
        return ProviderSettings(
            name=name,
            options=dict(entry.options),
            intra_op_threads=entry.intra_op_num_threads if entry.intra_op_num_threads is not None else entry.threads,
            inter_op_threads=entry.inter_op_num_threads,
            allow_spinning=entry.allow_spinning,
            force_spinning_stop=entry.force_spinning_stop,
            dynamic_block_base=entry.dynamic_block_base,
            execution_mode=entry.execution_mode,
            huge_pages=entry.huge_pages,
            last_position_logits=entry.last_position_logits,
            direct_attention_lengths=entry.direct_attention_lengths,
            strict=entry.strict,
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data in the TOML layout (for the run folder)."""
        data: dict[str, Any] = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        data["provider"] = {
            name: {**{k: getattr(p, k) for k in PROVIDER_KEYS if getattr(p, k) is not None}, **p.options}
            for name, p in self.providers.items()
        }
        data["sources"] = list(self.sources)
        return data


# --- values (parsing: harness/config_values.py) ---------------------------------------------


def _bad_type(source: str, key: str, hint: Any, value: Any) -> HarnessError:
    return HarnessError(f"{source}: key '{key}' must be {type_name(hint)}, got {value!r}: fix the value")


def _unknown(source: str, key: str, known: typing.Iterable[str]) -> HarnessError:
    return HarnessError(f"{source}: unknown key '{key}' (known: {', '.join(sorted(known))}): fix the spelling")


# --- layers -----------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _provider_key(source: str, provider: str, key: str, value: Any) -> tuple[str, Any]:
    """Validate one [provider.<name>] entry; returns (key, value)."""
    dotted = f"provider.{provider}.{key}"
    if key in PROVIDER_KEYS:
        hint = _hints(ProviderConfig)[key]
    elif key in PROVIDER_OPTIONS[provider]:
        hint = PROVIDER_OPTIONS[provider][key]
    else:
        raise _unknown(source, dotted, [f"provider.{provider}.{k}" for k in (*PROVIDER_KEYS, *PROVIDER_OPTIONS[provider])])
    try:
        value = coerce(value, hint)
    except (ValueError, TypeError):
        raise _bad_type(source, dotted, hint, value) from None
    choices = OPTION_CHOICES.get((provider, key))
    if choices and value not in choices:
        raise HarnessError(f"{source}: key '{dotted}' must be one of {', '.join(choices)}, got {value!r}: fix the value")
    return key, value


def _flatten_layer(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A parsed TOML document -> {dotted key: validated value}."""
    flat: dict[str, Any] = {}
    for section, body in data.items():
        if section == "provider":
            if not isinstance(body, Mapping):
                raise _bad_type(source, "provider", "a table of [provider.<name>] tables", body)
            for provider, entries in body.items():
                if provider not in PROVIDER_OPTIONS:
                    raise _unknown(source, f"provider.{provider}", [f"provider.{p}" for p in PROVIDER_OPTIONS])
                if not isinstance(entries, Mapping):
                    raise HarnessError(f"{source}: 'provider.{provider}' must be a table: write [provider.{provider}]")
                for key, value in entries.items():
                    flat[f"provider.{provider}.{key}"] = _provider_key(source, provider, key, value)[1]
            continue
        if section not in SECTIONS:
            raise _unknown(source, section, [*SECTIONS, "provider"])
        if not isinstance(body, Mapping):
            raise HarnessError(f"{source}: '{section}' must be a table: write [{section}]")
        for key, value in body.items():
            flat[f"{section}.{key}"] = _section_value(source, section, key, value)
    return flat


def _section_value(source: str, section: str, key: str, value: Any) -> Any:
    hints = _hints(SECTIONS[section])
    if key not in hints:
        raise _unknown(source, f"{section}.{key}", [f"{section}.{k}" for k in hints])
    try:
        return coerce(value, hints[key])
    except (ValueError, TypeError):
        raise _bad_type(source, f"{section}.{key}", hints[key], value) from None


def _override_layer(overrides: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if parts[0] == "provider":
            if len(parts) != 3 or parts[1] not in PROVIDER_OPTIONS:
                raise _unknown(OVERRIDE_SOURCE, dotted, [f"provider.{p}.<key>" for p in PROVIDER_OPTIONS])
            flat[dotted] = _provider_key(OVERRIDE_SOURCE, parts[1], parts[2], value)[1]
        elif len(parts) == 2 and parts[0] in SECTIONS:
            flat[dotted] = _section_value(OVERRIDE_SOURCE, parts[0], parts[1], value)
        else:
            raise _unknown(OVERRIDE_SOURCE, dotted, [f"{s}.<key>" for s in (*SECTIONS, "provider.<name>")])
    return flat


def parse_override(text: str) -> tuple[str, str]:
    """"thresholds.first_response_s=0.1" -> ("thresholds.first_response_s", "0.1") for --set options."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise HarnessError(f"override {text!r} is not KEY=VALUE: write e.g. thresholds.first_response_s=0.1")
    return key.strip(), value.strip()


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path, or the name of a file in configs/ ("quick" -> configs/quick.toml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    named = CONFIG_DIR / f"{name_or_path}.toml"
    if path.suffix == "" and named.is_file():
        return named
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.toml")) if CONFIG_DIR.is_dir() else []
    raise HarnessError(f"config file not found: {name_or_path}: pass a TOML path or one of: {', '.join(known) or '(none)'}")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise HarnessError(f"{path}: not valid TOML ({error}): fix the syntax") from None
    except UnicodeDecodeError as error:
        raise HarnessError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                           f"{error.start}): save the file as UTF-8") from None
    except OSError as error:
        raise HarnessError(f"cannot read config {path} ({error.strerror}): check the path") from None


# --- building ---------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults <- the TOML file (a path or a configs/ name) <- overrides; validated, frozen."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is not None:
        resolved = resolve_config_path(path)
        layers.append((str(path), _flatten_layer(read_toml(resolved), str(path))))
    if overrides:
        layers.append((OVERRIDE_SOURCE, _override_layer(overrides)))
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for source, flat in layers:
        merged.update(flat)
        origin.update({key: source for key in flat})
    return _build(merged, origin, tuple(source for source, _ in layers))


def _build(flat: dict[str, Any], origin: dict[str, str], sources: tuple[str, ...]) -> Config:
    sections = {
        name: cls(**{k.split(".", 1)[1]: v for k, v in flat.items() if k.split(".", 1)[0] == name})
        for name, cls in SECTIONS.items()
    }
    providers: dict[str, dict[str, Any]] = {}
    for dotted, value in flat.items():
        if dotted.startswith("provider."):
            _, name, key = dotted.split(".")
            entry = providers.setdefault(name, {"options": {}})
            if key in PROVIDER_KEYS:
                entry[key] = value
            else:
                entry["options"][key] = value
    config = Config(
        providers={name: ProviderConfig(**entry) for name, entry in providers.items()},
        sources=sources,
        **sections,
    )
    check_config(config, origin)
    return config
