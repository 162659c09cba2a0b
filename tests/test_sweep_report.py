"""The rate sweep's table, saturation point and plot, from records as the sweep suite writes them."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.commands.matrix_flags import SWEEP_LOADS
from harness.config import load_config
from harness.errors import HarnessError
from harness.report.plots import new_figure
from harness.report.sweep import draw_sweep, saturation_rate, sweep_table


def _records(rate: float, achieved: float, n: int = 8, ttft_s: float = 0.01) -> list[dict]:
    gap_ns = int(1e9 / achieved)
    return [dict(test="sweep", provider="cpu", target="engine", arrival_rate=rate, ok=True, ttft_s=ttft_s,
                 e2e_s=0.05, tpot_s=0.001, completion_tokens=16, submit_ns=i * gap_ns, end_ns=(i + 1) * gap_ns)
            for i in range(n)]


def _frame() -> pd.DataFrame:
    rows = _records(10, 10) + _records(20, 20) + _records(40, 25, ttft_s=0.2) + _records(80, 26, ttft_s=0.5)
    return pd.DataFrame(rows + [dict(rows[0], test="latency", arrival_rate=None)])


def test_table_has_one_row_per_offered_rate_with_achieved_rate_and_goodput() -> None:
    table = sweep_table(_frame(), {"ttft": 0.1})
    assert list(table["offered_per_s"]) == [10, 20, 40, 80]
    assert table["achieved_per_s"].round(1).tolist() == [10.0, 20.0, 25.0, 26.0]
    assert table["good_share"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert "good_share" not in sweep_table(_frame(), None)


def test_saturation_is_where_the_deployment_stops_keeping_up_for_good() -> None:
    table = sweep_table(_frame(), None)
    assert saturation_rate(table) == 40
    noisy_start = table.assign(achieved_per_s=[5, 20, 25, 26])  # one bunched-up low load is not saturation
    assert saturation_rate(noisy_start) == 40
    assert saturation_rate(table.assign(achieved_per_s=[10, 20, 40, 80])) is None


def test_sweep_plot_draws_three_panels() -> None:
    figure = new_figure((1400, 520))
    draw_sweep(figure, sweep_table(_frame(), {"ttft": 0.1}))
    assert len(figure.axes) == 3 and figure.legends


def test_sweep_loads_are_validated() -> None:
    assert load_config("quick", {"matrix.sweep": ",".join(map(str, SWEEP_LOADS))}).matrix.sweep == SWEEP_LOADS
    with pytest.raises(HarnessError, match="matrix.sweep"):
        load_config("quick", {"matrix.sweep": "0.5,-1"})
