"""`phi3-harness doctor`: what is installed, what actually works, and what is wrong, in plain words.

``diagnose()`` returns one plain dict (the CLI prints it as text or JSON). Everything it claims
about a provider comes from a real session on the model; the requested provider also gets a
profiled generation that shows where its kernels ran. That generation needs the engine, which
providers/ must not import: the command injects ``prove`` (harness.measure.proof.prove_provider).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError
from harness.providers.choice import choose_provider
from harness.providers.inventory import distribution_problems, ort_inventory, unverified_on_hardware
from harness.providers.platform import PlatformInfo, platform_info
from harness.providers.probe import ProbeResult, probe
from harness.providers.session import ProviderSettings
from harness.providers.spec import AUTO, DEFAULT_CHAIN, SPECS, short_name, spec_for

SettingsFor = Callable[[str], ProviderSettings]
ProveFn = Callable[[str, ProviderSettings], dict[str, Any]]  # (model path, settings) -> proof record

__all__ = ["diagnose", "distribution_problems", "traps"]


def diagnose(
    model: Path | str | None = None,
    provider: str = "cpu",
    settings_for: SettingsFor | None = None,
    chain: tuple[str, ...] = DEFAULT_CHAIN,
    prove: ProveFn | None = None,
    disabled: tuple[str, ...] = (),
    share_min: float = 0.5,
    model_source: str = "--model",
) -> dict[str, Any]:
    """Every check, as plain data. ``ok`` is True when the requested provider is usable (and proven).

    ``settings_for(name)`` gives each provider's options/threads/strict (a run config's
    ``provider_settings``); ``chain`` is what ``auto`` walks, skipping the ``disabled`` ones; with
    ``prove``, auto takes a provider only when it runs >= ``share_min`` of the kernel nodes.
    """
    requested = short_name(provider)
    if requested != AUTO:
        spec_for(requested)  # an unknown name is a usage error, not a diagnosis
    settings_for = settings_for or (lambda name: ProviderSettings(name=name))
    info = platform_info()
    report: dict[str, Any] = {"system": info.to_dict()}
    report["onnxruntime"] = ort_inventory()
    report["unverified_on_hardware"] = unverified_on_hardware(report["onnxruntime"])
    report["model"] = model_section(model, model_source)
    report["probes"] = probe_section(report["model"], report["onnxruntime"], settings_for)
    report["ep_devices"] = devices_section(report["onnxruntime"])
    verify = _verify(report["model"], settings_for, prove) if requested == AUTO else None
    report["choice"], chosen, reason, auto_proof = choice_section(
        requested, chain, report["probes"], disabled, verify, share_min)
    report["proof"], report["proof_error"] = auto_proof, None
    if chosen and prove and auto_proof is None:
        report["proof"], report["proof_error"], reason = proof_section(report["model"]["path"], settings_for(chosen), prove)
        chosen = chosen if report["proof_error"] is None else None
    elif chosen and auto_proof is not None:
        reason = _proven(chosen, auto_proof, report["choice"])
    report["traps"] = traps(info, report["onnxruntime"], report["probes"], requested)
    # The verdict first, so a reader of the JSON sees it before the details.
    return {"ok": chosen is not None, "requested": requested, "chosen": chosen, "reason": reason, **report}


def _verify(model: dict[str, Any], settings_for: SettingsFor, prove: ProveFn | None) -> Callable[[str], dict] | None:
    if prove is None or not model["valid"]:
        return None
    return lambda name: prove(model["path"], settings_for(name))


def _proven(chosen: str, proof: dict[str, Any], choice: dict[str, Any]) -> str:
    reason = f"{chosen} is usable: {proof['share_on_requested']:.0%} of kernel nodes ran on {proof['execution_provider']}"
    if choice["passed_over"]:
        reason += f" (auto passed over {', '.join(item['provider'] for item in choice['passed_over'])})"
    return reason


# -- sections ---------------------------------------------------------------------------------


def model_section(model: Path | str | None, source: str = "--model") -> dict[str, Any]:
    """Validate the model folder (``source`` says where it came from: --model, or the embedded default)."""
    from harness.model.folder import load_model_folder
    from harness.model.rope_switch import switch_length

    section: dict[str, Any] = {"path": None, "source": source if model else "embedded tiny Phi-3",
                               "valid": False, "error": None}
    try:
        if model is None:  # the embedded tiny model, resolved at the edge like every other default
            from harness.model.default_model import resolve_model

            model = resolve_model(None)
        section["path"] = str(Path(model).expanduser())
        folder = load_model_folder(model)
    except HarnessError as error:
        section["error"] = str(error)
        return section
    config = folder.config
    section.update(
        valid=True,
        onnx=folder.onnx_path.name,
        bytes=sum(p.stat().st_size for p in folder.path.iterdir() if p.is_file()),
        model_type=config.model_type,
        layers=config.num_layers,
        hidden_size=config.hidden_size,
        vocab_size=config.vocab_size,
        context_length=config.context_length,
        built_for=[name for entry in config.provider_options for name in entry] or ["cpu"],
        rope_switch=switch_length(folder.onnx_path),  # LongRoPE: rotary caches switch above this length
    )
    return section


def probe_section(model: dict[str, Any], runtime: dict[str, Any], settings_for: SettingsFor) -> list[dict[str, Any]]:
    """One probe per known provider: a real session on the model decides."""
    results = []
    for name, spec in SPECS.items():
        ep = spec.execution_provider
        if runtime["import_error"]:
            results.append(ProbeResult(name, ep, "not_installed", runtime["import_error"]).to_dict())
        elif not model["valid"]:
            try:  # probe() answers "not installed" before it touches the model
                found = probe(name, model["path"] or ".", settings_for(name))
            except HarnessError:
                reason = f"not probed: the model folder is not valid ({model['error']})"
                found = ProbeResult(name, ep, "failing", reason, compiled_in=True)
            results.append(found.to_dict())
        else:
            results.append(probe(name, model["path"], settings_for(name)).to_dict())
    return results


def devices_section(runtime: dict[str, Any]) -> dict[str, Any]:
    if runtime["import_error"]:
        return {"supported": False, "note": "ONNX Runtime is not importable", "problems": [], "devices": []}
    from harness.providers.devices import devices_report

    return devices_report()


def choice_section(
    requested: str, chain: tuple[str, ...], probes: list[dict[str, Any]], disabled: tuple[str, ...] = (),
    verify: Callable[[str], dict] | None = None, share_min: float = 0.5,
) -> tuple[dict[str, Any], str | None, str, dict[str, Any] | None]:
    """(choice record, chosen name or None, one-line reason, auto's proof of the chosen one)."""
    by_name = {entry["name"]: entry for entry in probes}
    try:
        choice = choose_provider(requested, chain, lambda name: ProbeResult.from_dict(by_name[name]), disabled,
                                 verify, share_min)
    except HarnessError as error:
        return {"requested": requested, "chosen": None, "passed_over": []}, None, str(error), None
    reason = f"{choice.chosen} is usable"
    if choice.passed_over:
        reason += f" (auto passed over {', '.join(name for name, _ in choice.passed_over)})"
    return choice.to_dict(), choice.chosen, reason, choice.proof


def proof_section(model_path: str, settings: ProviderSettings,
                  prove: ProveFn) -> tuple[dict[str, Any] | None, str | None, str]:
    """A profiled generation on the chosen provider: where did the kernels really run?

    Returns (proof record, error, one-line reason).
    """
    try:
        proof = prove(model_path, settings)
    except HarnessError as error:
        return None, str(error), f"{settings.name}: the session was created but the profiled generation failed: {error}"
    share = proof["share_on_requested"]
    return proof, None, f"{settings.name} is usable: {share:.0%} of kernel nodes ran on {proof['execution_provider']}"


# -- known traps ------------------------------------------------------------------------------


def traps(info: PlatformInfo, runtime: dict[str, Any], probes: list[dict[str, Any]], requested: str) -> list[dict[str, Any]]:
    """The setups that cost people days, each with whether it applies to this machine."""
    woa = info.windows_on_arm
    failing_compiled = [p["name"] for p in probes if p["compiled_in"] and p["status"] != "usable"]
    return [
        _trap(
            "woa-no-directml-wheel", woa and info.python_arch == "arm64",
            "Windows on Arm: no arm64 onnxruntime-directml wheel",
            "onnxruntime-directml is published for Windows x64 only. In an arm64 Python, pip cannot install it. "
            "Use an x64 Python (it runs under emulation; CPU-side work is slower) for DirectML, "
            "or onnxruntime-qnn to use the NPU from arm64 Python.",
        ),
        _trap(
            "woa-emulated-python", woa and info.emulated_python,
            "An x64 Python on an Arm CPU runs emulated",
            (f"The CPU is {info.cpu_arch} but this Python is {info.python_arch}. " if info.emulated_python
             else "On Windows on Arm an x64 Python runs under emulation. ")
            + "That is how DirectML is reached on Snapdragon, but CPU-provider timings are slower than native.",
        ),
        _trap(
            "snapdragon-dml-is-gpu", woa,
            "DirectML on Snapdragon runs on the Adreno GPU",
            "On Snapdragon X laptops DirectML executes on the Adreno GPU, not on the Hexagon NPU. "
            "GPU counters, not NPU counters, show its work.",
        ),
        _trap(
            "hexagon-needs-qnn", woa,
            "The Hexagon NPU needs QNN",
            "The NPU is reached only through the QNN execution provider: pip install onnxruntime-qnn "
            "(2.x is a plugin kept beside the CPU onnxruntime >= 1.24.2; 1.x replaces onnxruntime) and run "
            "with --provider qnn. A normal Phi-3 folder runs almost nothing on the NPU (MatMulNBits, "
            "GroupQueryAttention and dynamic shapes are not HTP ops): the provider proof shows the share. "
            "The published QNN Phi-3 folders are decoder-pipeline models, which this engine refuses.",
        ),
        _trap(
            "onnxruntime-beside-accelerated", bool(runtime["problems"]),
            "ONNX Runtime packages that do not fit together",
            " ".join(runtime["problems"]) or "onnxruntime beside onnxruntime-directml (or -gpu, -qnn 1.x) breaks the "
            "accelerated one: both install the same 'onnxruntime' package. Keep exactly one. (onnxruntime-qnn "
            "2.x is the exception: a plugin that needs the CPU onnxruntime >= 1.24.2 beside it.)",
        ),
        _trap(
            "compiled-in-is-not-working", bool(failing_compiled),
            "Compiled in is not the same as working",
            "get_available_providers() lists what this ONNX Runtime build contains, not what runs here. "
            + (f"Here {', '.join(failing_compiled)} is compiled in but failed to start (see its probe). "
               if failing_compiled else "")
            + "The probes above create a real session to decide.",
        ),
        _trap(
            "directml-windows-only", not info.is_windows and requested == "dml",
            "DirectML exists only on Windows",
            "DirectML is part of Windows (DirectX 12). On this OS use cpu, or cuda with onnxruntime-gpu.",
        ),
    ]


def _trap(key: str, applies: bool, title: str, text: str) -> dict[str, Any]:
    return {"id": key, "applies": bool(applies), "title": title, "text": text}
