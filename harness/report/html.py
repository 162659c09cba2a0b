"""HTML for report pages: one self-contained file, inline CSS, images beside it, no network assets.

Every string that can come from a run goes through ``esc`` (html.escape with quotes); the only
markup not escaped is markup this module writes itself.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import pandas as pd

from harness import __version__
from harness.report.checklist_table import gate_banner
from harness.report.environment_facts import environment_facts
from harness.report.overview import serving_summary_table, slo_limits, tested_facts
from harness.report.plots import PlotResult
from harness.report.runs import RunData, environment_summary
from harness.report.style import CSS
from harness.report.sweep import saturation_rate
from harness.report.tables import COLUMN_TITLES, RunTables, proof_summary
from harness.units import duration, is_missing, milliseconds, number

VERDICT_CLASS = {"pass": "v-pass", "fail": "v-fail", "skip": "v-skip", "info": "v-info",
                 "pass (partial)": "v-partial", "marginal": "v-marginal", "inconclusive": "v-inconclusive"}

METRIC_DEFINITIONS = [
    ("TTFT", "time to first token: from submitting the request to the first generated token."),
    ("E2E", "end-to-end latency: from submitting the request to the last generated token."),
    ("ITL", "inter-token latency: each gap between two consecutive generated tokens (a distribution, "
            "not one number per request; vLLM's meaning)."),
    ("TPOT", "time per output token after the first: (E2E - TTFT) / (output tokens - 1). "
             "AIPerf calls this \"ITL\"; llmperf's \"ITL\" is E2E / output tokens."),
    ("prefill tok/s", "prompt tokens / TTFT."),
    ("decode tok/s", "1 / TPOT, for one request."),
    ("output tok/s", "all output tokens of a concurrency level / the level's wall window "
                     "(first submit to last end): what the clients saw together."),
    ("cold / warm", "cold is the first request after the model was loaded, reported apart; every other "
                    "request is warm. Percentiles come from the raw samples of warm requests "
                    "(linear interpolation); runs are combined by joining samples, never by averaging percentiles."),
    ("unstable", "a measurement with fewer than 5 samples, or a single-stream one whose standard deviation is "
                 "above 10 % of its mean (likely background load). Concurrent and open-loop cases spread by "
                 "queueing, which is expected, so spread alone is not flagged there."),
]


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def is_duration_column(column: str) -> bool:
    """Columns holding seconds (``*_s`` but not rates like ``*_tok_s`` or ``*_per_s``)."""
    return column.endswith("_s") and "tok" not in column and "per_s" not in column and column != "window_s"


def column_title(column: str) -> str:
    title = COLUMN_TITLES.get(column, column.replace("_", " "))
    if is_duration_column(column):
        title = title.replace("(s)", "(ms)") if "(s)" in title else f"{title} (ms)"
    return title


def render_table(
    frame: pd.DataFrame,
    columns: list[str] | None = None,
    cell: Callable[[str, Any, pd.Series], tuple[str, str]] | None = None,
    empty: str = "no data in this run",
    titles: dict[str, str] | None = None,
    table_class: str = "",
) -> str:
    """A DataFrame as an HTML table. ``cell(column, value, row)`` may return (html, css class)."""
    columns = columns or list(frame.columns)
    if frame.empty:
        return f'<p class="muted">{esc(empty)}</p>'
    titles = titles or {}
    body, classes = [], [set() for _ in columns]  # each column's cell classes: its title sits like them
    for _, row in frame.iterrows():
        cells = []
        for index, column in enumerate(columns):
            content, css = (cell(column, row[column], row) if cell else (None, ""))
            if content is None:
                content, css = default_cell(column, row[column])
            classes[index].add(css)
            cells.append(f'<td class="{css}">{content}</td>' if css else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    numeric = [found == {"num"} for found in classes]
    head = header_rows([titles.get(column) or column_title(column) for column in columns], numeric)
    table = f'<table class="{table_class}">' if table_class else "<table>"
    return f'<div class="tablewrap">{table}<thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div>'


def header_rows(titles: list[str], numeric: list[bool] | None = None) -> str:
    """One header row, or two when titles look like "group|sub" (adjacent equal groups share a cell).

    ``numeric[i]``: column i holds only numbers, so its title is right-aligned over them.
    """
    align = [' class="num"' if flag else "" for flag in numeric or [False] * len(titles)]
    if not any("|" in title for title in titles):
        return "<tr>" + "".join(f"<th{css}>{esc(title)}</th>" for title, css in zip(titles, align)) + "</tr>"
    top, bottom = [], []
    position = 0
    while position < len(titles):
        group, _, sub = titles[position].partition("|")
        if not sub:
            top.append(f'<th rowspan="2"{align[position]}>{esc(group)}</th>')
            position += 1
            continue
        span = 0
        while position + span < len(titles) and titles[position + span].partition("|")[0] == group \
                and titles[position + span].partition("|")[2]:
            bottom.append(f'<th class="sub">{esc(titles[position + span].partition("|")[2])}</th>')
            span += 1
        top.append(f'<th colspan="{span}" class="group">{esc(group)}</th>')
        position += span
    return f"<tr>{''.join(top)}</tr><tr>{''.join(bottom)}</tr>"


_QUANTITY = re.compile(r"[-+]?\d[\d,]*(\.\d+)?(e[-+]?\d+)? ?(µs|ms|s|%|GiB|MiB|tok/s)?")


def default_cell(column: str, value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("yes" if value else "no"), ""
    if column == "concurrency" and value == 0:  # how records mark open-loop (Poisson arrival) requests
        return "open", "num"  # in a column of numbers: aligned with them
    if isinstance(value, (int, float)) and not is_missing(value):
        if column.endswith("_share"):
            return esc(f"{float(value):.0%}"), "num"
        return esc(milliseconds(value) if is_duration_column(column) else number(value)), "num"
    if is_missing(value):
        return "–", "num"
    text = str(value)
    if _QUANTITY.fullmatch(text):  # a number already written with its unit ("1.90 ms", "2,228"): kept whole
        return esc(text), "num"
    # Identifiers (case ids, provider names) must not wrap mid-word; prose may.
    return esc(text), ("id" if " " not in text and len(text) <= 48 else "text")


def checklist_cell(column: str, value: Any, row: pd.Series) -> tuple[str | None, str]:
    if column == "verdict":
        css = VERDICT_CLASS.get(str(value), "v-skip")
        return f'<span class="verdict {css}">{esc(value)}</span>', ""
    if column == "measured":
        return esc(_with_unit(value, row.get("unit"))), "num" if isinstance(value, (int, float)) else ""
    if column == "threshold":
        text = _with_unit(value, row.get("unit"))
        comparison = row.get("comparison") or ""
        return esc(f"{comparison} {text}".strip()), ""
    if column == "gating":
        return ("yes" if value is not False else "no (info)"), ""
    return None, ""


def _with_unit(value: Any, unit: Any) -> str:
    if is_missing(value):
        return "–"
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if numeric and unit == "s":
        return duration(value)  # 2.64 ms, not 0.00264 s
    text = number(value) if numeric else str(value)
    return f"{text} {unit}" if unit and numeric else text


def page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{CSS}</style></head><body><main>{body}</main></body></html>\n"
    )


def bullet_box(kind: str, heading: str, items: Iterable[str]) -> str:
    items = list(items)
    if not items:
        return ""
    lines = "".join(f"<li>{esc(item)}</li>" for item in items)
    return f'<div class="box {kind}"><strong>{esc(heading)}</strong><ul>{lines}</ul></div>'


def environment_block(environment: dict[str, Any], linked: bool = True) -> str:
    """The facts that tell runs apart; the whole stamp is one link away (it runs to ~70 rows)."""
    if not environment:
        return '<p class="muted">environment.json missing: the run is not stamped with its environment.</p>'
    facts = environment_facts(environment)
    rows = "".join(f"<dt>{esc(key)}</dt><dd>{esc(value)}</dd>" for key, value in facts.items() if value)
    where = '<a href="environment.json">environment.json</a>' if linked else "environment.json in the run folder"
    return (f'<dl class="env">{rows}</dl><p class="muted">Everything recorded (packages, '
            f'config, sampler cost): {where}</p>')


def definitions_block() -> str:
    rows = "".join(f"<dt>{esc(term)}</dt><dd>{esc(text)}</dd>" for term, text in METRIC_DEFINITIONS)
    return f'<dl class="defs">{rows}</dl>'


def generated_stamp() -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"generated {now} by phi3-harness {__version__}"


def interrupted_banner(environment: dict[str, Any]) -> str:
    """An interrupted run has no gate verdict: what it holds was measured before the signal."""
    stopped = environment.get("interrupted")
    if not isinstance(stopped, dict):
        return ""
    how = ("a second signal stopped it at once, before it judged" if stopped.get("forced")
           else "items not reached are skipped as interrupted")
    return (f'<span class="gate bad">Run interrupted by {esc(stopped.get("signal", "a signal"))}: no gate verdict; '
            f"{how}; figures cover only what was measured before</span>")


def summary_cards(run: RunData, tables: RunTables) -> str:
    records = run.records
    counts = tables.checklist["verdict"].value_counts() if not tables.checklist.empty else {}
    kinds = ("pass", "pass (partial)", "marginal", "inconclusive", "fail", "skip", "info")
    cards = [(counts.get(kind, 0), f"checks {kind}") for kind in kinds if kind in ("pass", "fail", "skip", "info")
             or counts.get(kind, 0)]
    cards += [
        (len(records), "requests recorded"),
        (int((~records["ok"]).sum()) if len(records) else 0, "requests failed"),
        (records["case_id"].nunique() if len(records) else 0, "cases"),
    ]
    html_cards = "".join(f'<div class="card"><div class="n">{esc(n)}</div><div class="l">{esc(label)}</div></div>'
                         for n, label in cards)
    return f'<div class="cards">{html_cards}</div>'


def plots_section(plots: list[PlotResult]) -> str:
    parts = []
    for result in plots:
        if result.path is None:
            continue
        parts.append(
            f'<figure><img src="{esc(result.path.name)}" alt="{esc(result.spec.title)}" '
            f'width="{result.spec.size_px[0]}" height="{result.spec.size_px[1]}">'
            f"<figcaption>{esc(result.spec.title)} — {esc(result.path.name)}</figcaption></figure>"
        )
    left_out = [f"{result.spec.title}: {result.reason}" for result in plots if result.path is None]
    return "".join(parts) + bullet_box("note", "Plots left out", left_out)


def tested_block(run: RunData, tables: RunTables) -> str:
    rows = "".join(f"<dt>{esc(label)}</dt><dd>{esc(text)}</dd>" for label, text in tested_facts(run, tables.checklist))
    return f'<dl class="env tested">{rows}</dl>'


def files_block(names: list[str]) -> str:
    """Every file beside the page (in the run folder: results, telemetry, JSON, CSV, PNG), linked."""
    return "<p>" + " · ".join(f'<a href="{esc(name)}">{esc(name)}</a>' for name in names) + "</p>"


def goodput_section(run: RunData, goodput: pd.DataFrame) -> str:
    limits = slo_limits(run.environment)
    if not limits:
        return ('<p class="muted">No SLO set for this run: goodput needs one, e.g. '
                '<code>phi3-harness run --slo ttft=300ms,tpot=50ms,e2el=2s</code>.</p>')
    slo = ", ".join(f"{name} ≤ {milliseconds(value)} ms" for name, value in limits.items())
    return (f'<p class="muted">A request is good when it meets every SLO ({esc(slo)}); goodput = good '
            'requests per busy second (≥ 1 request in flight). Warm requests; failed ones count as not good. '
            '<a href="goodput.csv">goodput.csv</a></p>'
            + render_table(goodput, titles={"good_share": "good share", "goodput_per_s": "goodput (req/s)",
                                            "busy_s": "busy time (ms)"}))


def sweep_section(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    knees = [f"{p} ({t}): " + (f"saturates at ≈ {number(k)} req/s offered" if (k := saturation_rate(f)) is not None
                               else "kept up with every offered rate")
             for (p, t), f in table.groupby(["provider", "target"], sort=False)]
    return ('<h2 id="sweep">Rate sweep (open loop, Poisson arrivals)</h2>'
            f'<p class="muted">{esc("; ".join(knees))}. Saturated: achieved below 80 % of offered from that rate on. '
            'Plot: sweep.png below; <a href="sweep.csv">sweep.csv</a>.</p>' + render_table(table))


def render_run_page(run: RunData, tables: RunTables, plots: list[PlotResult], files: list[str],
                    goodput: pd.DataFrame | None = None, sweep: pd.DataFrame | None = None) -> str:
    """``files``: the names beside index.html, to link (the run folder's own when written into it)."""
    env = run.environment
    commit = environment_summary(env)["git commit"] or "unknown"
    stamp = f"{esc(run.path)} · git {esc(commit)} · {esc(generated_stamp())}"
    limits = slo_limits(env)
    body = [
        f"<h1>phi3-harness report: {esc(run.run_id)}</h1>",
        f'<p class="sub">{stamp}</p>',
        '<nav><a href="#checklist">Checklist</a><a href="#serving">Serving</a><a href="#latency">Latency</a>'
        '<a href="#concurrency">Concurrency</a><a href="#plots">Plots</a><a href="#provider">Provider</a>'
        '<a href="#outputs">Outputs</a><a href="#environment">Environment</a><a href="#files">Files</a></nav>',
        interrupted_banner(env) or gate_banner(run),
        tested_block(run, tables),
        bullet_box("warn", "Files missing from this results folder (their sections are empty)", run.missing),
        bullet_box("warn", "Problems reading the results", run.notes),
        '<h2 id="checklist">Checklist</h2>',
        render_table(tables.checklist_folded, ["title", "verdict", "measured", "threshold", "case", "gating", "reason"],
                     checklist_cell, empty="checklist.json missing: no verdicts", table_class="checklist"),
        summary_cards(run, tables),
        '<h2 id="serving">Serving summary per target and provider</h2>',
        '<p class="muted">Busy time: while ≥ 1 request was in flight. Percentiles of warm requests.</p>',
        render_table(serving_summary_table(run.records, limits), empty="no request recorded"),
        '<h3 id="goodput">Goodput per case</h3>',
        goodput_section(run, goodput if goodput is not None else pd.DataFrame()),
        '<h2 id="latency">Latency per case</h2>',
        '<p class="muted">Warm successful requests; times in milliseconds; cold TTFT is the first request after load.</p>',
        render_table(tables.latency),
        bullet_box("warn", "Unstable figures in this table and the plots below (fewer than 5 samples or CV above "
                   "10 %: treat them with care)", tables.unstable),
        '<h2 id="concurrency">Throughput and latency per concurrency level</h2>',
        '<p class="muted">Warm requests; throughput over each case\'s wall window (first submit to last end).</p>',
        render_table(tables.concurrency),
        sweep_section(sweep if sweep is not None else pd.DataFrame()),
        '<h2 id="plots">Plots</h2>',
        plots_section(plots),
        '<h2 id="provider">Provider proof (where the kernels ran)</h2>',
        bullet_box("note", "Profiled generation", proof_summary(run)),
        render_table(tables.providers, empty="provider_proof.json missing: no profiled generation in this run"),
        '<h3>pytest-benchmark (seconds per round shown in ms)</h3>',
        render_table(tables.benchmark, empty="benchmark.json missing or empty"),
        '<h2 id="failures">Failed requests</h2>',
        render_table(tables.failures, empty="no request failed"),
        '<h2 id="outputs">Sample outputs (first successful request of each case)</h2>',
        render_table(tables.outputs),
        '<h2 id="environment">Environment</h2>',
        environment_block(env, linked="environment.json" in files),
        '<h2 id="definitions">Metric definitions</h2>',
        definitions_block(),
        '<h2 id="files">Files in this run folder</h2>',
        files_block(files),
    ]
    return page(f"phi3-harness report: {run.run_id}", "\n".join(body))
