"""The comparison page: the gate's verdict, a table per case, a ratio plot, checklists side by side.

Rendering only: the pairing and the statistics are harness.report.gate and harness.stats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from harness.report.compare_text import case_heading, ratio_text, verdict_text
from harness.report.gate import NOT_COMPARED, CaseResult, GatedMetric, RunComparison
from harness.report.html import VERDICT_CLASS, bullet_box, esc, generated_stamp, page, render_table
from harness.units import number as fmt_number
from harness.report.plots import new_figure, save_figure
from harness.report.runs import RunData, environment_summary
from harness.stats import ALPHA, BOOTSTRAP_RESAMPLES, MIN_SAMPLES

COMPARISON_VERDICT_CLASS = {"regression": "v-fail", "improvement": "v-pass", "no change": "v-skip",
                            "inconclusive": "v-info"}
RATIO_TICKS = (0.1, 0.2, 0.33, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)

PLOT_COLOURS = {"regression": "#c0392b", "improvement": "#27ae60", "no change": "#7b8794", "inconclusive": "#d68910"}

METHOD_DEFINITIONS = [
    ("samples", "warm, successful requests of one case; a case is identified by test, provider, target, "
                "precision, prompt length, max new tokens, concurrency or arrival rate (fields of each record). "
                "Only cases in both runs are compared, and only runs of the same model (sha256) and ONNX Runtime "
                "version unless --allow-mismatch. Gated per case: TTFT, E2E (lower is better), decode tok/s "
                "(higher is better); " + "; ".join(f"'{t}' is not compared: {why}" for t, why in NOT_COMPARED.items())
                + "."),
    ("ratio", "median of the current run / median of the baseline, with a percentile bootstrap interval "
              f"({BOOTSTRAP_RESAMPLES} resamples of each run, fixed seed: the same runs give the same interval). "
              f"The intervals are simultaneous: each at 1 - {ALPHA}/m for the m metrics tested (Bonferroni), so "
              f"all of them hold together with {1 - ALPHA:.0%} confidence."),
    ("test", "two-sided Mann-Whitney U on the raw samples (exact without ties up to 20 x 20 samples, else the "
             f"tie-corrected normal approximation); p-values Holm-adjusted over every metric tested, alpha {ALPHA}."),
    ("verdict", "with L = 1 + PCT/100 and the interval of the ratio turned so that > 1 means worse: regression when "
                "the whole interval is above L and the adjusted test is significant; improvement when it is wholly "
                "below 1/L and significant; no change when it lies within [1/L, L]; inconclusive otherwise, with "
                "about how many samples per run would settle it (interval width ~ 1/sqrt(n)). "
                f"Fewer than {MIN_SAMPLES} samples in a run: inconclusive, not tested."),
    ("gate", "--fail-on-regression PCT exits 1 on any regression; inconclusive fails only with "
             "--fail-on-inconclusive; a gate that could test no metric is an error (exit 2), never a pass."),
]


@dataclass(frozen=True)
class GateSettings:
    limit_pct: float
    fail_on_inconclusive: bool


def spaced_ticks(low: float, high: float, candidates: tuple[float, ...] = RATIO_TICKS,
                 min_fraction: float = 1 / 14) -> list[float]:
    """Ratio ticks inside [low, high] on a log axis, none closer than ``min_fraction`` of its width.

    x1 is always kept; ticks are taken outward from it, so a wide axis (x0.2..x10) drops the crowded
    x0.9/x1.1 labels that would print on top of each other, and a narrow one keeps them.
    """
    span = np.log(high) - np.log(low)
    inside = [t for t in candidates if low <= t <= high]
    kept = [1.0] if low <= 1.0 <= high else []
    for side in (sorted(t for t in inside if t > 1.0), sorted((t for t in inside if t < 1.0), reverse=True)):
        last = 1.0
        for tick in side:
            if abs(np.log(tick) - np.log(last)) >= min_fraction * span:
                kept.append(tick)
                last = tick
    return sorted(kept)



def comparison_plot(comparison: RunComparison, path: Path) -> bool:
    """Ratio (worse direction) with its interval per tested metric, log scale, limits dotted."""
    tested = [r for r in comparison.results if r.result.worse is not None]
    if not tested:
        return False
    figure = new_figure(comparison_plot_size(len(tested)))
    ax = figure.subplots()
    positions = np.arange(len(tested))
    for position, item in zip(positions, tested):
        r = item.result
        colour = PLOT_COLOURS[r.verdict]
        ax.errorbar(r.worse, position, xerr=[[r.worse - r.worse_low], [r.worse_high - r.worse]], fmt="o",
                    color=colour, ecolor=colour, capsize=3, markersize=5)
    limit = 1 + comparison.limit_pct / 100
    ax.axvline(1.0, color="black", linewidth=1)
    for edge, colour in ((limit, "#c0392b"), (1 / limit, "#27ae60")):
        ax.axvline(edge, color=colour, linestyle=":", linewidth=1.2)
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ax.set_xticks(spaced_ticks(low, high), minor=False)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"x{value:.3g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    ax.set_yticks(positions)
    ax.set_yticklabels([f"{i.metric.label} · {i.key[0]}/{i.case_id}" for i in tested], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(f"times worse than {comparison.baseline} (> 1 = worse); dotted: the limits; "
                  f"bars: simultaneous {1 - ALPHA:.0%} intervals")
    ax.grid(alpha=0.3, axis="x")
    figure.suptitle(f"{comparison.current} against {comparison.baseline}", fontsize=13, fontweight="bold")
    save_figure(figure, path)
    return True


def comparison_plot_size(rows: int) -> tuple[int, int]:
    return (1100, min(max(140 + 24 * rows, 320), 2400))


def render_compare_page(runs: list[RunData], comparisons: list[RunComparison], run_links: list[str],
                        plot_names: list[str | None], gate: GateSettings | None) -> str:
    names = [run.run_id for run in runs]
    body = [
        f"<h1>phi3-harness comparison: {esc(' vs '.join(names))}</h1>",
        f'<p class="sub">each run against the first ({esc(names[0])}{", the baseline" if gate else ""})'
        f" · {esc(generated_stamp())}</p>",
        '<nav><a href="#cases">Cases</a><a href="#checklists">Checklists</a><a href="#runs">Runs</a>'
        '<a href="#definitions">Definitions</a></nav>',
    ]
    for comparison in comparisons:
        body.append(_gate_html(comparison, gate))
    body += ['<h2 id="runs">Runs</h2>', _runs_table(runs, run_links), '<h2 id="cases">Cases compared</h2>']
    for comparison, plot_name in zip(comparisons, plot_names):
        body.append(_comparison_section(comparison, plot_name, len(comparisons) > 1))
    body += ['<h2 id="checklists">Checklist side by side</h2>', checklists_side_by_side(runs),
             '<h2 id="definitions">Definitions: how runs are compared</h2>', _definitions()]
    return page("phi3-harness comparison", "\n".join(body))


def _gate_html(comparison: RunComparison, gate: GateSettings | None) -> str:
    pair = f"{comparison.current} vs {comparison.baseline}"
    flagged = bullet_box("warn", f"{pair}: compared although the runs differ (--allow-mismatch)", comparison.mismatches)
    if gate is None:
        return f'<p>{esc(pair)}: {esc(comparison.summary())} (not gated)</p>' + flagged
    failed = comparison.failed(gate.fail_on_inconclusive)
    what = "inconclusive or regression" if gate.fail_on_inconclusive else "regression"
    text = (f"Regression gate {pair}: {'FAIL' if failed else 'PASS'} at {gate.limit_pct:g} % "
            f"(fails on {what}) · {comparison.summary()}")
    return f'<p><span class="gate {"bad" if failed else "ok"}">{esc(text)}</span></p>' + flagged


def _comparison_section(comparison: RunComparison, plot_name: str | None, heading: bool) -> str:
    parts = [f"<h3>{esc(comparison.current)} against {esc(comparison.baseline)}</h3>" if heading else ""]
    unmatched = [f"only in {comparison.baseline}: {case}" for case in comparison.only_baseline]
    unmatched += [f"only in {comparison.current}: {case}" for case in comparison.only_current]
    parts.append(bullet_box("note", "Cases without a partner (not compared)", unmatched))
    parts.append(_cases_table(comparison))
    why = [f"{r.key[0]} · {r.case_id} · {r.metric.label}: {r.result.reason}" for r in comparison.of("inconclusive")]
    parts.append(bullet_box("note", "Why inconclusive (each verdict's reason is also its tooltip)", why))
    if plot_name:
        width, height = comparison_plot_size(sum(1 for r in comparison.results if r.result.worse is not None))
        parts.append(f'<figure><img src="{esc(plot_name)}" alt="ratios with intervals" width="{width}" '
                     f'height="{height}"><figcaption>{esc(plot_name)}</figcaption></figure>')
    return "".join(parts)


def _cases_table(comparison: RunComparison) -> str:
    """The terminal's shape: a heading row per case (test, case id, samples) over its metrics' rows.

    Six columns fit a 900 px page; the long case id gets a row of its own instead of a column that
    wraps it letter by letter. comparison.csv keeps one flat row per metric.
    """
    if not comparison.results:
        return '<p class="muted">no case in both runs</p>'
    titles = [("metric", ""), (f"median {comparison.baseline}", "num"), (f"median {comparison.current}", "num"),
              ("ratio now/base [simultaneous 95 % interval]", "num"), ("p (Holm)", "num"), ("verdict", "")]
    head = "<tr>" + "".join(f'<th scope="col" class="{css}">{esc(title)}</th>' for title, css in titles) + "</tr>"
    cases: dict[tuple[Any, ...], list[CaseResult]] = {}  # in the comparison's order (dicts keep it)
    for result in comparison.results:
        cases.setdefault(result.key, []).append(result)
    bodies = [f'<tbody><tr class="case"><th colspan="{len(titles)}" scope="rowgroup">{esc(case_heading(rows[0]))}'
              f'</th></tr>{"".join(_metric_row(row) for row in rows)}</tbody>' for rows in cases.values()]
    return f'<div class="tablewrap"><table class="cases"><thead>{head}</thead>{"".join(bodies)}</table></div>'


def _metric_row(item: CaseResult) -> str:
    metric, result = item.metric, item.result
    css = COMPARISON_VERDICT_CLASS.get(result.verdict, "v-skip")
    cells = [
        f"<td>{esc(metric.label)}</td>",
        f'<td class="num">{esc(_median(result.baseline_median, metric))}</td>',
        f'<td class="num">{esc(_median(result.current_median, metric))}</td>',
        f'<td class="num">{"–" if result.ratio is None else esc(ratio_text(result))}</td>',
        f'<td class="num">{"–" if result.p_adjusted is None else f"{result.p_adjusted:.2g}"}</td>',
        f'<td><span class="verdict {css}" title="{esc(result.reason)}">{esc(verdict_text(result))}</span></td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _median(value: float | None, metric: GatedMetric) -> str:
    return "–" if value is None else f"{fmt_number(value * metric.scale)} {metric.unit}"


def _runs_table(runs: list[RunData], links: list[str]) -> str:
    rows = []
    for index, (run, link) in enumerate(zip(runs, links)):
        summary = environment_summary(run.environment)
        rows.append({"#": index, "run": run.run_id, "git commit": summary["git commit"],
                     "onnxruntime": summary["onnxruntime"], "model sha256": summary["model sha256"],
                     "cpu": summary["cpu"], "os": summary["os"], "report": link, "folder": str(run.path)})

    def cell(column: str, value: Any, row: pd.Series) -> tuple[str | None, str]:
        if column == "report":
            return f'<a href="{esc(value)}" title="{esc(row["folder"])}">open</a>', ""
        return None, ""

    frame = pd.DataFrame(rows)
    return render_table(frame, [c for c in frame.columns if c != "folder"], cell=cell)


def checklists_side_by_side(runs: list[RunData]) -> str:
    """One row per (provider, item), one column per run; a provider skipped whole in every run is one row."""
    verdicts = [_by_provider(run.checklist) for run in runs]
    providers = list(dict.fromkeys(p for table in verdicts for p in table))
    if not providers:
        return '<p class="muted">no run has a checklist.json</p>'
    head = "<th>provider</th><th>item</th>" + "".join(f"<th>{esc(run.run_id)}</th>" for run in runs)
    lines = []
    for provider in providers:
        items = list(dict.fromkeys(check for table in verdicts for check in table.get(provider, {})))
        reason = _skipped_whole(provider, verdicts)
        if reason is not None:
            lines.append(f'<tr><td>{esc(provider or "?")}</td><td class="muted">every item</td>'
                         f'<td colspan="{len(runs)}"><span class="verdict v-skip">skip</span> {esc(reason)}</td></tr>')
            continue
        for check in items:
            cells = [f"<td>{esc(provider or '?')}</td>", f"<td>{esc(_title(verdicts, provider, check))}</td>"]
            cells += [_verdict_cell(table.get(provider, {}).get(check)) for table in verdicts]
            lines.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="tablewrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def _by_provider(checklist: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """{provider: {check: verdict}}; checklists written before verdicts named their provider group under "?"."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for item in checklist:
        table.setdefault(str(item.get("provider") or ""), {}).setdefault(str(item.get("check")), item)
    return table


def _skipped_whole(provider: str, verdicts: list[dict[str, dict[str, dict[str, Any]]]]) -> str | None:
    items = [item for table in verdicts for item in table.get(provider, {}).values()]
    reasons = {str(item.get("reason") or "") for item in items}
    if items and all(item.get("verdict") == "skip" for item in items) and len(reasons) == 1:
        return reasons.pop() or "no reason given"
    return None


def _title(verdicts: list[dict[str, dict[str, dict[str, Any]]]], provider: str, check: str) -> str:
    for table in verdicts:
        item = table.get(provider, {}).get(check)
        if item:
            return str(item.get("title") or check)
    return check


def _verdict_cell(item: dict[str, Any] | None) -> str:
    if item is None:
        return '<td class="muted">–</td>'
    css = VERDICT_CLASS.get(str(item.get("verdict")), "v-skip")
    measured, unit = item.get("measured"), item.get("unit") or ""
    number = isinstance(measured, (int, float)) and not isinstance(measured, bool)
    if number and math.isfinite(float(measured)):
        shown = f"{fmt_number(measured)} {unit}".rstrip()
    else:
        shown = "" if measured is None else str(measured)
    return f'<td><span class="verdict {css}">{esc(item.get("verdict"))}</span> {esc(shown)}</td>'


def _definitions() -> str:
    rows = "".join(f"<dt>{esc(term)}</dt><dd>{esc(text)}</dd>" for term, text in METHOD_DEFINITIONS)
    return f'<dl class="defs">{rows}</dl>'
