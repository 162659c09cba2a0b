"""A report reuses a run's own plots only while they are current (harness/report/plot_reuse.py).

Where reuse_plots says None, the report draws the plots (test_report_compare.py's cpu-slow has no
report of its own and is drawn).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_reports import Rendered, fast_in_place  # noqa: F401 (fixture)
from report_helpers import copy_run

import harness.report.plots as plots
from harness.report import build_comparison, plot_reuse
from harness.report.plot_reuse import MANIFEST, reuse_plots
from harness.report.runs import RUN_FILES, load_run


@pytest.fixture
def drawn(monkeypatch) -> list[str]:
    """The run folders whose plots were drawn (not copied) while the test ran."""
    calls: list[str] = []
    real = plots.render_plots

    def counting(run, tables, out_dir):
        calls.append(run.path.name)
        return real(run, tables, out_dir)

    monkeypatch.setattr(plots, "render_plots", counting)
    return calls


def _pngs(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.glob("*.png")}


def _fast_copy(fast_in_place: Rendered, tmp_path: Path) -> Path:
    """A copy of the rendered cpu-fast run folder (its report included) that a test may damage."""
    return copy_run(fast_in_place.run, tmp_path, "cpu-fast")


def test_a_comparison_copies_the_plots_of_runs_whose_reports_are_current(fast_in_place, tmp_path, drawn):
    manifest = json.loads((fast_in_place.run / MANIFEST).read_text())
    assert set(manifest["plots"]) == {spec.filename for spec in plots.PLOTS}
    again = _fast_copy(fast_in_place, tmp_path)  # the same bytes in another folder: current too
    build_comparison([fast_in_place.run, again], tmp_path / "cmp")
    assert drawn == []
    for index in (0, 1):
        copied = tmp_path / "cmp" / "runs" / f"{index}-cpu-fast"
        assert _pngs(copied) == _pngs(fast_in_place.run) and _pngs(copied)
        page = (copied / "index.html").read_text()
        for result in manifest["plots"].values():  # a plot left out keeps its reason on the copied page
            assert "left_out" not in result or result["left_out"] in page


def test_a_run_whose_results_changed_since_its_report_is_not_reused(fast_in_place, tmp_path):
    run = _fast_copy(fast_in_place, tmp_path)
    lines = (run / "results.jsonl").read_text().splitlines(keepends=True)
    (run / "results.jsonl").write_text("".join(lines[:-1]))  # one record fewer
    assert reuse_plots(load_run(run), tmp_path) is None


@pytest.mark.parametrize("damage", ["bytes", "link", "missing", "manifest", "schema"])
def test_a_damaged_plot_or_manifest_is_not_reused(fast_in_place, tmp_path, damage):
    run = _fast_copy(fast_in_place, tmp_path)
    (tmp_path / "out-before").mkdir()
    assert reuse_plots(load_run(run), tmp_path / "out-before") is not None  # undamaged: reused
    png = run / "concurrency.png"
    if damage == "bytes":
        png.write_bytes(png.read_bytes()[:-10])
    elif damage == "link":
        (tmp_path / "elsewhere.png").write_bytes(png.read_bytes())
        png.unlink()
        png.symlink_to(tmp_path / "elsewhere.png")  # the same bytes, but not a file of the run folder
    elif damage == "missing":
        png.unlink()
    elif damage == "manifest":
        (run / MANIFEST).write_text("{not json")
    else:
        manifest = json.loads((run / MANIFEST).read_text())
        (run / MANIFEST).write_text(json.dumps({**manifest, "schema_version": 99}))
    (tmp_path / "out").mkdir()
    assert reuse_plots(load_run(run), tmp_path / "out") is None
    assert not list((tmp_path / "out").iterdir())  # nothing copied before the check failed


def test_another_harness_source_is_not_reused(fast_in_place, tmp_path, monkeypatch):
    monkeypatch.setattr(plot_reuse, "_renderer_digest", lambda: "another commit")
    assert reuse_plots(load_run(fast_in_place.run), tmp_path) is None


def test_the_fingerprint_changes_with_every_results_file(fast_in_place):
    run = load_run(fast_in_place.run)
    first = plot_reuse.fingerprint(run)
    assert plot_reuse.fingerprint(load_run(fast_in_place.run)) == first  # same bytes, same fingerprint
    assert set(run.inputs_sha256) == set(RUN_FILES)  # the fixture run has every results file
    for name in run.inputs_sha256:
        changed = load_run(fast_in_place.run)
        changed.inputs_sha256[name] = "0" * 64
        assert plot_reuse.fingerprint(changed) != first, name
