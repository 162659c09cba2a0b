"""Several runs side by side, ratios against the first, and the regression gate.

A metric is keyed by (metric, test, case): only cases present in both runs are compared. Each
metric says whether lower or higher is better; "worse by PCT" is measured in that direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.stats import MIN_SAMPLES
from harness.report.html import VERDICT_CLASS, esc, fmt_number, generated_stamp, page, render_table
from harness.report.plots import new_figure, save_figure
from harness.report.runs import RunData, environment_summary
from harness.report.tables import RunTables


@dataclass(frozen=True)
class MetricSpec:
    column: str  # column of the latency or concurrency table
    label: str
    unit: str  # unit shown; durations are stored in s and shown in ms
    better: str  # "lower" | "higher"
    gated: bool  # checked by --fail-on-regression


LATENCY_METRICS = [
    MetricSpec("ttft_p50_s", "TTFT p50", "ms", "lower", True),
    MetricSpec("ttft_p90_s", "TTFT p90", "ms", "lower", False),
    MetricSpec("e2e_p50_s", "E2E p50", "ms", "lower", True),
    MetricSpec("e2e_p90_s", "E2E p90", "ms", "lower", False),
    MetricSpec("tpot_p50_s", "TPOT p50", "ms", "lower", False),
    MetricSpec("decode_tok_s_p50", "decode tok/s p50", "tok/s", "higher", True),
    MetricSpec("prefill_tok_s_p50", "prefill tok/s p50", "tok/s", "higher", False),
    MetricSpec("cold_ttft_s", "cold TTFT", "ms", "lower", False),
]
CONCURRENCY_METRICS = [
    MetricSpec("output_tok_per_s", "output tok/s (level)", "tok/s", "higher", True),
    MetricSpec("requests_per_s", "requests/s (level)", "req/s", "higher", False),
]
PEAK_RSS = MetricSpec("peak_rss_bytes", "peak RSS", "MiB", "lower", False)


@dataclass(frozen=True)
class Regression:
    metric: str
    test: str
    case: str
    unit: str
    better: str
    baseline: float
    current: float
    worse_pct: float
    limit_pct: float

    def message(self) -> str:
        return (
            f"regression: {self.metric} ({self.better} is better) in {self.test}/{self.case}: "
            f"baseline {fmt_number(self.baseline)} {self.unit}, now {fmt_number(self.current)} {self.unit}, "
            f"{self.worse_pct:.1f} % worse (limit {self.limit_pct:g} %)"
        )


def run_metrics(run: RunData, tables: RunTables) -> pd.DataFrame:
    """Long table: one row per (metric, test, case) with the value in the unit shown.

    A metric gates only where its case has at least MIN_SAMPLES warm requests: a p50 of one or two
    requests moves with every hiccup of a shared machine and would make the gate cry wolf.
    """
    rows = []
    for specs, frame, keep, count in (
        (LATENCY_METRICS, tables.latency, lambda row: row["n_warm_ok"] > 0, "n_warm_ok"),
        (CONCURRENCY_METRICS, tables.concurrency, lambda row: row["concurrency"] != 1, "requests"),
    ):
        labels = _case_labels(frame)
        for (_, row), label in zip(frame.iterrows(), labels):
            if not keep(row):
                continue
            enough = row[count] >= MIN_SAMPLES
            for spec in specs:
                value = row[spec.column]
                if value is None or pd.isna(value):
                    continue
                shown = float(value) * 1000.0 if spec.unit == "ms" else float(value)
                rows.append(_metric_row(spec, row["test"], label, shown, gated=spec.gated and enough))
    if not run.telemetry.empty and run.telemetry["peak_rss_bytes"].notna().any():
        rows.append(_metric_row(PEAK_RSS, "run", "all", float(run.telemetry["peak_rss_bytes"].max()) / 2**20))
    return pd.DataFrame(rows, columns=["metric", "test", "case", "unit", "better", "gated", "value"])


def _case_labels(frame: pd.DataFrame) -> list[str]:
    """The case id, made unique with prompt length and concurrency where one id covers several groups."""
    if frame.empty:
        return []
    repeated = frame.duplicated(["test", "case_id"], keep=False)
    return [
        f"{row.case_id} (p{int(row.prompt_length)}, c{int(row.concurrency)})" if again else str(row.case_id)
        for row, again in zip(frame.itertuples(), repeated)
    ]


def _metric_row(spec: MetricSpec, test: str, case: str, value: float, gated: bool | None = None) -> dict:
    return {"metric": spec.label, "test": test, "case": case, "unit": spec.unit,
            "better": spec.better, "gated": spec.gated if gated is None else gated, "value": value}


def worse_pct(baseline: float, current: float, better: str) -> float:
    """How much worse ``current`` is than ``baseline`` in percent (negative = better)."""
    if not baseline or math.isnan(baseline) or math.isnan(current):
        return float("nan")
    change = (current - baseline) / abs(baseline) * 100.0
    return change if better == "lower" else -change


def comparison_table(metrics: list[pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Wide table: the value in each run, and for runs after the first the ratio and % worse."""
    keys = ["metric", "test", "case", "unit", "better"]
    wide = None
    for index, frame in enumerate(metrics):
        part = frame.rename(columns={"value": f"value_{index}", "gated": f"gated_{index}"})
        wide = part if wide is None else wide.merge(part, on=keys, how="outer")
    if wide is None or wide.empty:
        return pd.DataFrame(columns=keys + ["gated"])
    # gated only where every run gates it (a case with too few samples in one run does not)
    gate_columns = [f"gated_{index}" for index in range(len(metrics))]
    wide["gated"] = wide[gate_columns].fillna(False).astype(bool).all(axis=1)
    wide = wide.drop(columns=gate_columns)
    for index in range(1, len(names)):
        wide[f"ratio_{index}"] = wide[f"value_{index}"] / wide["value_0"]
        wide[f"worse_pct_{index}"] = [
            worse_pct(base, current, better)
            for base, current, better in zip(wide["value_0"], wide[f"value_{index}"], wide["better"])
        ]
    order = {spec.label: position for position, spec in enumerate(LATENCY_METRICS + CONCURRENCY_METRICS + [PEAK_RSS])}
    wide = wide.assign(_order=wide["metric"].map(order)).sort_values(["_order", "test", "case"], kind="stable")
    return wide.drop(columns="_order").reset_index(drop=True)


def gated_rows(frame: pd.DataFrame) -> pd.DataFrame:
    # astype(bool): an empty object column would otherwise be read as a list of column labels.
    if "gated" not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame["gated"].astype(bool)]


def find_regressions(baseline: pd.DataFrame, current: pd.DataFrame, limit_pct: float) -> list[Regression]:
    """Gated metrics of ``current`` worse than ``baseline`` by more than ``limit_pct`` percent.

    Raises HarnessError when the two runs share no gated metric: a gate that compared nothing
    must not pass.
    """
    keys = ["metric", "test", "case", "unit", "better"]
    merged = gated_rows(baseline).merge(gated_rows(current), on=keys, suffixes=("_base", "_now"))
    merged = merged.dropna(subset=["value_base", "value_now"])
    if merged.empty:
        raise HarnessError(
            "no gated metric is in both runs (no case in common): compare runs of the same config and cases"
        )
    found = []
    for row in merged.itertuples():
        worse = worse_pct(row.value_base, row.value_now, row.better)
        if not math.isnan(worse) and worse > limit_pct:
            found.append(Regression(row.metric, row.test, row.case, row.unit, row.better,
                                    row.value_base, row.value_now, worse, limit_pct))
    return found


def comparison_plot(table: pd.DataFrame, names: list[str], limit_pct: float, path: Path) -> bool:
    """Horizontal bars: % worse than the first run for each gated metric (positive = worse)."""
    gated = gated_rows(table)
    if gated.empty or len(names) < 2:
        return False
    labels = [f"{row.metric} · {row.test}/{row.case}" for row in gated.itertuples()]
    size = comparison_plot_size(len(labels), len(names) - 1)
    figure = new_figure(size)
    ax = figure.subplots()
    height = 0.8 / (len(names) - 1)
    positions = np.arange(len(labels))
    for index in range(1, len(names)):
        values = gated[f"worse_pct_{index}"].fillna(0).to_numpy()
        colours = ["#c0392b" if v > limit_pct else "#27ae60" if v < -limit_pct else "#7b8794" for v in values]
        offset = positions - 0.4 + height * (index - 0.5)
        ax.barh(offset, values, height=height * 0.9, color=colours, edgecolor=f"C{index - 1}", linewidth=1.5,
                label=f"{names[index]} vs {names[0]}")
    ax.axvline(0, color="black", linewidth=1)
    for edge in (limit_pct, -limit_pct):
        ax.axvline(edge, color="#c0392b" if edge > 0 else "#27ae60", linestyle=":", linewidth=1.2)
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(f"% worse than {names[0]} (positive = worse, in each metric's own direction; dotted = ±{limit_pct:g} %)")
    ax.grid(alpha=0.3, axis="x")
    figure.legend(fontsize=9, loc="outside lower center", ncol=min(4, len(names) - 1))
    figure.suptitle("Gated metrics against the first run", fontsize=13, fontweight="bold")
    save_figure(figure, path)
    return True


def comparison_plot_size(rows: int, runs_after_first: int) -> tuple[int, int]:
    height = 160 + 30 * rows * max(1, runs_after_first)
    return (1100, min(max(height, 320), 2400))


def render_compare_page(
    runs: list[RunData],
    tables: list[RunTables],
    table: pd.DataFrame,
    run_links: list[str],
    plot_name: str | None,
    regressions: list[Regression] | None,
    limit_pct: float,
    baseline_given: bool,
) -> str:
    names = [run.run_id for run in runs]
    body = [
        f"<h1>phi3-harness comparison: {esc(' vs '.join(names))}</h1>",
        f'<p class="sub">ratios against the first run ({esc(names[0])}{", the baseline" if baseline_given else ""})'
        f" · {esc(generated_stamp())}</p>",
        _gate_html(regressions, limit_pct),
        "<h2>Runs</h2>",
        _runs_table(runs, run_links),
        "<h2>Metrics side by side</h2>",
        f'<p class="muted">Cells coloured where a run is more than {limit_pct:g} % worse (red) or better (green) '
        f"than the first run, in the metric's own direction. Only the gated metrics are checked by "
        f"--fail-on-regression.</p>",
        render_table(table, _comparison_columns(len(names)), _comparison_cell(limit_pct), empty="no metric to compare",
                     titles=comparison_titles(names)),
    ]
    if plot_name:
        width, height = comparison_plot_size(len(gated_rows(table)), len(names) - 1)
        body.append(f'<figure><img src="{esc(plot_name)}" alt="gated metrics against the first run" '
                    f'width="{width}" height="{height}"><figcaption>{esc(plot_name)}</figcaption></figure>')
    body += ["<h2>Checklist side by side</h2>", _checklists(runs, tables)]
    return page("phi3-harness comparison", "\n".join(body))


def _gate_html(regressions: list[Regression] | None, limit_pct: float) -> str:
    if regressions is None:
        return ""
    if not regressions:
        return f'<span class="gate ok">Regression gate: PASS (no gated metric worse by more than {limit_pct:g} %)</span>'
    items = "".join(f"<li>{esc(r.message())}</li>" for r in regressions)
    return (f'<span class="gate bad">Regression gate: FAIL ({len(regressions)} metric(s) worse by more than '
            f'{limit_pct:g} %)</span><div class="box warn"><ul>{items}</ul></div>')


def _runs_table(runs: list[RunData], links: list[str]) -> str:
    rows = []
    for index, (run, link) in enumerate(zip(runs, links)):
        summary = environment_summary(run.environment)
        rows.append({
            "#": index,
            "run": run.run_id,
            "git commit": summary["git commit"],
            "onnxruntime": summary["onnxruntime"],
            "providers": ", ".join(sorted(set(run.records["provider"].dropna()))) if len(run.records) else "",
            "cpu": summary["cpu"],
            "os": summary["os"],
            "model": summary["model"],
            "folder": str(run.path),
            "report": link,
        })
    frame = pd.DataFrame(rows)

    def cell(column, value, row):
        if column == "report":
            return f'<a href="{esc(value)}">open</a>', ""
        return None, ""

    return render_table(frame, cell=cell)


def _comparison_columns(count: int) -> list[str]:
    columns = ["metric", "test", "case", "unit", "better", "gated", "value_0"]
    for index in range(1, count):
        columns += [f"value_{index}", f"ratio_{index}", f"worse_pct_{index}"]
    return columns


def _comparison_cell(limit_pct: float):
    def cell(column: str, value, row):
        if column.startswith(("ratio_", "worse_pct_")):
            index = column.rsplit("_", 1)[1]
            worse = row.get(f"worse_pct_{index}")
            css = "num"
            if worse is not None and not pd.isna(worse):
                css += " worse" if worse > limit_pct else " better" if worse < -limit_pct else ""
            if value is None or pd.isna(value):
                return "–", css
            text = f"{value:.3f}×" if column.startswith("ratio_") else f"{value:+.1f} %"
            return esc(text), css
        if column == "gated":
            return ("yes" if value else "no"), ""
        if column.startswith("value_") and value is not None and not pd.isna(value):
            return esc(fmt_number(float(value))), "num"
        return None, ""

    return cell


def comparison_titles(names: list[str]) -> dict[str, str]:
    titles = {"value_0": f"{names[0]}"}
    for index in range(1, len(names)):
        titles[f"value_{index}"] = names[index]
        titles[f"ratio_{index}"] = f"ratio {names[index]} / {names[0]}"
        titles[f"worse_pct_{index}"] = f"% worse than {names[0]}"
    return titles


def _checklists(runs: list[RunData], tables: list[RunTables]) -> str:
    order: dict[str, str] = {}
    for table in tables:
        for row in table.checklist.itertuples():
            order.setdefault(str(row.check), str(row.title))
    if not order:
        return '<p class="muted">no run has a checklist.json</p>'
    head = "<th>item</th>" + "".join(f"<th>{esc(run.run_id)}</th>" for run in runs)
    lines = []
    for check, title in order.items():
        cells = [f"<td>{esc(title)}</td>"]
        for table in tables:
            match = table.checklist[table.checklist["check"] == check]
            if match.empty:
                cells.append('<td class="muted">–</td>')
                continue
            row = match.iloc[0]
            css = VERDICT_CLASS.get(str(row["verdict"]), "v-skip")
            measured = row["measured"]
            shown = fmt_number(measured) if isinstance(measured, (int, float)) else ("" if measured is None else measured)
            unit = row["unit"] if isinstance(measured, (int, float)) and row["unit"] else ""
            cells.append(f'<td><span class="verdict {css}">{esc(row["verdict"])}</span> {esc(shown)} {esc(unit)}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'

