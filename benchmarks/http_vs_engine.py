"""What HTTP adds: the same requests through `phi3-harness serve` + the HTTP target and through the
in-process engine, interleaved, at concurrency 1 and 16.

    python benchmarks/http_vs_engine.py [--model DIR] [--rounds 20] [--max-new-tokens 32]

The server is a child process (`python -m harness serve --port 0`, CPU provider, same model folder);
the engine is loaded here on the same provider. Rounds alternate which side goes first. Printed:
median and interquartile range of TTFT and E2E per side, the HTTP/engine ratio of medians, and the
TTFT difference (goal on the tiny model: HTTP adds <= 5 % to E2E and <= 1 ms to TTFT), and the
transport floor: the HTTP target against the scripted test server with no model and no delays
(client + loopback + a minimal asyncio server), so what is left is the server's own cost. Greedy
answers of both sides must be equal (checked, not assumed). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness.measure.load import CaseInfo, run_closed_loop
from harness.measure.metrics import measure_request
from harness.measure.prompts import DISTINCT_QUESTIONS
from harness.measure.results import RequestRecord
from harness.model.default_model import default_model_dir, resolve_model
from harness.suite.remote import probe_health
from harness.targets.base import Request
from harness.targets.engine import Engine
from harness.targets.http import HttpTarget
from harness.targets.http_conn import parse_endpoint


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "harness", "serve", "--model", str(model), "--port", "0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # type: ignore[union-attr]
        found = re.search(r"listening at (http://\S+?),", line)
        if found:
            url = found.group(1)
            health = probe_health(parse_endpoint(url), wait_s=120)
            if not health.model_loaded:
                raise SystemExit(f"the server did not become healthy: {health.detail}")
            return process, url
    raise SystemExit(f"the server exited ({process.wait()}) before listening")


def one(target: object, request: Request, index: int) -> RequestRecord:
    return measure_request(target, request, run_id="bench", case_id="c1", test="bench", prompt_length=0,  # type: ignore[arg-type]
                           concurrency=1, request_index=index, worker=0, cold=False)


def loaded(target: object, requests: list[Request], concurrency: int) -> list[RequestRecord]:
    result = run_closed_loop(target, requests, CaseInfo("bench", f"c{concurrency}", "bench", 0),  # type: ignore[arg-type]
                             concurrency=concurrency, total_requests=2 * concurrency)
    return result.records


def summary(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = np.percentile(np.array(values), [25, 50, 75])
    return float(median), float(q1), float(q3)


def report(label: str, results: dict[str, list[RequestRecord]]) -> None:
    failed = {side: sum(not r.ok for r in records) for side, records in results.items()}
    print(f"\n{label}: {len(results['engine'])} requests per side, failed {failed}")
    print(f"{'metric':<6} {'engine median [IQR] ms':>28} {'http median [IQR] ms':>28} {'ratio':>7} {'diff ms':>8}")
    for metric in ("ttft_s", "e2e_s"):
        engine = summary([getattr(r, metric) for r in results["engine"] if r.ok])
        http = summary([getattr(r, metric) for r in results["http"] if r.ok])
        cells = [f"{1e3 * m:8.3f} [{1e3 * a:7.3f}, {1e3 * b:7.3f}]" for m, a, b in (engine, http)]
        print(f"{metric[:-2]:<6} {cells[0]:>28} {cells[1]:>28} {http[0] / engine[0]:7.3f} {1e3 * (http[0] - engine[0]):8.3f}")


def transport_floor(max_new_tokens: int) -> str:
    """TTFT and E2E of the harness's client against the scripted server (no model, no delays):
    what the client, loopback and a minimal asyncio server cost by themselves."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from http_calibration import run_calibration, scripted_server

    with scripted_server("--first-ms", "0", "--gap-ms", "0") as server:
        target = HttpTarget(server.url)
        run_calibration(target, 1, 5, max_new_tokens, tag="warm-")
        records = run_calibration(target, 1, 40, max_new_tokens)
        target.close()
    ttft, e2e = (float(np.median([getattr(r, m) for r in records])) * 1e3 for m in ("ttft_s", "e2e_s"))
    return f"transport floor (scripted server, no model, {max_new_tokens} chunks): TTFT {ttft:.3f} ms, E2E {e2e:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or preset (default: the embedded tiny model)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    model = resolve_model(args.model) or default_model_dir()
    requests = [Request.chat(q, max_new_tokens=args.max_new_tokens) for q in DISTINCT_QUESTIONS]
    engine = Engine.load(model)
    server, url = start_server(model)
    http = HttpTarget.for_model(url, model)
    try:
        for request in requests:  # warm both, and prove they answer alike
            ours, theirs = one(engine, request, 0), one(http, request, 0)
            assert ours.ok and theirs.ok and ours.output_text == theirs.output_text, "greedy answers differ"
        single = {"engine": [], "http": []}
        batch = {"engine": [], "http": []}
        for round_ in range(args.rounds):
            order = [("engine", engine), ("http", http)][:: 1 if round_ % 2 == 0 else -1]
            request = requests[round_ % len(requests)]
            for side, target in order:
                single[side].append(one(target, request, round_))
            if round_ % 4 == 0:  # concurrency 16: fewer rounds, each of 32 requests
                for side, target in order:
                    batch[side] += loaded(target, requests, 16)
        print(f"model {model.name}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; CPU provider; "
              f"{args.max_new_tokens} new tokens; rounds alternate the order")
        report("concurrency 1", single)
        report("concurrency 16", batch)
        print("\n" + transport_floor(args.max_new_tokens))
        for label, records in (("1", single["http"]), ("16", batch["http"])):
            stream = [r.details["client_cpu_s"] for r in records if r.ok]
            post = [r.details["client_post_cpu_s"] for r in records if r.ok]
            print(f"HTTP client CPU per request at concurrency {label}: median {1e3 * float(np.median(stream)):.3f} ms "
                  f"while streaming + {1e3 * float(np.median(post)):.3f} ms after it (counting tokens, events)")
    finally:
        http.close()
        engine.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        time.sleep(0.1)


if __name__ == "__main__":
    main()
