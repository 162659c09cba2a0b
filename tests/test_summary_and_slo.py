"""Serving summary, SLOs and goodput against hand-computed values."""


import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.judge.goodput import good_requests, goodput
from harness.judge.slo import parse_slo
from harness.report.summary import busy_seconds, goodput_by_case, summarize_run
from harness.report.terminal import WIDTH, summary_lines

import numpy as np


def record(submit_ms, e2e_ms, ttft_ms, tpot_ms, tokens=4, ok=True, cold=False, case="cpu-p16-c1",
           target="engine", provider="cpu", itl_ms=(), error_kind=None):
    return {
        "case_id": case, "target": target, "provider": provider, "cold": cold, "ok": ok,
        "submit_ns": int(submit_ms * 1e6), "end_ns": int((submit_ms + e2e_ms) * 1e6),
        "ttft_s": None if ttft_ms is None else ttft_ms / 1e3, "tpot_s": None if tpot_ms is None else tpot_ms / 1e3,
        "e2e_s": e2e_ms / 1e3, "itl_s": [x / 1e3 for x in itl_ms], "completion_tokens": tokens,
        "error_kind": error_kind,
    }


def test_busy_time_is_the_union_of_in_flight_intervals():
    # [0,10] and [5,20] overlap -> 20 ms; [30,40] alone -> 10 ms; total 30 ms
    submits = np.array([0, 5, 30]) * 1_000_000
    ends = np.array([10, 20, 40]) * 1_000_000
    assert busy_seconds(submits, ends) == pytest.approx(0.030)
    assert busy_seconds(np.array([], dtype=np.int64), np.array([], dtype=np.int64)) == 0.0


def test_parse_slo_reads_units_and_names():
    assert parse_slo("ttft=300ms, tpot=50ms,e2el=2s") == {"ttft": 0.3, "tpot": 0.05, "e2el": 2.0}
    assert parse_slo("ttft=250us") == {"ttft": pytest.approx(0.00025)}
    assert parse_slo("e2el=1.5") == {"e2el": 1.5}


@pytest.mark.parametrize("text", ["", "ttft", "itl=3ms", "ttft=-1ms", "ttft=0", "ttft=nanms", "ttft=infs", "ttft=3h"])
def test_parse_slo_rejects_bad_input_with_one_line(text):
    with pytest.raises(HarnessError) as error:
        parse_slo(text)
    assert "\n" not in str(error.value)


def test_a_request_is_good_only_when_ok_and_every_objective_is_met():
    frame = pd.DataFrame([
        record(0, 100, 20, 10),             # good
        record(0, 100, 40, 10),             # ttft too slow
        record(0, 100, 20, 30),             # tpot too slow
        record(0, 100, 20, None, tokens=1),  # one token: no TPOT, meets it (as vLLM)
        record(0, 100, None, None, ok=False),  # failed
        record(0, 100, None, None, tokens=0),  # no first token: misses ttft
    ])
    good = good_requests(frame, {"ttft": 0.03, "tpot": 0.02})
    assert list(good) == [True, False, False, True, False, False]
    result = goodput(frame, {"ttft": 0.03, "tpot": 0.02}, duration_s=2.0)
    assert (result.good, result.total, result.share, result.per_s) == (2, 6, 2 / 6, 1.0)


def test_summary_per_target_and_provider_with_hand_computed_figures():
    frame = pd.DataFrame([
        record(0, 50, 30, None, tokens=1, cold=True),
        record(100, 10, 2, 2, tokens=5, itl_ms=(2, 2, 2, 2)),
        record(105, 10, 4, 2, tokens=5, itl_ms=(1, 3, 2, 2)),
        record(200, 20, 5, 5, ok=False, tokens=0, error_kind="timeout"),
        record(0, 10, 1, 1, target="http", provider="remote"),
    ])
    cpu, remote = summarize_run(frame, {"ttft": 0.003})
    assert (cpu.target, cpu.provider, cpu.ok, cpu.failed) == ("engine", "cpu", 3, 1)
    # busy: [0,50] + [100,115] + [200,220] = 85 ms
    assert cpu.busy_s == pytest.approx(0.085)
    assert cpu.request_rate == pytest.approx(3 / 0.085)
    assert cpu.output_token_rate == pytest.approx(11 / 0.085)
    assert cpu.cold_ttft_s == pytest.approx(0.030)
    assert cpu.metrics["TTFT"].n == 2 and cpu.metrics["TTFT"].mean == pytest.approx(0.003)
    assert cpu.metrics["ITL"].n == 8 and cpu.metrics["ITL"].p50 == pytest.approx(0.002)
    assert cpu.error_kinds == {"timeout": 1}
    assert (cpu.goodput.good, cpu.goodput.total) == (1, 3)  # warm only: one ttft <= 3 ms, one too slow, one failed
    assert remote.provider == "remote" and remote.ok == 1


def test_goodput_by_case_counts_warm_requests_per_case():
    frame = pd.DataFrame([record(0, 10, 1, 1, case="a"), record(20, 10, 9, 1, case="a"), record(0, 10, 1, 1, case="b")])
    table = goodput_by_case(frame, {"ttft": 0.005}).set_index("case_id")
    assert table.loc["a", "good"] == 1 and table.loc["a", "total"] == 2 and table.loc["b", "share"] == 1.0


def test_terminal_summary_fits_100_columns():
    frame = pd.DataFrame([record(i * 10, 9, 1, 1, error_kind=None) for i in range(5)]
                         + [record(60, 5, None, None, ok=False, error_kind=f"kind_{i}" * 4) for i in range(12)])
    limits = {"ttft": 0.3, "tpot": 0.05, "e2el": 2.0}
    text = "\n".join(line for summary in summarize_run(frame, limits) for line in summary_lines(summary, limits))
    assert all(len(line) <= WIDTH for line in text.splitlines())
    labelled = [line for line in text.splitlines() if ":" in line and not line.startswith("=")]
    assert all(line.split(":", 1)[1].startswith(" ") for line in labelled), "a label runs into its value"
    assert "Goodput:" in text and "ttft<=300 ms" in text and "TTFT" in text and "req/s" in text
    assert "nan" not in text.lower()
