"""The checklist for a terminal in at most 100 columns, verdicts coloured when a person is watching.

One row per item: item, verdict, measured, threshold, then the case when it fits. The reason (and a
case too long for the row) goes on an indented line under the row, wrapped at 100 columns, for every
item that did not plainly pass: a pass's reason only repeats its row. The full reasons are in
checklist.csv and the report.
"""

from __future__ import annotations

import textwrap
from typing import Sequence

from harness.measure.results import Verdict
from harness.report.checklist_table import verdict_label
from harness.report.terminal import WIDTH, paint
from harness.units import duration, number

# column caps: item titles are up to 36 characters, verdicts up to "PASS (partial)" (14); a longer cell
# makes its row overflow into the next column rather than push every row past 100 columns
_CAPS = (36, 14, 20, 18)


def _numeric(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _quantity(value: object, unit: str) -> str:
    """A number with its unit; seconds in the unit that reads best (10.1 ms, not 0.0101 s)."""
    if unit == "s":
        return duration(value)
    return f"{number(value)} {unit}".rstrip()


def _measured(v: Verdict) -> str:
    if v.measured is None:
        return "-"
    text = _quantity(v.measured, v.unit) if _numeric(v.measured) else str(v.measured)
    return text  # the judge's confidence interval is in the reason (and the report)


def _threshold(v: Verdict) -> str:
    if v.threshold is None:
        return "-"
    text = _quantity(v.threshold, v.unit) if _numeric(v.threshold) else str(v.threshold)
    return f"{v.comparison} {text}".strip()


def checklist_lines(verdicts: Sequence[Verdict], colour: bool = False) -> list[str]:
    """The table: a header, a rule, and per verdict its row plus, when needed, its detail line."""
    rows = [(v.title, verdict_label(v), _measured(v), _threshold(v)) for v in verdicts]
    header = ("item", "verdict", "measured", "threshold")
    widths = [min(cap, max(len(r[i]) for r in [header, *rows])) for i, cap in enumerate(_CAPS)]
    lines = [_row(header, widths) + "  case", _row(tuple("-" * w for w in widths), widths) + "  ----"]
    for v, cells in zip(verdicts, rows):
        row, moved = _row(cells, widths), ""
        if len(row) > WIDTH:  # a long verdict label ("INCONCLUSIVE (non-gating)"): the threshold goes below
            row, moved = _row(cells[:3], widths[:3]), f"threshold {cells[3]}; "
        case = v.case or "-"
        in_row = len(row) + 2 + len(case) <= WIDTH
        lines.append(_paint_verdict(row + ("  " + case if in_row else ""), cells[1], widths[0], colour))
        # a pass's reason only repeats its row (the report has it); anything else says why
        why = v.reason if v.verdict != "pass" else ""
        detail = moved + ("" if in_row else case) + (": " if why and not in_row else "") + why
        if detail.strip(": "):
            lines.extend(textwrap.wrap(detail, WIDTH, initial_indent="    ", subsequent_indent="      ",
                                       break_long_words=False, break_on_hyphens=False))
    return [line.rstrip() for line in lines]


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths))


def _paint_verdict(line: str, label: str, item_width: int, colour: bool) -> str:
    """Colour only the verdict cell, so the line's width (and its columns) stay what they were."""
    if not colour:
        return line
    start = item_width + 2
    return line[:start] + paint(label, label, True) + line[start + len(label):]
