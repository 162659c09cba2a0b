"""The environment facts a run page lists (environment.json flattened to label -> one line): what tells
runs apart, and how each provider's session really ran (threads, prefill logits, huge pages)."""

from __future__ import annotations

from typing import Any, Callable

from harness.providers.settings_text import huge_pages_text, threading_text
from harness.report.runs import environment_summary


def environment_facts(env: dict[str, Any]) -> dict[str, Any]:
    """Label -> value, in page order; values may be None (the page leaves those rows out)."""
    return {**environment_summary(env), **_extras(env)}


def _extras(env: dict[str, Any]) -> dict[str, Any]:
    python = env.get("python") if isinstance(env.get("python"), dict) else {}
    platform = env.get("platform") if isinstance(env.get("platform"), dict) else {}
    return {"python": python.get("version") or platform.get("python_version"),
            "providers requested": ", ".join(env.get("providers_requested") or []),
            **_session_settings(env),
            "timestamp": env.get("timestamp")}


# (environment.json section, row label, its one line): how each provider's session really ran
_SESSION_SETTINGS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    ("threading", "threads", threading_text),
    ("prefill_logits", "prefill logits", lambda value: value["note"] or value["logits"]),
    ("prefill_logits", "attention lengths", lambda value: value["attention_lengths"]),  # absent before 2026-12
    ("huge_pages", "huge pages", huge_pages_text),
)


def _session_settings(env: dict[str, Any]) -> dict[str, str]:
    """``threads (cpu)``: ``intra-op 2 (...), ...`` and the like, per provider that loaded."""
    return {f"{label} ({provider})": text
            for section, label, describe in _SESSION_SETTINGS
            for provider, text in per_provider_text(env, section, describe).items()}


def per_provider_text(env: dict[str, Any], section: str, describe: Callable[[dict[str, Any]], str]) -> dict[str, str]:
    """Provider -> ``describe`` of its entry in ``env[section]``; an entry an older or hand-edited
    stamp cannot fill is left out (the page links the whole stamp; the gate does not compare it)."""
    per_provider = env.get(section)
    found: dict[str, str] = {}
    for provider, value in (per_provider.items() if isinstance(per_provider, dict) else ()):
        try:
            found[provider] = describe(value)
        except (KeyError, TypeError, ValueError):
            continue
    return found
