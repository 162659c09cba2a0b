"""The load warns when the measuring HTTP client itself uses most of a core."""

from __future__ import annotations

from types import SimpleNamespace

from harness.measure.load import client_core_share, client_load_notes


def _records(cpu_s: float, count: int) -> list:
    return [SimpleNamespace(details={"client_cpu_s": cpu_s, "client_post_cpu_s": 0.0}) for _ in range(count)]


def test_client_using_most_of_a_core_is_warned_about() -> None:
    assert abs(client_core_share(_records(0.1, 9), wall_s=1.0) - 0.9) < 1e-9
    (note,) = client_load_notes(_records(0.1, 9), wall_s=1.0)
    assert "90% of one core" in note


def test_a_light_client_or_a_target_without_client_figures_gives_no_note() -> None:
    assert client_load_notes(_records(0.01, 9), wall_s=1.0) == []
    assert client_load_notes([SimpleNamespace(details={})], wall_s=1.0) == []
