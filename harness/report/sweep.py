"""The rate sweep (suites/test_sweep.py) as a table and a plot: per offered rate, the achieved rate,
TTFT p50/p99 and goodput, and where the deployment saturates.

Saturation: the first offered rate whose achieved rate falls below ``SATURATED_SHARE`` of it (the
queue grows faster than it drains). The plot also marks the highest achieved rate.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

SATURATED_SHARE = 0.8


def sweep_table(records: pd.DataFrame, limits: Mapping[str, float] | None) -> pd.DataFrame:
    """One row per provider/target and offered rate; empty when the run had no sweep."""
    if records.empty or "arrival_rate" not in records:
        return pd.DataFrame()
    sweep = records[records["test"] == "sweep"]
    rows = []
    for (provider, target, rate), frame in sweep.groupby(["provider", "target", "arrival_rate"], sort=True):
        window = (frame["end_ns"].max() - frame["submit_ns"].min()) / 1e9
        ok = frame[frame["ok"].astype(bool)]
        row = {"provider": provider, "target": target, "offered_per_s": float(rate), "requests": len(frame),
               "achieved_per_s": len(ok) / window if window > 0 else np.nan,
               "ttft_p50_s": ok["ttft_s"].median(), "ttft_p99_s": ok["ttft_s"].quantile(0.99)}
        if limits:
            from harness.judge.goodput import good_requests

            good = int(good_requests(frame, limits).sum())
            row["good_share"] = good / len(frame)
            row["goodput_per_s"] = good / window if window > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def saturation_rate(table: pd.DataFrame) -> float | None:
    """The lowest offered rate from which on the deployment never kept up, or None within the sweep.

    "From which on": one low load that looks behind (a few Poisson arrivals can bunch up) is noise,
    not saturation; saturation lasts as the offered rate grows."""
    ordered = table.sort_values("offered_per_s")
    behind = (ordered["achieved_per_s"] < SATURATED_SHARE * ordered["offered_per_s"]).to_numpy()
    if not len(behind) or not behind[-1]:
        return None
    first = len(behind) - int(np.argmin(behind[::-1])) if not behind.all() else 0
    return float(ordered["offered_per_s"].iloc[first])


def draw_sweep(figure, table: pd.DataFrame) -> None:
    """TTFT p50/p99 vs offered and vs achieved rate; achieved rate and goodput vs offered."""
    by_offered, by_achieved, rates = figure.subplots(1, 3)
    for index, ((provider, target), frame) in enumerate(table.groupby(["provider", "target"], sort=False)):
        colour, label = f"C{index}", f"{provider} ({target})"
        # lines in offered order; against the achieved rate (not monotonic past saturation) markers only
        for ax, x, p50, p99 in ((by_offered, frame["offered_per_s"], "o-", "s--"),
                                (by_achieved, frame["achieved_per_s"], "o", "s")):
            ax.plot(x, frame["ttft_p50_s"] * 1000, p50, color=colour, label=f"{label} TTFT p50")
            ax.plot(x, frame["ttft_p99_s"] * 1000, p99, color=colour, label=f"{label} TTFT p99")
        rates.plot(frame["offered_per_s"], frame["achieved_per_s"], "o-", color=colour, label=f"{label} achieved")
        if "goodput_per_s" in frame:
            rates.plot(frame["offered_per_s"], frame["goodput_per_s"], "^:", color=colour, label=f"{label} goodput")
        knee = saturation_rate(frame)
        if knee is not None:
            for ax in (by_offered, rates):
                ax.axvline(knee, color=colour, linestyle=":", alpha=0.7)
            # left of the line, inside the axes, whatever side of the plot the knee falls on
            rates.annotate(f"saturates ≈ {knee:.3g} req/s", (knee, 0), xytext=(-4, 4), textcoords="offset points",
                           ha="right", fontsize=8, color=colour)
    top = float(np.nanmax(table[["offered_per_s", "achieved_per_s"]].to_numpy()))
    rates.plot([0, top], [0, top], color="#999", linewidth=1, label="achieved = offered")
    by_offered.set(xlabel="offered rate (req/s)", ylabel="TTFT (ms)", title="TTFT vs offered rate")
    by_achieved.set(xlabel="achieved rate (req/s)", ylabel="TTFT (ms)", title="TTFT vs achieved rate")
    rates.set(xlabel="offered rate (req/s)", ylabel="req/s", title="Achieved rate and goodput")
    for ax in (by_offered, by_achieved, rates):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    # one legend below the panels: beside each would squeeze three panels into a third of the width
    handles, labels = by_offered.get_legend_handles_labels()
    more, more_labels = rates.get_legend_handles_labels()
    figure.legend(handles + more, labels + more_labels, fontsize=8, loc="outside lower center", ncol=4)
