"""The report pages' one stylesheet, inlined into every page (harness/report/html.py): no network assets.

Narrow pages (900 px) are part of the design: numbers and ids never wrap, titles do, and a table
wider than the page scrolls inside its own frame.
"""

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0;
       color: #1f2933; background: #f5f7fa; font-size: 15px; line-height: 1.45; }
main { max-width: 1400px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #d9e2ec; }
h3 { font-size: 16px; margin: 20px 0 8px; }
.sub { color: #52606d; margin: 0 0 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.card { background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; padding: 10px 16px; min-width: 130px; }
.card .n { font-size: 24px; font-weight: 700; }
.card .l { color: #52606d; font-size: 13px; }
.gate { font-size: 18px; font-weight: 700; padding: 10px 16px; border-radius: 8px; display: inline-block; }
.gate.ok { background: #d3f4de; color: #14532d; border: 1px solid #86d9a3; }
.gate.bad { background: #fde2e1; color: #7f1d1d; border: 1px solid #f5a3a0; }
.box { border-radius: 8px; padding: 10px 16px; margin: 12px 0; border: 1px solid; }
.box.warn { background: #fff7e0; border-color: #f0c36d; }
.box.note { background: #eef4fb; border-color: #a9c6e8; }
.box ul { margin: 4px 0; padding-left: 20px; }
.tablewrap { overflow-x: auto; background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 5px 8px; border-bottom: 1px solid #e4e7eb; text-align: left; vertical-align: top; }
th { background: #e9eef4; font-weight: 600; }  /* titles wrap at their spaces: ids and numbers get the width */
th.group { text-align: center; border-left: 2px solid #fff; border-right: 2px solid #fff; }
th.sub { text-align: right; font-weight: 500; color: #3e4c59; }
td.id { white-space: nowrap; }  /* an id (no spaces, <= 48 characters) never breaks, not even at its hyphens */
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num { text-align: right; }
table.cases td:first-child, table.cases .verdict { white-space: nowrap; }
table.cases tr.case th { background: #f3f6f9; text-align: left; white-space: normal; overflow-wrap: anywhere; }
tr:hover td { background: #f8fafc; }
.verdict { font-weight: 700; text-transform: uppercase; font-size: 12px; letter-spacing: 0.04em;
           border-radius: 4px; padding: 2px 8px; display: inline-block; }
.v-pass { background: #d3f4de; color: #14532d; }
.v-fail { background: #dc2626; color: #fff; }
.v-skip { background: #e4e7eb; color: #3e4c59; }
.v-info { background: #dbeafe; color: #1e3a8a; }
.v-partial { background: #e3f6ea; color: #14532d; border: 1px dashed #15803d; }
.v-marginal { background: #fef3c7; color: #78350f; }
.v-inconclusive { background: #fef3c7; color: #3e4c59; border: 1px dashed #b45309; }
td.worse { background: #fde2e1; color: #7f1d1d; font-weight: 600; }
td.better { background: #e3f6ea; color: #14532d; }
figure { background: #fff; border: 1px solid #d9e2ec; border-radius: 8px; margin: 16px 0; padding: 8px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { color: #52606d; font-size: 13px; padding: 4px 8px; }
dl.env { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; background: #fff;
         border: 1px solid #d9e2ec; border-radius: 8px; padding: 10px 16px; margin: 0; }
dl.env dt { font-weight: 600; color: #3e4c59; }
dl.tested { margin: 12px 0; }
dl.env.tested dd { word-break: normal; overflow-wrap: anywhere; font-family: inherit; font-size: 14px; }
dl.env dd { margin: 0; font-family: ui-monospace, "SFMono-Regular", Consolas, monospace; font-size: 13px;
            overflow-wrap: anywhere; }  /* sentences wrap at spaces; a long path anywhere */
dl.defs dt { font-weight: 700; margin-top: 6px; }
dl.defs dd { margin: 0 0 0 16px; }
.muted { color: #7b8794; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Consolas, monospace; font-size: 13px; }
td.text { max-width: 520px; white-space: pre-wrap; word-break: break-word; }
nav a { margin-right: 14px; }
/* Narrow pages: a checklist row's reason (its last cell) gets a line of its own under the row,
   instead of a column a few words wide beside the case ids. */
@media (max-width: 1100px) {
  table.checklist tr { display: grid; border-bottom: 1px solid #e4e7eb;
    grid-template-columns: minmax(7em, 1.3fr) 6.5em minmax(6em, 1fr) minmax(6em, 1fr) minmax(7em, 1.5fr) 5em; }
  table.checklist td { border-bottom: none; }
  table.checklist td.id { white-space: normal; }  /* a long id breaks at its hyphens, inside its grid cell */
  table.checklist th:last-child { display: none; }
  table.checklist td:last-child { grid-column: 1 / -1; padding-top: 0; color: #3e4c59; }
}
"""
