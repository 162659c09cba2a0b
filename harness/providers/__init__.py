"""Execution providers: one record per provider (spec.py) and everything that reads the records.

Rooms: spec.py (the ProviderSpec records) + rules.py (their version- and platform-dependent
rules), runtime.py (the installed ONNX Runtime), session.py (sessions), probe.py (is it usable?),
choice.py (named provider / auto), proof.py (reading ORT profiles), devices.py (get_ep_devices),
platform.py (machine and Python), inventory.py (installed packages), doctor.py (the diagnosis),
huge_pages.py (host weights on 2 MiB pages, Linux).
See docs/ARCHITECTURE.md. The names below are the ones the rest of the harness uses.
"""

from harness.providers.attachment import Placement
from harness.providers.choice import Choice, check_chain, choose_provider, require_usable
from harness.providers.probe import ProbeResult, folder_graph, make_probe_fn, probe
from harness.providers.runtime import OrtRuntime, detect_runtime, import_onnxruntime
from harness.providers.session import (
    ProviderSettings,
    create_session,
    huge_pages_in_effect,
    placement_for,
    prefill_logits_in_effect,
    session_options,
    threading_in_effect,
)
from harness.providers.spec import (
    AUTO,
    DEFAULT_CHAIN,
    EXECUTION_PROVIDERS,
    SPECS,
    ProviderSpec,
    execution_provider_name,
    is_accelerator,
    short_name,
    spec_for,
)

__all__ = [
    "AUTO", "DEFAULT_CHAIN", "EXECUTION_PROVIDERS", "SPECS", "Choice", "OrtRuntime", "Placement", "ProbeResult",
    "ProviderSettings", "ProviderSpec", "check_chain", "choose_provider", "create_session", "detect_runtime",
    "execution_provider_name", "folder_graph", "huge_pages_in_effect", "import_onnxruntime", "is_accelerator", "make_probe_fn", "placement_for", "prefill_logits_in_effect",
    "probe",
    "require_usable", "session_options", "short_name", "spec_for", "threading_in_effect",
]
