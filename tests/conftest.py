"""Fixtures of the harness's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_model import BuildFn

from harness.model.tiny.build import build_tiny_model


@pytest.fixture(scope="session")
def tiny_builds(tmp_path_factory: pytest.TempPathFactory) -> BuildFn:
    """``tiny_builds(precision, layout)`` -> a folder built once per session in a temp dir."""
    built: dict[tuple[str, str], Path] = {}

    def get(precision: str = "fp32", layout: str = "cpu") -> Path:
        if (precision, layout) not in built:
            base = tmp_path_factory.mktemp(f"tiny-{precision}-{layout}")
            built[(precision, layout)] = build_tiny_model(base / "model", precision=precision, layout=layout)
        return built[(precision, layout)]

    return get
