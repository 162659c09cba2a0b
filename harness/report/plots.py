"""PNG plots of one run. Matplotlib's object API with the Agg canvas: no pyplot, no global state.

Each plot is a ``PlotSpec`` in ``PLOTS`` (the one place plots are registered). A draw function
fills a figure or raises ``NoData`` with the reason the plot is left out; the page shows that reason.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from harness.measure.run_folder import atomic_write
from harness.report.runs import RunData
from harness.report.tables import RunTables

DPI = 100
MIB = 1024 * 1024
# When a (provider, prompt length, concurrency) point is measured by several tests, plot the
# test written for that question.
TEST_PREFERENCE = {"latency": 0, "concurrency": 1}


class NoData(Exception):
    """The run has nothing to draw for this plot; the message says why."""


@dataclass(frozen=True)
class PlotSpec:
    filename: str
    title: str
    size_px: tuple[int, int]
    draw: Callable[[Figure, RunData, RunTables], None]


@dataclass(frozen=True)
class PlotResult:
    spec: PlotSpec
    path: Path | None  # None when left out
    reason: str = ""


def new_figure(size_px: tuple[int, int]) -> Figure:
    figure = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path) -> None:
    # No bbox_inches="tight": the PNG keeps exactly the size the spec promises.
    buffer = io.BytesIO()  # savefig would follow a link planted at ``path``; the rename replaces it
    _fix_layout(figure)
    figure.savefig(buffer, dpi=DPI, format="png")
    atomic_write(path, buffer.getvalue())


def _fix_layout(figure: Figure) -> None:
    """Place the axes once with the figure's constrained layout, then drop the engine.

    With a layout engine, savefig first draws the whole figure with rendering off just to run the
    layout, then draws it again for the pixels. Running the layout alone and saving a figure without
    an engine skips that first pass: the same PNG bytes (checked on every plot of the fixture runs)
    in 16 % less time (19.9 vs 23.8 s over 70 renders).
    """
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)
        figure.set_layout_engine(None)


def legend_outside(ax, **kwargs) -> None:
    """Right of the axes, never over data (constrained layout makes the room)."""
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def with_gaps(seconds: pd.Series, values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A NaN wherever samples stop for more than 3 typical intervals, so the line breaks there
    instead of drawing a straight segment across time nobody measured."""
    x, y = seconds.to_numpy(dtype=float), values.to_numpy(dtype=float)
    if len(x) < 3:
        return x, y
    steps = np.diff(x)
    gaps = np.flatnonzero(steps > 3 * np.median(steps))
    return np.insert(x, gaps + 1, np.nan), np.insert(y, gaps + 1, np.nan)


def render_plots(run: RunData, tables: RunTables, out_dir: Path) -> list[PlotResult]:
    results = []
    for spec in PLOTS:
        figure = new_figure(spec.size_px)
        try:
            spec.draw(figure, run, tables)
        except NoData as reason:
            results.append(PlotResult(spec, None, str(reason)))
            continue
        figure.suptitle(spec.title, fontsize=13, fontweight="bold")
        path = out_dir / spec.filename
        save_figure(figure, path)
        results.append(PlotResult(spec, path))
    return results


def _preferred(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per key: the preferred test, then the row with the most samples."""
    count_column = "n_warm_ok" if "n_warm_ok" in frame.columns else "requests"
    ranked = frame.assign(
        _pref=frame["test"].map(TEST_PREFERENCE).fillna(len(TEST_PREFERENCE)),
        _count=-frame[count_column],
    ).sort_values(keys + ["_pref", "_count"])
    return ranked.drop_duplicates(keys).drop(columns=["_pref", "_count"])


def _ms(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=float) * 1000.0


# Tests whose cases form the provider x prompt length x concurrency matrix.
SWEEP_TESTS = ("latency", "concurrency")


def draw_latency_vs_prompt(figure: Figure, run: RunData, tables: RunTables) -> None:
    frame = tables.latency[tables.latency["concurrency"] == 1]
    frame = frame[frame["n_warm_ok"] > 0]
    if frame.empty:
        raise NoData("no successful warm single-stream (concurrency 1) requests")
    if (frame["test"] == "latency").any():  # the latency cases sweep prompt length; other tests only add noise
        frame = frame[frame["test"] == "latency"]
    frame = _preferred(frame, ["provider", "prompt_length"]).sort_values("prompt_length")
    axes = figure.subplots(1, 2)
    for ax, metric, label in ((axes[0], "ttft", "TTFT"), (axes[1], "e2e", "E2E")):
        for provider, rows in frame.groupby("provider", sort=True):
            p50, p90 = _ms(rows[f"{metric}_p50_s"]), _ms(rows[f"{metric}_p90_s"])
            line = ax.errorbar(
                rows["prompt_length"], p50, yerr=[np.zeros_like(p50), p90 - p50],
                marker="o", capsize=4, label=f"{provider} p50 (bar to p90)",
            )
            if metric == "ttft" and rows["cold_ttft_s"].notna().any():
                ax.scatter(rows["prompt_length"], _ms(rows["cold_ttft_s"]), marker="x", s=60,
                           color=line[0].get_color(), label=f"{provider} cold (first request)")
        ax.set_title(f"{label} vs prompt length (warm, concurrency 1)")
        ax.set_xlabel("prompt length (tokens)")
        ax.set_ylabel(f"{label} (ms)")
        _prompt_axis(ax, frame["prompt_length"])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        legend_outside(ax)


def _prompt_axis(ax, lengths: pd.Series) -> None:
    values = sorted({int(v) for v in lengths.dropna()})
    if len(values) > 1 and values[-1] / max(values[0], 1) >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xticks(values)
    ax.set_xticklabels([str(v) for v in values])
    ax.minorticks_off()


def draw_concurrency(figure: Figure, run: RunData, tables: RunTables) -> None:
    # Open-loop cases (Poisson arrivals) record concurrency 0: they are no closed-loop level.
    frame = tables.concurrency[tables.concurrency["concurrency"] > 0]
    sweep = frame["test"].isin(SWEEP_TESTS)
    if sweep.any():  # the matrix sweep; real_responses/memory requests are no concurrency level
        frame = frame[sweep]
    if frame.empty or frame["concurrency"].nunique() < 2:
        raise NoData("fewer than two closed-loop concurrency levels measured")
    frame = _preferred(frame, ["provider", "prompt_length", "concurrency"]).sort_values("concurrency")
    left, right = figure.subplots(1, 2)
    series = frame.groupby(["provider", "prompt_length"], sort=True)
    for position, ((provider, length), rows) in enumerate(series):
        name, colour = f"{provider} p{int(length)}", f"C{position}"
        left.plot(rows["concurrency"], rows["output_tok_per_s"], marker="o", color=colour, label=f"{name} output tok/s")
        errors = rows[rows["errors"] > 0]
        if not errors.empty:
            left.scatter(errors["concurrency"], errors["output_tok_per_s"], marker="X", s=120, color="#c0392b",
                         zorder=5, label=f"{name} level with errors")
        right.plot(rows["concurrency"], _ms(rows["ttft_p50_s"]), marker="o", color=colour, label=f"{name} TTFT p50")
        right.plot(rows["concurrency"], _ms(rows["e2e_p50_s"]), marker="s", linestyle="--", color=colour,
                   label=f"{name} E2E p50")
    levels = sorted(int(v) for v in frame["concurrency"].unique())
    left.set_title("Throughput vs concurrency (warm requests)")
    left.set_ylabel("output tokens/s (all requests of the level)")
    right.set_title("Latency vs concurrency (warm requests)")
    right.set_ylabel("latency (ms)")
    for ax in (left, right):
        ax.set_xlabel("concurrent requests")
        ax.set_xticks(levels)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        legend_outside(ax)


def draw_itl_cdf(figure: Figure, run: RunData, tables: RunTables) -> None:
    records = run.records[run.records["ok"] & ~run.records["cold"]]
    pooled = {case: np.concatenate([np.asarray(v, dtype=float) for v in group["itl_s"]] or [np.array([])])
              for case, group in records.groupby("case_id", sort=True)}
    pooled = {case: gaps[np.isfinite(gaps) & (gaps > 0)] * 1000.0 for case, gaps in pooled.items()}
    pooled = {case: gaps for case, gaps in pooled.items() if gaps.size}
    if not pooled:
        raise NoData("no successful warm request produced two tokens or more: no inter-token gaps")
    # Many cases make an unreadable legend: keep the eight with the most samples.
    cases = sorted(pooled, key=lambda case: -pooled[case].size)[:8]
    ax = figure.subplots()
    for case in sorted(cases):
        gaps = np.sort(pooled[case])
        share = np.arange(1, gaps.size + 1) / gaps.size
        ax.step(gaps, share, where="post",
                label=f"{case}: n={gaps.size}, p50 {np.median(gaps):.2f} ms, p99 {np.percentile(gaps, 99):.2f} ms")
    everything = np.concatenate([pooled[case] for case in cases])
    scale = "log" if everything.max() / everything.min() > 20 else "linear"
    ax.set_xscale(scale)
    if scale == "log":
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        # Label only the 2s and 5s between decades: every minor label would overlap.
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "25" else ""))
    ax.set_xlabel(f"inter-token latency: gap between consecutive tokens (ms{', log scale' if scale == 'log' else ''})")
    ax.set_ylabel("share of gaps <= x")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    legend_outside(ax)
    ax.set_title("Inter-token latency CDF per case (warm requests, all tests pooled)")


def draw_telemetry(figure: Figure, run: RunData, tables: RunTables) -> None:
    telemetry = run.telemetry
    if telemetry.empty:
        raise NoData("telemetry.csv missing or empty")
    origin = telemetry["t_ns"].min()
    seconds = (telemetry["t_ns"] - origin) / 1e9
    memory, cpu, lanes = figure.subplots(3, 1, sharex=True, height_ratios=[3, 3, 2])
    memory.plot(*with_gaps(seconds, telemetry["rss_bytes"] / MIB), label="process RSS")
    memory.plot(*with_gaps(seconds, telemetry["peak_rss_bytes"] / MIB), linestyle="--", label="process peak RSS (OS)")
    if telemetry["gpu_mem_bytes"].notna().any():
        memory.plot(*with_gaps(seconds, telemetry["gpu_mem_bytes"] / MIB), label="GPU process memory")
    memory.set_ylabel("memory (MiB)")
    memory.set_ylim(bottom=0)
    memory.set_title("Process memory")
    cpu.plot(*with_gaps(seconds, telemetry["cpu_percent"]), color="#d35400", label="process CPU\n(100 % = all cores)")
    if telemetry["gpu_util_percent"].notna().any():
        cpu.plot(*with_gaps(seconds, telemetry["gpu_util_percent"]), color="#27ae60", label="GPU utilisation")
    cpu.set_ylabel("utilisation (%)")
    cpu.set_ylim(0, 105)
    cpu.set_title("CPU / GPU utilisation")
    _request_lanes(lanes, run.records, origin, telemetry["t_ns"].max())
    lanes.set_xlabel("time since first telemetry sample (s)")
    for ax in (memory, cpu):
        ax.grid(alpha=0.3)
        legend_outside(ax)


def _request_lanes(ax, records: pd.DataFrame, origin: int, last: int) -> None:
    """Each request as a bar from submit to end, one lane per worker, coloured by test."""
    ax.set_title("Requests (bar = submit to end, one lane per worker)")
    ax.set_yticks([])
    inside = records[(records["submit_ns"] <= last) & (records["end_ns"] >= origin)]
    if inside.empty:
        ax.text(0.5, 0.5, "no request falls inside the telemetry time range (different clocks?)",
                ha="center", va="center", transform=ax.transAxes)
        return
    colours = {test: f"C{position}" for position, test in enumerate(dict.fromkeys(inside["test"]))}
    ax.add_collection(_request_bars(inside, origin, colours))
    ax.autoscale_view()
    handles = [Patch(color=colour, label=f"{test} requests") for test, colour in colours.items()]
    if (~inside["ok"]).any():
        handles.append(Patch(color="#c0392b", label="failed request"))
    ax.set_ylabel("worker")
    ax.set_ylim(0, int(inside["worker"].fillna(0).max()) + 1)
    legend_outside(ax, handles=handles)


def _request_bars(inside: pd.DataFrame, origin: int, colours: dict[str, str]) -> PolyCollection:
    """Every request's bar in one collection, in record order (later bars over earlier, as drawn
    one by one). One ``broken_barh`` per request re-autoscaled the axes each time: 0.44 s of the
    telemetry plot of a 440-request ``run --sweep``, now 0.05 s, the same pixels."""
    start = (inside["submit_ns"] - origin).to_numpy(dtype=float) / 1e9
    end = start + np.maximum((inside["end_ns"] - inside["submit_ns"]).to_numpy(dtype=float) / 1e9, 1e-4)
    bottom = inside["worker"].fillna(0).to_numpy(dtype=float).astype(int) + 0.1
    top = bottom + 0.8
    corners = np.stack([np.column_stack(pair) for pair in
                        ((start, bottom), (start, top), (end, top), (end, bottom))], axis=1)
    ok = inside["ok"].astype(bool).to_numpy()
    colour = [colours[test] if good else "#c0392b" for test, good in zip(inside["test"], ok)]
    return PolyCollection(corners, color=colour)


def draw_provider_share(figure: Figure, run: RunData, tables: RunTables) -> None:
    frame = tables.providers
    if frame.empty:
        raise NoData("provider_proof.json missing (no profiled generation in this run)")
    ax = figure.subplots()
    labels, seen = [], set()
    providers = list(dict.fromkeys(frame["provider"]))
    colours = {provider: f"C{position}" for position, provider in enumerate(providers)}
    bars = []
    for requested, rows in frame.groupby("requested", sort=False):
        for column, what in (("node_share", "kernel nodes"), ("time_share", "kernel time")):
            labels.append(f"requested {requested}: {what}")
            y = len(labels) - 1
            left = 0.0
            for row in rows.itertuples():
                share = float(getattr(row, column) or 0.0) * 100
                ax.barh(y, share, left=left, color=colours[row.provider],
                        label=row.provider if row.provider not in seen else None)
                seen.add(row.provider)
                if share >= 6:
                    ax.text(left + share / 2, y, f"{share:.0f}%", ha="center", va="center", color="white", fontweight="bold")
                left += share
            bars.append(y)
    ax.set_yticks(bars)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the profiled generation (%)")
    ax.set_title("Where the kernels ran: share per execution provider (ORT profiling)")
    threshold = _provider_threshold(run)
    if threshold is not None:
        ax.axvline(threshold * 100, color="black", linestyle=":", linewidth=1.5,
                   label=f"provider-active threshold ({threshold:.0%} of nodes)")
    figure.legend(fontsize=9, loc="outside lower center", ncol=len(providers) + 1)


def _provider_threshold(run: RunData) -> float | None:
    for item in run.checklist:
        if item.get("check") == "provider_active" and isinstance(item.get("threshold"), (int, float)):
            return float(item["threshold"])
    return None


def draw_rate_sweep(figure: Figure, run: RunData, tables: RunTables) -> None:
    from harness.report.overview import slo_limits
    from harness.report.sweep import draw_sweep, sweep_table

    table = sweep_table(run.records, slo_limits(run.environment))
    if table.empty:
        raise NoData("no rate sweep in this run (phi3-harness run --sweep)")
    draw_sweep(figure, table)


PLOTS = [
    PlotSpec("latency_vs_prompt.png", "TTFT and E2E vs prompt length", (1200, 480), draw_latency_vs_prompt),
    PlotSpec("concurrency.png", "Throughput and latency vs concurrency", (1200, 480), draw_concurrency),
    PlotSpec("itl_cdf.png", "Inter-token latency distribution", (1000, 480), draw_itl_cdf),
    PlotSpec("telemetry.png", "Memory and CPU over time", (1200, 720), draw_telemetry),
    PlotSpec("sweep.png", "Rate sweep: TTFT and goodput vs offered and achieved rate", (1400, 520), draw_rate_sweep),
    PlotSpec("provider_share.png", "Kernel share per execution provider", (1000, 320), draw_provider_share),
]
