"""`phi3-harness doctor`: what is installed, what actually works, and what is wrong, in plain words.

``diagnose()`` returns one plain dict (the CLI prints it as text or JSON). Everything it claims
about a provider comes from a real session on the model; the requested provider also gets a
profiled generation that shows where its kernels ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError
from harness.platform_info import PlatformInfo, platform_info
from harness.providers import (
    AUTO,
    DEFAULT_CHAIN,
    EXECUTION_PROVIDERS,
    ProbeResult,
    ProviderSettings,
    choose_provider,
    execution_provider_name,
    import_onnxruntime,
    short_name,
)

# Distributions that each install the `onnxruntime` package; any two together overwrite each other.
ACCELERATED_DISTRIBUTIONS = {
    "onnxruntime-directml": "DirectML",
    "onnxruntime-gpu": "CUDA",
    "onnxruntime-qnn": "QNN",
    "onnxruntime-openvino": "OpenVINO",
}
CPU_DISTRIBUTION = "onnxruntime"

SettingsFor = Callable[[str], ProviderSettings]


def diagnose(
    model: Path | str | None = None,
    provider: str = "cpu",
    settings_for: SettingsFor | None = None,
    chain: tuple[str, ...] = DEFAULT_CHAIN,
    prove: bool = True,
    disabled: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every check, as plain data. ``ok`` is True when the requested provider is usable.

    ``settings_for(name)`` gives each provider's options/threads/strict (a run config's
    ``provider_settings``); ``chain`` is what ``auto`` walks, skipping the ``disabled`` ones.
    """
    requested = short_name(provider)
    if requested != AUTO:
        execution_provider_name(requested)  # an unknown name is a usage error, not a diagnosis
    settings_for = settings_for or (lambda name: ProviderSettings(name=name))
    info = platform_info()
    report: dict[str, Any] = {"system": info.to_dict()}
    report["onnxruntime"] = runtime_section()
    report["model"] = model_section(model)
    report["probes"] = probe_section(report["model"], report["onnxruntime"], settings_for)
    report["ep_devices"] = devices_section(report["onnxruntime"])
    report["choice"], chosen, reason = choice_section(requested, chain, report["probes"], disabled)
    report["proof"], report["proof_error"] = None, None
    if chosen and prove:
        report["proof"], report["proof_error"], reason = proof_section(report["model"]["path"], settings_for(chosen))
        chosen = chosen if report["proof_error"] is None else None
    report["traps"] = traps(info, report["onnxruntime"], report["probes"], requested)
    # The verdict first, so a reader of the JSON sees it before the details.
    return {"ok": chosen is not None, "requested": requested, "chosen": chosen, "reason": reason, **report}


# -- sections ---------------------------------------------------------------------------------


def runtime_section() -> dict[str, Any]:
    from harness.measure.environment import ort_distributions

    distributions = ort_distributions()
    section: dict[str, Any] = {
        "version": None,
        "import_error": None,
        "distributions": distributions,
        "problems": distribution_problems(distributions),
        "compiled_in": [],
    }
    try:
        ort = import_onnxruntime()
    except HarnessError as error:
        section["import_error"] = str(error)
        return section
    section["version"] = ort.__version__
    section["location"] = str(Path(ort.__file__).parent)
    section["compiled_in"] = list(ort.get_available_providers())
    return section


def distribution_problems(distributions: dict[str, str]) -> list[str]:
    """Installed-package combinations known to break a provider, each said with its fix."""
    names = {name.lower().replace("_", "-") for name in distributions}
    runtimes = sorted(name for name in names if name == CPU_DISTRIBUTION or name in ACCELERATED_DISTRIBUTIONS)
    accelerated = [name for name in runtimes if name in ACCELERATED_DISTRIBUTIONS]
    problems = []
    for name in accelerated:
        if CPU_DISTRIBUTION in names:
            problems.append(
                f"onnxruntime is installed beside {name}: both write the same 'onnxruntime' package, so "
                f"{ACCELERATED_DISTRIBUTIONS[name]} silently disappears (or half of it stays): "
                f"pip uninstall -y onnxruntime {name} && pip install {name}"
            )
    if len(accelerated) > 1:
        problems.append(
            f"{', '.join(accelerated)} are installed together and overwrite each other: "
            "uninstall all of them and install the one you need"
        )
    if "onnxruntime-genai" in names and accelerated:
        problems.append(
            "onnxruntime-genai depends on the CPU onnxruntime and reinstalls it beside "
            f"{accelerated[0]}: use the matching onnxruntime-genai-* package (e.g. onnxruntime-genai-directml)"
        )
    if not runtimes:
        problems.append("no onnxruntime distribution is installed through pip: pip install 'phi3-harness[cpu]'")
    return problems


def model_section(model: Path | str | None) -> dict[str, Any]:
    """Validate the model folder; the default is the embedded tiny Phi-3 (built on first use)."""
    from harness.model.folder import load_model_folder

    section: dict[str, Any] = {"path": None, "source": "--model" if model else "embedded tiny Phi-3",
                               "valid": False, "error": None}
    try:
        if model is None:
            from harness.model.default_model import default_model_dir

            model = default_model_dir()
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
    )
    return section


def probe_section(model: dict[str, Any], runtime: dict[str, Any], settings_for: SettingsFor) -> list[dict[str, Any]]:
    """One probe per known provider: a real session on the model decides."""
    from harness.providers import probe

    results = []
    for name, ep in EXECUTION_PROVIDERS.items():
        if runtime["import_error"]:
            results.append(ProbeResult(name, ep, "not_installed", runtime["import_error"]).to_dict())
        elif not model["valid"] and ep in runtime["compiled_in"]:
            reason = f"not probed: the model folder is not valid ({model['error']})"
            results.append(ProbeResult(name, ep, "failing", reason, compiled_in=True).to_dict())
        else:
            # probe() answers "not installed" before touching the model, so a bad folder is fine here.
            results.append(probe(name, model["path"] or ".", settings_for(name)).to_dict())
    return results


def devices_section(runtime: dict[str, Any]) -> dict[str, Any]:
    if runtime["import_error"]:
        return {"supported": False, "note": "ONNX Runtime is not importable", "devices": []}
    from harness.devices import devices_report

    return devices_report()


def choice_section(
    requested: str, chain: tuple[str, ...], probes: list[dict[str, Any]], disabled: tuple[str, ...] = ()
) -> tuple[dict[str, Any], str | None, str]:
    by_name = {entry["name"]: entry for entry in probes}

    def probe_fn(name: str) -> ProbeResult:
        entry = dict(by_name[name])
        entry["session_providers"] = tuple(entry["session_providers"])
        return ProbeResult(**entry)

    try:
        choice = choose_provider(requested, chain, probe_fn, disabled)
    except HarnessError as error:
        return {"requested": requested, "chosen": None, "passed_over": []}, None, str(error)
    reason = f"{choice.chosen} is usable"
    if choice.passed_over:
        reason += f" (auto passed over {', '.join(name for name, _ in choice.passed_over)})"
    return choice.to_dict(), choice.chosen, reason


def proof_section(model_path: str, settings: ProviderSettings) -> tuple[dict[str, Any] | None, str | None, str]:
    """A profiled generation on the chosen provider: where did the kernels really run?

    Returns (proof record, error, one-line reason).
    """
    from harness.profiling import prove_provider

    try:
        proof = prove_provider(model_path, settings)
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
            "This Python runs emulated",
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
            "(instead of onnxruntime) and run with --provider qnn (backend_type htp). "
            "The model must be one QNN can run (quantized, static shapes).",
        ),
        _trap(
            "onnxruntime-beside-accelerated", bool(runtime["problems"]),
            "Two ONNX Runtime packages installed together",
            " ".join(runtime["problems"]) or "onnxruntime beside onnxruntime-directml (or -gpu, -qnn) breaks the "
            "accelerated one: both install the same 'onnxruntime' package. Keep exactly one.",
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
