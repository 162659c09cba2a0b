"""`phi3-harness doctor`: check the install and the providers; say what is wrong in plain words."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness.providers.settings_text import huge_pages_text, threading_text
from harness.providers.spec import DEFAULT_CHAIN

HELP = (
    "Check OS, Python, ONNX Runtime packages and providers (a real session on the model decides), "
    "prove where kernels run, and explain known traps. Exit 0 when the requested provider is usable."
)

_STATUS_WORDS = {"usable": "usable", "failing": "FAILING", "not_installed": "not installed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model folder (default: the embedded tiny Phi-3)")
    parser.add_argument("--provider", default="cpu", help="provider to check: cpu, dml, qnn, cuda or auto (default cpu)")
    parser.add_argument("--config", help="run config (TOML path or configs/ name) for provider options and the auto chain")
    parser.add_argument("--strict", action="store_true", help="prove with CPU fallback disabled (session.disable_cpu_ep_fallback=1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def run(args: argparse.Namespace) -> int:
    # here, not at the top: the CLI imports every command to build its parser
    from harness.measure.proof import prove_provider
    from harness.model.default_model import resolve_model
    from harness.providers.doctor import diagnose

    from harness.config import Thresholds, load_config

    settings_for, chain, disabled, share_min = None, DEFAULT_CHAIN, (), Thresholds().provider_share_min
    if args.config:
        config = load_config(args.config)
        settings_for, chain, disabled = config.provider_settings, config.fallback.chain, config.fallback.disabled
        share_min = config.thresholds.provider_share_min
    if args.strict:
        settings_for = _strict(settings_for)
    source = "--model" if args.model else "embedded tiny Phi-3"
    report = diagnose(resolve_model(args.model), args.provider, settings_for, chain, prove=prove_provider,
                      disabled=disabled, share_min=share_min, model_source=source)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print("\n".join(render(report)))
    if not report["ok"]:
        if args.json:  # the text form already ends on its Result line: say it once
            print(f"phi3-harness doctor: {report['reason']}", file=sys.stderr)
        return 1
    return 0


def _strict(settings_for: Any) -> Any:
    import dataclasses

    from harness.providers.session import ProviderSettings

    def strict_settings(name: str) -> ProviderSettings:
        base = settings_for(name) if settings_for else ProviderSettings(name=name)
        return dataclasses.replace(base, strict=True)

    return strict_settings


def render(report: dict[str, Any]) -> list[str]:
    """The report as text for a terminal."""
    system, runtime, model = report["system"], report["onnxruntime"], report["model"]
    lines = ["phi3-harness doctor", ""]
    python = f"Python {system['python_version']} {system['python_arch']} ({system['python_platform']})"
    lines.append(f"System        {system['os']} {system['os_release']}, CPU {system['cpu_arch']}, {python}")
    if runtime["import_error"]:
        lines.append(f"ONNX Runtime  not importable: {runtime['import_error']}")
    else:
        lines.append(f"ONNX Runtime  {runtime['version']} from {runtime.get('location', '?')}")
    dists = ", ".join(f"{name} {version}" for name, version in runtime["distributions"].items()) or "none"
    lines.append(f"Packages      {dists}")
    lines.append(f"Combination   {runtime['combination']}")
    for problem in runtime["problems"]:
        lines.append(f"  PROBLEM: {problem}")
    lines.append(f"Compiled in   {', '.join(runtime['compiled_in']) or 'nothing'}")
    if model["valid"]:
        lines.append(_wrapped(
            f"Model         {model['path']} ({model['source']}): valid, {model['model_type']}, "
            f"{model['layers']} layers, vocab {model['vocab_size']}, context {model['context_length']}, "
            f"built for {', '.join(model['built_for'])}" + _rope_note(model.get("rope_switch")), "", hang=" " * 14))
    else:
        lines.append(f"Model         {model['path'] or '?'} ({model['source']}): NOT VALID: {model['error']}")
    lines += ["", "Providers (decided by creating a session on the model)"]
    for probe in report["probes"]:
        lines.append(_wrapped(f"{probe['name']:<5} {_STATUS_WORDS[probe['status']]:<14} {probe['reason']}", "  ",
                              hang=" " * 21))
        if probe.get("threading"):
            # under the probe at a small indent: the whole setting fits one 100-column line
            lines.append(_wrapped(f"threads: {threading_text(probe['threading'])}", " " * 8, hang="  "))
        if probe.get("huge_pages", {}).get("requested"):
            lines.append(_wrapped(f"memory: {huge_pages_text(probe['huge_pages'])}", " " * 8, hang="  "))
        if probe.get("prefill_logits"):
            lines.append(_wrapped(f"prefill logits: {probe['prefill_logits']['note']}", " " * 8, hang="  "))
            if probe["prefill_logits"].get("attention_lengths"):
                lines.append(_wrapped(f"attention lengths: {probe['prefill_logits']['attention_lengths']}", " " * 8, hang="  "))
        lines += [_wrapped(f"how: {note}", "        ") for note in probe.get("notes", [])]
    lines += ["", "EP devices (get_ep_devices)"]
    devices = report["ep_devices"]
    if not devices["supported"]:
        lines.append(f"  unknown: {devices['note']}")
    lines += [f"  PROBLEM: {problem}" for problem in devices.get("problems", [])]
    for device in devices["devices"]:
        name = f" - {device['description']}" if device["description"] else ""
        name += f" (DXGI adapter {device['adapter']})" if device.get("adapter") is not None else ""
        lines.append(f"  {device['execution_provider']:<24} {device['device_type']:<4} {device['vendor']}{name}")
    lines += _render_proof(report)
    applying = [trap for trap in report["traps"] if trap["applies"]]
    others = [trap for trap in report["traps"] if not trap["applies"]]
    if applying:
        lines += ["", "Known traps that apply here"]
        lines += [_wrapped(f"! {trap['title']}: {trap['text']}", "  ") for trap in applying]
    if others:
        # titles only: these did not match this machine, so their text would read like a finding
        lines += ["", "Other known traps, checked and not found here (details: doctor --json)"]
        lines += [_wrapped(f"- {trap['title']}", "  ") for trap in others]
    if report.get("unverified_on_hardware"):
        lines += ["", "Unverified on hardware (built from ONNX Runtime's sources; no such device ran it here)"]
        lines += [_wrapped(f"? {flag}", "  ") for flag in report["unverified_on_hardware"]]
    verdict = "OK" if report["ok"] else "NOT USABLE"
    lines += ["", _wrapped(f"Result        {verdict}: {report['reason']}", "", hang=" " * 14)]
    return lines


def _render_proof(report: dict[str, Any]) -> list[str]:
    proof, choice = report["proof"], report["choice"]
    lines: list[str] = []
    if choice["passed_over"]:
        lines += ["", f"auto chose {choice['chosen']}; passed over:"]
        lines += [f"  {item['provider']:<5} {item['reason']}" for item in choice["passed_over"]]
    if report["proof_error"]:
        return lines + ["", "Proof of execution (profiled generation)", f"  failed: {report['proof_error']}"]
    if proof is None:
        return lines
    lines += ["", f"Proof of execution on {report['chosen']} (profiled generation)"]
    lines.append(f"  {'provider':<28} {'nodes':>6} {'node %':>7} {'kernel ms':>10} {'time %':>7}")
    for row in proof["providers"]:
        lines.append(
            f"  {row['provider']:<28} {row['nodes']:>6} {row['node_share'] * 100:>6.1f}% "
            f"{row['kernel_time_us'] / 1000:>10.2f} {row['time_share'] * 100:>6.1f}%"
        )
    lines.append(
        f"  share on {proof['execution_provider']}: {proof['share_on_requested']:.3f}, "
        f"device kind {proof['device_kind']}, strict {'on' if proof['strict'] else 'off'}"
    )
    return lines


def _rope_note(switch: int | None) -> str:
    if switch is None:
        return ""
    return (f"; LongRoPE: rotary caches switch above {switch:,} tokens (a longer prompt is one Run; "
            f"crossing while generating re-feeds the sequence)")


def _wrapped(text: str, indent: str, hang: str = "  ") -> str:
    """One item over as many 100-column lines as it needs, continuation lines indented under it."""
    import textwrap

    return textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent + hang,
                         break_on_hyphens=False, break_long_words=False)
