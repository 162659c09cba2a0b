"""How often the regression gate cries wolf (A/A) and how often it catches a real slowdown (A/B).

A benchmark, not a test: it runs `phi3-harness run --config quick` pairs back to back on the tiny
model and gates each pair with `phi3-harness report B --baseline A --fail-on-regression PCT`.

    A/A: both runs identical              -> a failing gate is a false regression (goal: 0 of 10)
    A/B: B under a real slowdown          -> a failing gate is a detection (goal: >= 9 of 10)

Slowdowns: ``load`` runs B beside busy-looping processes (``--load-procs``, default 4 per core,
started just before B and stopped right after it: on a machine already loaded by others, one per
core slows B by less than the 25 % being tested); ``threads`` runs A with 2 ONNX Runtime intra-op
threads and B with 1. Each A/B line shows the slowdown B really had (median over cases of the E2E
ratio), so a detection rate can be read against it. The load average is printed with every pair:
on a shared machine every figure depends on it.

    python benchmarks/gate_aa_ab.py --pairs 10 --slowdown load
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 240


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


def quick_run(out: Path, *overrides: str) -> None:
    sets = [part for item in overrides for part in ("--set", item)]
    result = harness("run", "--config", "configs/quick.toml", "--provider", "cpu", "--out", str(out), *sets)
    if result.returncode not in (0, 1) or not (out / "results.jsonl").is_file():
        raise SystemExit(f"run failed ({result.returncode}): {result.stdout[-800:]}{result.stderr[-800:]}")


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:  # bounded: stops by itself even if nobody terminates it
        pass


class BackgroundLoad:
    """One busy-looping process per core for the duration of a with-block (at most ``limit_s``)."""

    def __init__(self, processes: int, limit_s: float = RUN_TIMEOUT_S) -> None:
        self.processes = processes
        self.limit_s = limit_s
        self.workers: list[multiprocessing.Process] = []

    def __enter__(self) -> "BackgroundLoad":
        stop_at = time.time() + self.limit_s
        self.workers = [multiprocessing.Process(target=_spin, args=(stop_at,), daemon=True) for _ in range(self.processes)]
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.terminate()
        for worker in self.workers:
            worker.join()


def gate(baseline: Path, current: Path, out: Path, limit_pct: float) -> dict:
    result = harness("report", str(current), "--baseline", str(baseline), "--fail-on-regression", f"{limit_pct:g}",
                     "--out", str(out))
    table = pd.read_csv(out / "comparison.csv") if (out / "comparison.csv").is_file() else pd.DataFrame()
    counts = table["verdict"].value_counts().to_dict() if len(table) else {}
    e2e = table[table["metric"] == "E2E"]["ratio"] if len(table) else pd.Series(dtype=float)
    regressed = sorted({f"{r.metric} {r.test}/{r.case_id}" for r in table.itertuples() if r.verdict == "regression"})
    return {"rc": result.returncode, "regression": counts.get("regression", 0),
            "inconclusive": counts.get("inconclusive", 0), "no change": counts.get("no change", 0),
            "improvement": counts.get("improvement", 0), "regressed": regressed,
            "e2e_ratio": round(float(e2e.median()), 2) if len(e2e) else float("nan"),
            "error": result.stdout.strip().splitlines()[-1] if result.returncode == 2 else ""}


def one_pair(kind: str, index: int, root: Path, args: argparse.Namespace) -> dict:
    folder = root / f"{kind}-{index:02d}"
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    if kind == "aa":
        quick_run(folder / "a")
        quick_run(folder / "b")
        limit = args.aa_limit
    elif args.slowdown == "threads":
        quick_run(folder / "a", "provider.cpu.intra_op_num_threads=2")
        quick_run(folder / "b", "provider.cpu.intra_op_num_threads=1")
        limit = args.ab_limit
    else:
        quick_run(folder / "a")
        with BackgroundLoad(args.load_procs):
            quick_run(folder / "b")
        limit = args.ab_limit
    outcome = gate(folder / "a", folder / "b", folder / "cmp", limit)
    outcome.update(kind=kind, pair=index, limit_pct=limit, load_1min=round(load_before, 2),
                   seconds=round(time.perf_counter() - started, 1))
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--aa-limit", type=float, default=10.0, help="--fail-on-regression for A/A pairs")
    parser.add_argument("--ab-limit", type=float, default=25.0, help="--fail-on-regression for A/B pairs")
    parser.add_argument("--slowdown", choices=("load", "threads"), default="load")
    parser.add_argument("--load-procs", type=int, default=4 * (os.cpu_count() or 2),
                        help="busy processes beside B with --slowdown load")
    parser.add_argument("--only", choices=("aa", "ab"), default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="gate-aa-ab-"))
    root.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in ("aa", "ab") if args.only in (None, k)]
    rows = []
    for index in range(args.pairs):  # A/A and A/B interleaved, so both meet the same machine load
        for kind in kinds:
            row = one_pair(kind, index, root, args)
            rows.append(row)
            print(f"{kind} {index:2d} load {row['load_1min']:5.2f} rc {row['rc']} E2E x{row['e2e_ratio']:<5} "
                  f"regr {row['regression']:2d} inconcl {row['inconclusive']:2d} same {row['no change']:2d} "
                  f"{row['seconds']:5.1f} s {'; '.join(row['regressed'])[:40] or row['error'][:40]}", flush=True)
    frame = pd.DataFrame(rows)
    frame.drop(columns=["regressed"]).to_csv(root / "gate_aa_ab.csv", index=False)
    for kind, label in (("aa", "false regressions (A/A)"), ("ab", f"detections (A/B, {args.slowdown})")):
        part = frame[frame["kind"] == kind]
        if len(part):
            print(f"{label}: {(part['rc'] == 1).sum()} of {len(part)} pairs failed the gate at "
                  f"{part['limit_pct'].iloc[0]:g} %; errors (rc 2): {(part['rc'] == 2).sum()}; median E2E ratio "
                  f"x{part['e2e_ratio'].median():.2f}; load average (1 min) "
                  f"{part['load_1min'].min():.2f}-{part['load_1min'].max():.2f}")
    print(f"folders and gate_aa_ab.csv: {root}")


if __name__ == "__main__":
    main()
