"""Run one profiled generation and say where its kernels ran (the provider proof).

Reading profiles is harness/providers/proof.py; running the engine to get one lives here, in
measure/, because providers must not depend on targets (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from harness.errors import HarnessError
from harness.providers.devices import device_kind
from harness.providers.proof import check_strict, parse_profile, proof_record
from harness.providers.session import ProviderSettings
from harness.targets.base import Request


def prove_provider(
    model_dir: Path | str | None,
    settings: ProviderSettings,
    request: Request | None = None,
    run_dir: Path | str | None = None,
) -> dict[str, Any]:
    """Run one profiled generation on ``settings`` and say where its kernels ran.

    The ORT profile is written into a private temporary folder, then moved to
    ``run_dir/ort_profile_<provider>.json`` when ``run_dir`` is given, or deleted: it never lands in
    the working directory.
    """
    from harness.targets.engine import Engine  # numpy, tokenizers: only when a proof is run

    if request is None:
        request = Request.chat("Say hello.", max_new_tokens=4)
    scratch = Path(tempfile.mkdtemp(prefix="phi3-harness-profile-"))
    try:
        profiled = dataclasses.replace(settings, profile_prefix=scratch / "ort_profile")
        engine = Engine.load(Path(model_dir) if model_dir is not None else None, profiled)
        try:
            engine.generate(request)
        finally:
            # End profiling even after a failure, so ORT writes into scratch now, not at teardown.
            profile = engine.end_profiling()
            engine.close()
        if not profile:
            raise HarnessError("ONNX Runtime wrote no profile: this ORT build may lack profiling support")
        table = parse_profile(profile)
        _keep_profile(Path(profile), run_dir, settings.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    check_strict(table, settings)
    return proof_record(table, settings, device_kind(settings.name))


def verifier(model_dir: Path | str | None, settings_for: Callable[[str], ProviderSettings]) -> Callable[[str], dict]:
    """``verify`` for ``choose_provider("auto", ...)``: a profiled generation per candidate."""

    def verify(name: str) -> dict[str, Any]:
        return prove_provider(model_dir, settings_for(name))

    return verify


def _keep_profile(profile: Path, run_dir: Path | str | None, name: str) -> None:
    if run_dir is None:
        return
    target_dir = Path(run_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    shutil.move(str(profile), str(target_dir / f"ort_profile_{name}.json"))
