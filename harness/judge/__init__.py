"""The checklist: measured inputs + thresholds -> verdicts, and the gate on them (nothing measured here).

table.py is the checklist (one row per item); one module per kind of item judges it; gate.py turns
verdicts into the exit code. Rendering verdicts is the report's job (harness/report/).
"""
