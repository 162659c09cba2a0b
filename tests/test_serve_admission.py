"""KV-cache admission in `serve`: requests start while their KV cache fits the budget, in arrival order."""

from __future__ import annotations

import threading
from pathlib import Path

from fixtures_model import BuildFn
from serve_client import chat

from harness.serve.admission import KVBudget, kv_bytes_per_token
from harness.serve.server import RunningServer
from harness.serve.state import ServeOptions
from harness.targets.engine import Engine


def acquire_in_thread(budget: KVBudget, tokens: int, cancel: threading.Event) -> tuple[threading.Thread, list[bool]]:
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(budget.acquire(tokens, cancel)))
    thread.start()
    return thread, result


def test_a_request_waits_while_the_budget_is_taken_and_starts_when_it_frees() -> None:
    budget, never = KVBudget(100), threading.Event()
    assert budget.acquire(60, never)
    thread, result = acquire_in_thread(budget, 60, never)
    thread.join(0.2)
    assert thread.is_alive() and result == []
    budget.release(60)
    thread.join(5)
    assert result == [True] and budget.reserved_tokens == 60


def test_arrival_order_holds_a_small_request_behind_a_waiting_big_one() -> None:
    budget, never = KVBudget(100), threading.Event()
    assert budget.acquire(50, never)
    big, big_result = acquire_in_thread(budget, 80, never)
    big.join(0.1)
    small, small_result = acquire_in_thread(budget, 10, never)  # would fit, but the big one came first
    small.join(0.2)
    assert big_result == [] and small_result == []
    budget.release(50)
    big.join(5)
    small.join(5)
    assert big_result == [True] and small_result == [True] and budget.reserved_tokens == 90


def test_a_cancelled_waiter_gives_up_and_one_larger_than_the_budget_runs_alone() -> None:
    budget, cancel = KVBudget(100), threading.Event()
    assert budget.acquire(500, threading.Event())  # alone: allowed although over the budget
    thread, result = acquire_in_thread(budget, 1, cancel)
    cancel.set()
    thread.join(5)
    assert result == [False] and budget.reserved_tokens == 500


def test_kv_bytes_per_token_follows_the_model_shape(tiny_builds: BuildFn) -> None:
    engine = Engine.load(tiny_builds())
    config = engine.config
    assert kv_bytes_per_token(engine) == 2 * config.num_layers * config.num_kv_heads * config.head_size * 4  # fp32


def test_a_small_budget_serialises_requests_and_every_reply_stays_right(tiny_builds: BuildFn) -> None:
    model_dir: Path = tiny_builds()
    per_token = kv_bytes_per_token(Engine.load(model_dir))
    # Each request reserves its 14-15 prompt tokens + 32 new ones: more than half of 60, so two never
    # fit together; more new tokens would only lengthen the decoding, not the proof.
    options = ServeOptions(model_dir=model_dir, port=0, kv_budget_gib=60 * per_token / 2**30)
    with RunningServer(options) as server:
        prompts = ["first prompt", "second prompt", "third prompt"]
        alone = [chat(server.url, p, max_tokens=32, temperature=0).json() for p in prompts]
        together: list[dict | None] = [None] * 3
        threads = [threading.Thread(target=lambda i=i: together.__setitem__(
            i, chat(server.url, prompts[i], max_tokens=32, temperature=0).json())) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        kv = server.state.pool.kv
    assert kv.budget_tokens == 60 and 30 < kv.peak_reserved_tokens <= 60  # one request at a time
    assert [r["choices"][0]["message"]["content"] for r in together] == [r["choices"][0]["message"]["content"] for r in alone]
