"""Benchmark (not a test): our engine against onnxruntime-genai, quiet and under a CPU load it starts.

Each engine runs in its own worker process, so each has its own ONNX Runtime thread pools and its
own CPU-time account. Rounds alternate between two machine states:

- quiet: nothing added (other processes on the machine still run: what they used is printed);
- loaded: one busy-looping process per core, started by this benchmark, paused (SIGSTOP) during
  quiet rounds, killed at the end and bounded by a deadline in any case.

Rounds last milliseconds, so the 1-minute load average cannot tell the two states apart. Instead,
around every round the benchmark reads the machine's CPU accounting (/proc/stat through psutil) and
the CPU time of its own processes; per state it prints how many cores were busy while measuring and
whose they were: the engines, the background load, everything else on the machine, and the time
the hypervisor took (steal).

In every round each engine serves one request (the order alternates), so drift hits both alike.
A worker's CPU time for a request runs from its start to the start of its next request: the time
its thread pool spins after returning counts against it. Per state this prints, per engine, decode
tok/s, TTFT, CPU ms per request and the cores it kept busy (CPU time over the request's wall time),
each as median and IQR; the ratios ours / genai (median and IQR of the per-round ratios); and a
warning for every figure whose IQR exceeds 10 % of its median.

Goal in both states: decode >= 1.2x genai, TTFT <= 0.7x genai, CPU per request <= genai's. Each
ratio's goal is judged on a distribution-free 95 % interval of its median (order statistics,
harness.stats.percentile_interval): "met" when the whole interval is on the goal's side, "missed"
when it is all on the other side, otherwise "inconclusive" (and so with too few rounds for an
interval): a median that lands on the right side by luck is not a goal met.

Last, the shared-kernel floor: our session, profiled by ONNX Runtime, serves a few more requests
in each of two thread settings (one thread; one per core with spinning on), and the heaviest node
of the prefill and of a decode step is timed (the faster setting counts, the first request warms
up). A decode step's heaviest node is one genai runs too, with the same kernels, so even if
everything else cost ours nothing, ours / genai could reach at best genai's median / that node's
time. Our prefill runs on the last-position edit of the graph (harness/model/last_logits.py: the
lm_head multiplies one row, not every prompt position, as genai's does); its heaviest node bounds
the TTFT ratio from below: at least that node's time / genai's median.

    python benchmarks/engine_vs_genai.py [--rounds 40] [--precision fp32 int4 | --model small]
        [--variant NAME=KEY=VALUE,KEY=VALUE ...]   # our engine with other settings, e.g.
        --variant spin=provider.cpu.allow_spinning=true --variant one=provider.cpu.intra_op_num_threads=1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from harness.stats import percentile_interval

STATES = ("quiet", "loaded")
FLOOR_REQUESTS = 3  # profiled requests of the shared-kernel floor
LOAD_DEADLINE_S = 1800  # a load process never outlives this, whatever happens to the benchmark
_BUSY = "import time\nend = time.monotonic() + {deadline}\nwhile time.monotonic() < end:\n    pass\n"


# -- worker process ----------------------------------------------------------------------------


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


def _load_target(kind: str, precision: str, overrides: dict[str, str], model: str | None) -> Any:
    from harness.model.default_model import default_model_dir, resolve_model

    model_dir = resolve_model(model) if model else default_model_dir(precision=precision, layout="cpu")
    if kind == "genai":
        from harness.targets.genai import GenaiTarget

        return GenaiTarget(model_dir)
    from harness.config import load_config
    from harness.targets.engine import Engine

    return Engine.load(model_dir, load_config(None, overrides).provider_settings("cpu"))


def worker(kind: str, precision: str, prompt_tokens: int, new_tokens: int, overrides: dict[str, str],
           model: str | None = None) -> int:
    """Serve "run" lines on stdin with one JSON line each; "end" reports the last request's CPU."""
    from harness.measure.metrics import measure_request
    from harness.targets.base import Request

    target = _load_target(kind, precision, overrides, model)
    request = Request(prompt_ids=tuple(_bench_prompt(prompt_tokens)), max_new_tokens=new_tokens)
    previous_start = None
    for line in sys.stdin:
        now = _cpu_s()
        cpu_of_previous = None if previous_start is None else now - previous_start
        if line.strip() == "end":
            print(json.dumps({"cpu_of_previous_s": cpu_of_previous}), flush=True)
            return 0
        previous_start = now
        record = measure_request(target, request, run_id="bench", case_id="bench", test="bench",
                                 prompt_length=prompt_tokens, concurrency=1, request_index=0, worker=0, cold=False)
        if not record.ok:
            print(json.dumps({"error": record.error}), flush=True)
            return 1
        print(json.dumps({"ttft_s": record.ttft_s, "decode_tok_s": record.decode_tok_s, "e2e_s": record.e2e_s,
                          "cpu_of_previous_s": cpu_of_previous}), flush=True)
    return 0


def floor_worker(precision: str, prompt_tokens: int, new_tokens: int, overrides: dict[str, str],
                 model: str | None) -> int:
    """Profile our session on a few requests; print the heaviest prefill and decode node as one JSON line."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from harness.config import load_config
    from harness.model.default_model import default_model_dir, resolve_model
    from harness.providers import prefill_logits_in_effect
    from harness.targets.base import Request
    from harness.targets.engine import Engine

    model_dir = resolve_model(model) if model else default_model_dir(precision=precision, layout="cpu")
    chosen = load_config(None, overrides).provider_settings("cpu")
    with tempfile.TemporaryDirectory() as scratch:
        settings = dataclasses.replace(chosen, profile_prefix=Path(scratch) / "floor")
        engine = Engine.load(model_dir, settings)
        request = Request(prompt_ids=tuple(_bench_prompt(prompt_tokens)), max_new_tokens=new_tokens, ignore_eos=True)
        for _ in range(1 + FLOOR_REQUESTS):  # the first warms up
            engine.generate(request)
        profile = json.loads(Path(engine.end_profiling()).read_text())
    prefill_runs = -(-prompt_tokens // (engine.prefill_chunk or prompt_tokens))
    result = _heaviest_nodes(profile, prefill_runs, prefill_runs + new_tokens - 1)
    result["prefill"]["logits"] = prefill_logits_in_effect(engine.session)["note"]
    print(json.dumps(result), flush=True)
    return 0


def _heaviest_nodes(profile: list[dict[str, Any]], prefill_runs: int, runs_per_request: int) -> dict[str, Any]:
    """Per kind of Run (prefill, decode): median Run time and the heaviest node's median time, in us."""
    runs = sorted((e["ts"], e["ts"] + e["dur"], e["dur"]) for e in profile
                  if e.get("cat") == "Session" and e.get("name") == "model_run")[runs_per_request:]
    kinds = ["prefill" if i % runs_per_request < prefill_runs else "decode" for i in range(len(runs))]
    run_times: dict[str, list[float]] = {"prefill": [], "decode": []}
    node_times: dict[tuple[str, str], list[float]] = {}
    ends = [end for _, end, _ in runs]
    for (_, _, dur), kind in zip(runs, kinds):
        run_times[kind].append(dur)
    for event in profile:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        index = next((i for i, end in enumerate(ends) if runs[i][0] <= event["ts"] <= end), None)
        if index is not None:
            node_times.setdefault((kinds[index], event["name"][: -len("_kernel_time")]), []).append(event["dur"])
    result: dict[str, Any] = {}
    for kind in ("prefill", "decode"):
        per_run = len(run_times[kind]) // FLOOR_REQUESTS if kind == "prefill" else 1
        nodes = {name: statistics.median(times) * per_run for (k, name), times in node_times.items() if k == kind}
        name = max(nodes, key=nodes.__getitem__)
        result[kind] = {"run_us": statistics.median(run_times[kind]) * per_run, "node": name, "node_us": nodes[name]}
    return result


def _bench_prompt(prompt_tokens: int) -> list[int]:
    body = [(i * 7919) % 30000 + 300 for i in range(prompt_tokens - 3)]
    return [1, 32010, *body, 32001]


# -- coordinator -------------------------------------------------------------------------------


class Worker:
    def __init__(self, name: str, kind: str, args: argparse.Namespace, overrides: str) -> None:
        command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--precision", args.precision[0],
                   "--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens),
                   "--overrides", overrides] + (["--model", args.model] if args.model else [])
        self.name = name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.samples: list[dict[str, Any]] = []  # one per request: ttft_s, decode_tok_s, cpu_s, state

    def request(self, state: str | None) -> None:
        reply = self._ask("run")
        if "error" in reply:
            sys.exit(f"{self.name} failed: {reply['error']}")
        self._close_previous(reply)
        self.samples.append({"ttft_s": reply["ttft_s"], "decode_tok_s": reply["decode_tok_s"], "e2e_s": reply["e2e_s"],
                             "state": state})

    def finish(self) -> None:
        self._close_previous(self._ask("end"))
        self.process.wait(timeout=30)

    def _close_previous(self, reply: dict[str, Any]) -> None:
        if self.samples and reply["cpu_of_previous_s"] is not None:
            self.samples[-1]["cpu_s"] = reply["cpu_of_previous_s"]

    def _ask(self, line: str) -> dict[str, Any]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            sys.exit(f"{self.name} worker ended unexpectedly (exit {self.process.wait()})")
        return json.loads(answer)


@dataclass
class MachineLoad:
    """CPU seconds spent on the whole machine during one state's rounds, and by whom."""

    wall_s: float = 0.0
    busy_s: float = 0.0  # every core's non-idle time (steal excluded)
    steal_s: float = 0.0  # taken by the hypervisor for other guests: a shared host's noise
    engines_s: float = 0.0  # this benchmark's worker processes
    load_s: float = 0.0  # its background load processes
    rounds: int = 0

    def line(self) -> str:
        if not self.wall_s:
            return "no rounds measured"
        cores = psutil.cpu_count() or 1
        share = {name: seconds / self.wall_s for name, seconds in
                 (("busy", self.busy_s), ("engines", self.engines_s), ("load", self.load_s), ("steal", self.steal_s))}
        rest = share["busy"] - share["engines"] - share["load"]
        return (f"{share['busy']:.2f} of {cores} cores busy over {self.rounds} rounds ({self.wall_s:.2f} s):\n"
                f"   engines {share['engines']:.2f}, background load {share['load']:.2f}, "
                f"other processes {max(rest, 0.0):.2f}; steal {share['steal']:.2f}")


@dataclass
class LoadMeter:
    """Snapshots before and after a round; adds the round's CPU use to its state's total."""

    engine_pids: list[int]
    load_pids: list[int]
    seen: dict[str, MachineLoad] = field(default_factory=lambda: {state: MachineLoad() for state in STATES})

    def snapshot(self) -> tuple[float, ...]:
        times = psutil.cpu_times()
        steal = getattr(times, "steal", 0.0)
        # On Linux, guest time is already counted in user and nice: summing every field counts it twice.
        guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
        idle = times.idle + getattr(times, "iowait", 0.0)
        busy = sum(times) - guest - idle - steal
        return time.monotonic(), busy, steal, _cpu_of(self.engine_pids), _cpu_of(self.load_pids)

    def add(self, state: str, before: tuple[float, ...], after: tuple[float, ...]) -> None:
        total = self.seen[state]
        wall, busy, steal, engines, load = (b - a for a, b in zip(before, after))
        total.wall_s += wall
        total.busy_s += busy
        total.steal_s += steal
        total.engines_s += engines
        total.load_s += load
        total.rounds += 1


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (from /proc/<pid>/stat)."""
    seconds = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds += times.user + times.system
    return seconds


class BackgroundLoad:
    """One busy-looping process per core; paused and resumed with signals, bounded by a deadline."""

    def __init__(self, processes: int) -> None:
        code = _BUSY.format(deadline=LOAD_DEADLINE_S)
        self.processes = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
        self.pause()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()

    def _signal(self, sig: int) -> None:
        for process in self.processes:
            process.send_signal(sig)


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3 if values else (float("nan"),) * 3
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def _figure(label: str, values: list[float], scale: float, unit: str, warnings: list[str]) -> str:
    q1, median, q3 = _quartiles(values)
    if median and (q3 - q1) > 0.10 * abs(median):
        warnings.append(f"{label} (IQR {(q3 - q1) / abs(median):.0%})")
    return f"{median * scale:9.2f} {unit:<6} IQR {q1 * scale:8.2f} .. {q3 * scale:8.2f}"


def goal_verdict(values: list[float], goal: str) -> str:
    """'met', 'missed' or 'inconclusive' for a goal such as '>= 1.2' on the median of ``values``,
    from the 95 % interval of that median, with the interval."""
    operator, _, limit_text = goal.partition(" ")
    limit = float(limit_text)
    interval = percentile_interval(values, 50)
    if interval is None:
        return f"inconclusive ({len(values)} rounds: too few for a 95 % interval)"
    low, high = interval
    if operator == ">=":
        verdict = "met" if low >= limit else "missed" if high < limit else "inconclusive"
    else:
        verdict = "met" if high <= limit else "missed" if low > limit else "inconclusive"
    return f"{verdict} (95 % CI {low:.2f} .. {high:.2f})"


def _rows(name: str, state: str, warnings: list[str], figures: list[tuple[str, list[float], float, str, str]]) -> None:
    for index, (metric, values, scale, unit, goal) in enumerate(figures):
        label = name if index == 0 else ""
        text = _figure(f"{state} {name} {metric}", values, scale, unit, warnings)
        print(f"  {label:<12} {metric:<6} {text}" + (f"  goal {goal}" if goal else ""))
        if goal:
            print(f"  {'':<12} {'':<6} {'':>9} {'':<6} {goal_verdict(values, goal)}")


def report(precision: str, workers: list[Worker], genai: Worker, load_seen: dict[str, MachineLoad]) -> None:
    for state in STATES:
        warnings: list[str] = []
        print(f"\n== {precision}, {state}: {load_seen[state].line()}")
        for w in workers:
            rows = [s for s in w.samples if s["state"] == state]
            cpu = [r["cpu_s"] for r in rows if "cpu_s" in r]
            _rows(w.name, state, warnings, [
                ("decode", [r["decode_tok_s"] for r in rows], 1, "tok/s", ""),
                ("TTFT", [r["ttft_s"] for r in rows], 1000, "ms", ""),
                ("CPU", cpu, 1000, "ms/req", ""),
                # CPU time over the request's wall time: how many cores the engine kept busy
                ("cores", [r["cpu_s"] / r["e2e_s"] for r in rows if "cpu_s" in r and r["e2e_s"]], 1, "busy", ""),
            ])
        base = [s for s in genai.samples if s["state"] == state]
        for w in workers:
            if w is genai:
                continue
            pairs = list(zip([s for s in w.samples if s["state"] == state], base))
            _rows(f"{w.name}/genai", state, warnings, [
                ("decode", [a["decode_tok_s"] / b["decode_tok_s"] for a, b in pairs], 1, "x", ">= 1.2"),
                ("TTFT", [a["ttft_s"] / b["ttft_s"] for a, b in pairs], 1, "x", "<= 0.7"),
                ("CPU", [a["cpu_s"] / b["cpu_s"] for a, b in pairs if "cpu_s" in a and "cpu_s" in b], 1, "x", "<= 1.0"),
            ])
        if warnings:
            print(f"  WARNING: IQR over 10 % of the median (noisy) for {len(warnings)} figures:")
            for warning in warnings:
                print(f"    {warning}")


def bench(args: argparse.Namespace, precision: str) -> None:
    args.precision = [precision]
    variants = dict(args.variant or [("ours", "")])
    workers = [Worker(name, "engine", args, overrides) for name, overrides in variants.items()]
    genai = Worker("genai", "genai", args, "")
    workers.append(genai)
    load = BackgroundLoad(os.cpu_count() or 1)
    meter = LoadMeter([w.process.pid for w in workers], [p.pid for p in load.processes])
    try:
        for state in STATES:  # warm-up in both states, not recorded
            (load.resume if state == "loaded" else load.pause)()
            for w in workers:
                for _ in range(2):
                    w.request(None)
        for round_index in range(2 * args.rounds):
            state = STATES[round_index % 2]
            (load.resume if state == "loaded" else load.pause)()
            order = workers if (round_index // 2) % 2 == 0 else list(reversed(workers))
            before = meter.snapshot()
            for w in order:
                w.request(state)
            meter.add(state, before, meter.snapshot())
    finally:
        load.stop()
        for w in workers:
            w.finish()
    for w in workers:  # the warm-up requests only served to close CPU intervals
        w.samples = [s for s in w.samples if s["state"] is not None]
    print(f"\n{precision}: prompt {args.prompt_tokens} tokens, {args.new_tokens} new, {args.rounds} rounds per state,"
          f" background load {os.cpu_count()} busy processes")
    report(precision, workers, genai, meter.seen)
    report_floor(precision, measure_floor(args, precision), genai)


FLOOR_SETTINGS = {"1 thread": "provider.cpu.intra_op_num_threads=1",
                  "1 per core, spinning": "provider.cpu.allow_spinning=true"}


def measure_floor(args: argparse.Namespace, precision: str) -> dict[str, Any]:
    """Per kind of Run, the floor worker's figures in the thread setting where the heaviest node ran fastest."""
    best: dict[str, Any] = {}
    for label, overrides in FLOOR_SETTINGS.items():
        command = [sys.executable, os.path.abspath(__file__), "--worker", "floor", "--precision", precision,
                   "--prompt-tokens", str(args.prompt_tokens), "--new-tokens", str(args.new_tokens),
                   "--overrides", overrides] + (["--model", args.model] if args.model else [])
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            sys.exit(f"the floor worker failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        for kind, entry in json.loads(done.stdout.strip().splitlines()[-1]).items():
            if kind not in best or entry["node_us"] < best[kind]["node_us"]:
                best[kind] = {**entry, "setting": label}
    return best


def report_floor(precision: str, floor: dict[str, Any], genai: Worker) -> None:
    quiet = [s for s in genai.samples if s["state"] == "quiet"]
    genai_token_us = 1e6 / statistics.median(s["decode_tok_s"] for s in quiet)
    genai_ttft_us = 1e6 * statistics.median(s["ttft_s"] for s in quiet)
    print(f"\n== {precision}, shared-kernel floor: our session profiled by ORT, {FLOOR_REQUESTS} requests per setting")
    for kind in ("prefill", "decode"):
        entry = floor[kind]
        # the node's name on a line of its own: the builder's names run to 40+ characters
        print(f"  {kind:<8} {entry['node']}\n  {'':<8} {entry['node_us'] / 1000:.3f} ms of the "
              f"{entry['run_us'] / 1000:.3f} ms profiled Run ({entry['node_us'] / entry['run_us']:.0%}; {entry['setting']})")
    best_decode = genai_token_us / floor["decode"]["node_us"]
    best_ttft = floor["prefill"]["node_us"] / genai_ttft_us
    print(f"  our prefill logits: {floor['prefill']['logits']}; genai's: every position")
    print("  with all else free, ours/genai (quiet) could reach decode (genai runs that node too)")
    print(f"  {best_decode:.2f} x at best (goal >= 1.2), TTFT {best_ttft:.2f} x at least (goal <= 0.7)")


def _variant(text: str) -> tuple[str, str]:
    name, sep, overrides = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: write NAME=KEY=VALUE[,KEY=VALUE]")
    return name, overrides


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 40: the 95 % interval of a median then spans ranks ~14..27 of 40; 15 rounds left most loaded goals inconclusive
    parser.add_argument("--rounds", type=int, default=40, help="measured rounds per state")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--precision", nargs="+", default=["fp32", "int4"])
    parser.add_argument("--model", help="a model folder or preset (e.g. small) instead of the tiny model per precision")
    parser.add_argument("--variant", type=_variant, action="append", help="NAME=KEY=VALUE,...: our engine with config overrides")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.overrides.split(",") if item)
    if args.worker == "floor":
        return floor_worker(args.precision[0], args.prompt_tokens, args.new_tokens, overrides, args.model)
    if args.worker:
        return worker(args.worker, args.precision[0], args.prompt_tokens, args.new_tokens, overrides, args.model)
    started = os.getloadavg()
    for precision in [args.model] if args.model else list(args.precision):  # a model: its own precision
        bench(args, precision)
    ended = os.getloadavg()
    print(f"\nload average at start {' '.join(f'{x:.2f}' for x in started)},"
          f" at end {' '.join(f'{x:.2f}' for x in ended)}")
    print(f"({os.cpu_count()} cores; every process on the machine counts, this benchmark's included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
