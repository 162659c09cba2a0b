"""The report page's first screen and polish: verdict and what was (not) tested first, the checklist
next, serving summary and goodput under SLOs, readable numbers, a summarised environment, every
run-folder file linked, telemetry lines broken at gaps."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from fixtures_reports import Rendered, fast_in_place, fast_slo_out  # noqa: F401 (fixtures)
from harness.report.html import environment_block
from harness.report.plots import PLOTS, draw_telemetry, new_figure, with_gaps
from harness.report.runs import load_run
from harness.report.tables import build_tables
from report_helpers import SLOW


def test_first_screen_is_verdict_then_what_was_tested_then_checklist(fast_in_place: Rendered) -> None:
    page = fast_in_place.page
    order = [page.index(marker) for marker in ('class="gate', 'class="env tested"', 'id="checklist"',
                                               'id="serving"', 'id="latency"', "Unstable figures")]
    assert order == sorted(order)
    tested = page.split('class="env tested"')[1].split("</dl>")[0]
    for label in ("tested", "target", "model", "hardware"):
        assert f"<dt>{label}</dt>" in tested


def test_numbers_are_for_people(fast_in_place: Rendered, fast_slo_out: Rendered) -> None:
    for page in (fast_in_place.page, fast_slo_out.page):  # the second with a goodput table
        assert not re.search(r"\de-\d\d", page)  # no scientific notation anywhere on the page


def test_goodput_table_and_csv_only_under_an_slo(fast_in_place: Rendered, fast_slo_out: Rendered) -> None:
    assert "No SLO set for this run" in fast_in_place.page
    assert not (fast_in_place.out / "goodput.csv").exists()
    frame = pd.read_csv(fast_slo_out.out / "goodput.csv")
    assert len(frame) > 0 and (frame["good_share"] <= 1).all() and (frame["busy_s"] > 0).all()
    assert (frame["good"] <= frame["total"]).all()
    page = fast_slo_out.page
    assert "ttft ≤ 10,000 ms" in page and 'href="goodput.csv"' in page


def test_environment_is_summarised_and_every_run_file_is_linked(fast_in_place: Rendered) -> None:
    page = fast_in_place.page
    environment = page.split('id="environment"')[1].split('id="definitions"')[0]
    assert environment.count("<dt>") <= 12 and 'href="environment.json"' in environment
    files = page.split('id="files"')[1]
    names = [path.name for path in fast_in_place.run.iterdir()]
    assert ".phi3-harness.lock" in names  # the command's folder lock: not a run file, not linked
    for name in names:
        assert (f'href="{name}"' in files) != name.startswith("."), name


def test_environment_shows_how_each_providers_session_ran_and_skips_what_a_stamp_lacks() -> None:
    threading = {"intra_op_num_threads": 4, "inter_op_num_threads": 0, "intra_op_threads_source": "configured",
                 "allow_spinning": True, "force_spinning_stop": True, "dynamic_block_base": 0,
                 "execution_mode": "sequential"}
    block = environment_block({
        "threading": {"cpu": threading, "dml": {"intra_op_num_threads": 1}},  # dml: a stamp missing its keys
        "prefill_logits": {"cpu": {"logits": "every position", "note": ""}},
        "huge_pages": {"cpu": {"advised_bytes": 0, "collapsed_bytes": 0, "note": "not requested"}},
    })
    assert ("<dt>threads (cpu)</dt><dd>intra-op 4 (configured), inter-op 0, spinning on (stops when a Run "
            "returns), sequential</dd>") in block
    assert "threads (dml)" not in block
    assert "<dt>prefill logits (cpu)</dt><dd>every position</dd>" in block
    assert "<dt>huge pages (cpu)</dt><dd>4 KiB pages: not requested</dd>" in block


def test_telemetry_lines_break_where_samples_stop() -> None:
    seconds = pd.Series([0.0, 0.1, 0.2, 0.3, 5.0, 5.1, 5.2])
    x, y = with_gaps(seconds, seconds * 2)
    assert np.isnan(x[4]) and np.isnan(y[4]) and len(x) == 8
    x, _ = with_gaps(pd.Series([0.0, 0.1, 0.2, 0.3]), pd.Series([1.0, 2, 3, 4]))
    assert not np.isnan(x).any()


def test_each_request_is_one_bar_in_its_workers_lane_and_a_failed_one_is_red() -> None:
    run = load_run(SLOW)
    figure = new_figure(next(spec.size_px for spec in PLOTS if spec.draw is draw_telemetry))
    draw_telemetry(figure, run, build_tables(run))
    lanes = figure.axes[2]
    bars = [(path, colours[min(index, len(colours) - 1)])  # a collection of one colour holds one row
            for collection in lanes.collections
            for colours in [collection.get_facecolor()]
            for index, path in enumerate(collection.get_paths())]
    records = run.records  # every request of cpu-slow falls inside its telemetry time range
    origin = run.telemetry["t_ns"].min()
    assert len(bars) == len(records)
    for (path, colour), row in zip(bars, records.itertuples()):
        (left, bottom), (right, top) = path.vertices.min(axis=0), path.vertices.max(axis=0)
        assert (bottom, top) == pytest.approx((row.worker + 0.1, row.worker + 0.9))
        assert (left, right) == pytest.approx(((row.submit_ns - origin) / 1e9, (row.end_ns - origin) / 1e9))
        failed = tuple(colour) == pytest.approx(to_rgba("#c0392b"))
        assert failed == (not row.ok)
    assert lanes.get_xlim()[1] >= (records["end_ns"].max() - origin) / 1e9  # autoscaled to hold them all


def test_on_narrow_pages_the_checklist_reason_is_the_cell_that_takes_a_line_of_its_own(fast_in_place: Rendered) -> None:
    # The narrow-page CSS puts a checklist row's last cell under the row: that cell must be the reason.
    table = fast_in_place.page.split('<table class="checklist">')[1].split("</table>")[0]
    header = re.findall(r"<th[^>]*>([^<]*)</th>", table.split("</thead>")[0])
    assert header[-1] == "reason"
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
    assert rows and all(row.count("<td") == len(header) for row in rows)
    assert "table.checklist td:last-child { grid-column: 1 / -1;" in fast_in_place.page


def test_quantities_and_ids_never_break_across_lines_and_prose_may(fast_in_place: Rendered) -> None:
    # On a 900 px page the serving summary's "1.90 ms" wrapped a digit at a time, and case ids a hyphen
    # at a time: cells holding a number with its unit, or an id, keep it on one line.
    from harness.report.html import default_cell

    for text in ("1.90 ms", "534 µs", "1.55 s", "2,228", "0.177 GiB", "-3.5e-05 s"):
        assert default_cell("x", text) == (text, "num")
    assert default_cell("case_id", "cpu-engine-fp32-p128-n16-r100") == ("cpu-engine-fp32-p128-n16-r100", "id")
    assert default_cell("reason", "loaded in 0.1 s") == ("loaded in 0.1 s", "text")
    assert default_cell("x", "1.90 ms and more")[1] == "text"
    serving = fast_in_place.page.split('id="serving"')[1].split("</table>")[0]
    assert re.search(r'<td class="num">\d[\d.]* ms</td>', serving)
    assert "td.id { white-space: nowrap; }" in fast_in_place.page and "td.num {" in fast_in_place.page
    latency_head = fast_in_place.page.split('id="latency"')[1].split("</thead>")[0]
    assert '<th rowspan="2">case</th>' in latency_head  # ids: title on the left, as they are
    assert '<th rowspan="2" class="num">prompt (tok)</th>' in latency_head  # numbers: title right, over them
