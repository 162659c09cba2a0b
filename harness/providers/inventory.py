"""The ONNX Runtime inventory: version, pip packages, what is compiled in, how each provider attaches.

One implementation, read by ``doctor`` and by the run's environment.json. It says which package
combination is installed and whether it is coherent:
- every build distribution (onnxruntime, -directml, -gpu, -qnn 1.x, -openvino) installs the same
  ``onnxruntime`` package: two of them side by side overwrite each other;
- onnxruntime-qnn 2.x is different: a plugin (``onnxruntime_qnn``) that *needs* the CPU
  ``onnxruntime>=1.24.2`` beside it; telling its user to uninstall onnxruntime would break it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from harness.errors import HarnessError
from harness.providers.rules import QNN_PLUGIN_MAJOR, QNN_PLUGIN_NEEDS_ORT
from harness.providers.runtime import OrtRuntime, detect_runtime, ort_distributions, parse_version
from harness.providers.spec import SPECS

CPU_DISTRIBUTION = "onnxruntime"
# Distributions that each install the `onnxruntime` package (a build of ORT, not a plugin).
BUILD_DISTRIBUTIONS = {
    "onnxruntime-directml": "DirectML",
    "onnxruntime-gpu": "CUDA",
    "onnxruntime-qnn": "QNN",
    "onnxruntime-openvino": "OpenVINO",
}
_NEEDS = ".".join(str(part) for part in QNN_PLUGIN_NEEDS_ORT)


def _normalised(distributions: Mapping[str, str]) -> dict[str, str]:
    return {name.lower().replace("_", "-"): version for name, version in distributions.items()}


def qnn_plugin_installed(distributions: Mapping[str, str]) -> bool:
    version = parse_version(_normalised(distributions).get("onnxruntime-qnn"))
    return version is not None and version[0] >= QNN_PLUGIN_MAJOR


def distribution_problems(distributions: Mapping[str, str]) -> list[str]:
    """Installed-package combinations known to break a provider, each said with its fix."""
    names = _normalised(distributions)
    plugin = qnn_plugin_installed(distributions)
    builds = sorted(n for n in names if n in BUILD_DISTRIBUTIONS and not (plugin and n == "onnxruntime-qnn"))
    problems = [
        f"onnxruntime is installed beside {name}: both write the same 'onnxruntime' package, so "
        f"{BUILD_DISTRIBUTIONS[name]} silently disappears (or half of it stays): "
        f"pip uninstall -y onnxruntime {name} && pip install {name}"
        for name in builds if CPU_DISTRIBUTION in names
    ]
    if len(builds) > 1:
        problems.append(f"{', '.join(builds)} are installed together and overwrite each other: "
                        "uninstall all of them and install the one you need")
    if plugin:
        problems += _qnn_plugin_problems(names)
    if "onnxruntime-genai" in names and builds:
        problems.append(
            "onnxruntime-genai depends on the CPU onnxruntime and reinstalls it beside "
            f"{builds[0]}: use the matching onnxruntime-genai-* package (e.g. onnxruntime-genai-directml)"
        )
    if CPU_DISTRIBUTION not in names and not builds and not plugin:  # the plugin's own problem says it
        problems.append("no onnxruntime distribution is installed through pip: pip install 'phi3-harness[cpu]'")
    return problems


def _qnn_plugin_problems(names: Mapping[str, str]) -> list[str]:
    plugin = names["onnxruntime-qnn"]
    cpu = parse_version(names.get(CPU_DISTRIBUTION))
    if cpu is None:
        return [f"onnxruntime-qnn {plugin} is a plugin that needs the CPU onnxruntime >= {_NEEDS} beside it, "
                f"and none is installed: pip install \"onnxruntime>={_NEEDS}\""]
    if cpu < QNN_PLUGIN_NEEDS_ORT:
        return [f"onnxruntime-qnn {plugin} needs onnxruntime >= {_NEEDS}, this is {names[CPU_DISTRIBUTION]}: "
                f"pip install -U \"onnxruntime>={_NEEDS}\""]
    return []


def combination(distributions: Mapping[str, str]) -> str:
    """Which ONNX Runtime packages are installed, in words (doctor's "Packages" verdict)."""
    names = _normalised(distributions)
    parts = []
    if CPU_DISTRIBUTION in names:
        parts.append(f"CPU onnxruntime {names[CPU_DISTRIBUTION]}")
    for name, provider in BUILD_DISTRIBUTIONS.items():
        if name in names:
            kind = "plugin" if name == "onnxruntime-qnn" and qnn_plugin_installed(distributions) else "build"
            parts.append(f"{name} {names[name]} ({provider} {kind})")
    state = "coherent" if not distribution_problems(distributions) else "NOT coherent (see the problems)"
    return f"{' + '.join(parts) or 'no ONNX Runtime'}: {state}"


def attachments(runtime: OrtRuntime) -> dict[str, dict[str, Any]]:
    """How each provider would be attached on this ORT with default options, and what is unverified."""
    from harness.providers.session import ProviderSettings, attachment_for

    found: dict[str, dict[str, Any]] = {}
    for name in SPECS:
        try:
            attachment = attachment_for(ProviderSettings(name=name), runtime)
        except HarnessError as error:
            found[name] = {"error": str(error), "unverified": list(SPECS[name].unverified)}
            continue
        found[name] = {"mode": attachment.mode, "options": attachment.options, "notes": list(attachment.notes),
                       "unverified": list(attachment.unverified)}
    return found


def ort_inventory(runtime: OrtRuntime | None = None) -> dict[str, Any]:
    """Everything installed about ONNX Runtime, as plain data (doctor and environment.json)."""
    distributions = dict(runtime.distributions) if runtime else ort_distributions()
    section: dict[str, Any] = {
        "version": None, "location": None, "import_error": None, "distributions": distributions,
        "combination": combination(distributions), "problems": distribution_problems(distributions),
        "compiled_in": [], "available_providers": [], "genai_version": _genai_version(distributions),
        "attachments": {},
    }
    try:
        runtime = runtime or detect_runtime()
    except HarnessError as error:
        section["import_error"] = str(error)
        return section
    section["version"] = runtime.version_text
    section["location"] = str(Path(getattr(runtime.module, "__file__", "") or ".").parent)
    section["compiled_in"] = section["available_providers"] = runtime.compiled_in()
    section["attachments"] = attachments(runtime)
    return section


def unverified_on_hardware(inventory: Mapping[str, Any]) -> list[str]:
    """Every "unverified on hardware" flag of the inventory, once each, in provider order."""
    seen: list[str] = []
    for entry in inventory.get("attachments", {}).values():
        seen += [flag for flag in entry.get("unverified", []) if flag not in seen]
    return seen


def _genai_version(distributions: Mapping[str, str]) -> str | None:
    names = _normalised(distributions)
    return next((names[name] for name in names if name.startswith("onnxruntime-genai")), None)
