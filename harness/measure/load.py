"""Load generation: closed loop (N workers back to back) and open loop (Poisson arrivals).

Every request goes through ``metrics.measure_request``; a failed request is a record with
``ok=False``, never dropped, and the run goes on. Each record is handed to ``on_record`` as soon as
it is measured (calls are serialised, so a plain writer needs no lock of its own).
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence, Union

from harness.measure.metrics import measure_request
from harness.measure.results import RequestRecord
from harness.targets.base import Request, Target

RequestSource = Union[Callable[[int], Request], Sequence[Request]]
OnRecord = Callable[[RequestRecord], None]


@dataclass(frozen=True)
class CaseInfo:
    """What every record of one case carries besides its measurements."""

    run_id: str
    case_id: str
    test: str
    prompt_length: int


@dataclass
class LoadResult:
    records: list[RequestRecord]  # in completion order
    wall_s: float  # first submit -> last completion
    notes: list[str] = field(default_factory=list)  # e.g. open-loop dispatch lag
    # open loop: arrival i was due at schedule_start_ns + offset i (perf_counter_ns, the records' clock)
    schedule_start_ns: int | None = None

    @property
    def failed(self) -> list[RequestRecord]:
        return [r for r in self.records if not r.ok]


def _request_at(source: RequestSource, index: int) -> Request:
    if callable(source):
        return source(index)
    if not source:
        raise ValueError("no requests to send")
    return source[index % len(source)]


def _check_stop_rule(total_requests: int | None, duration_s: float | None) -> None:
    if total_requests is None and duration_s is None:
        raise ValueError("give total_requests or duration_s")
    if total_requests is not None and total_requests < 0:
        raise ValueError("total_requests must be >= 0")
    if duration_s is not None and duration_s <= 0:
        raise ValueError("duration_s must be > 0")


class _Collector:
    """Serialises record hand-over; the first callback failure stops the load and is re-raised."""

    def __init__(self, on_record: OnRecord | None) -> None:
        self.records: list[RequestRecord] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._on_record = on_record
        self._lock = threading.Lock()

    def fail(self, error: BaseException) -> None:
        with self._lock:
            self.error = self.error or error
            self.stop.set()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self.records.append(record)
            if self._on_record is None or self.error is not None:
                return
            try:
                self._on_record(record)
            except BaseException as error:  # e.g. the results disk is full: stop, do not go on blind
                self.error = error
                self.stop.set()

    def join(self, threads: list[threading.Thread]) -> None:
        """Wait for workers; Ctrl-C lets in-flight requests finish (and be recorded), then re-raises."""
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)
        except KeyboardInterrupt:
            self.stop.set()
            for thread in threads:
                thread.join()
            raise
        if self.error is not None:
            raise self.error


def run_closed_loop(
    target: Target,
    requests: RequestSource,
    case: CaseInfo,
    *,
    concurrency: int,
    total_requests: int | None = None,
    duration_s: float | None = None,
    cold_first: bool = False,
    on_record: OnRecord | None = None,
) -> LoadResult:
    """``concurrency`` workers each send a request as soon as their previous one ends.

    Stops after ``total_requests`` submissions or once ``duration_s`` has passed (requests in flight
    then finish and are recorded). ``cold_first`` marks request 0 as the cold one.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    _check_stop_rule(total_requests, duration_s)
    collector = _Collector(on_record)
    claim_lock = threading.Lock()
    next_index = [0]
    started = time.perf_counter()
    deadline = started + duration_s if duration_s is not None else None

    def claim() -> int | None:
        with claim_lock:
            index = next_index[0]
            if collector.stop.is_set() or (total_requests is not None and index >= total_requests):
                return None
            if deadline is not None and time.perf_counter() >= deadline:
                return None
            next_index[0] += 1
            return index

    # Every worker is running before the first request goes out: started one by one, the first
    # workers could finish requests before the last one starts, and the level would never be reached.
    all_started = threading.Barrier(concurrency)

    def work(worker: int) -> None:
        try:
            all_started.wait()
            while (index := claim()) is not None:
                record = measure_request(
                    target, _request_at(requests, index),
                    run_id=case.run_id, case_id=case.case_id, test=case.test, prompt_length=case.prompt_length,
                    concurrency=concurrency, request_index=index, worker=worker, cold=cold_first and index == 0,
                )
                collector.add(record)
        except BaseException as error:  # a bug in the request source, not a failed request
            collector.fail(error)

    threads = [threading.Thread(target=work, args=(w,), name=f"load-worker-{w}", daemon=True) for w in range(concurrency)]
    for thread in threads:
        thread.start()
    collector.join(threads)
    wall_s = _wall_s(collector.records, started)
    return LoadResult(collector.records, wall_s, client_load_notes(collector.records, wall_s))


def poisson_arrivals(rate_per_s: float, seed: int, *, count: int | None = None, duration_s: float | None = None) -> list[float]:
    """Arrival offsets in seconds: exponential gaps with mean 1/rate, reproducible from ``seed``."""
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be > 0")
    _check_stop_rule(count, duration_s)
    rng = random.Random(seed)
    offsets: list[float] = []
    t = 0.0
    while count is None or len(offsets) < count:
        t += rng.expovariate(rate_per_s)
        if duration_s is not None and t >= duration_s:
            break
        offsets.append(t)
    return offsets


def run_open_loop(
    target: Target,
    requests: RequestSource,
    case: CaseInfo,
    *,
    rate_per_s: float,
    seed: int,
    total_requests: int | None = None,
    duration_s: float | None = None,
    max_in_flight: int = 64,
    cold_first: bool = False,
    on_record: OnRecord | None = None,
) -> LoadResult:
    """Requests arrive as a Poisson process at ``rate_per_s``, whether or not earlier ones finished.

    Each request gets its own thread at its arrival time, so a slow target shows up as longer
    latency rather than fewer arrivals. ``max_in_flight`` bounds threads; when reached, dispatch
    waits and the lag is reported in ``notes`` (the arrival process is then no longer Poisson).
    Records carry ``concurrency=0`` (open loop) and ``worker`` = the in-flight slot used.
    """
    if max_in_flight < 1:
        raise ValueError("max_in_flight must be >= 1")
    offsets = poisson_arrivals(rate_per_s, seed, count=total_requests, duration_s=duration_s)
    collector = _Collector(on_record)
    slots = list(range(max_in_flight))  # a heap of free slot ids: the lowest free one is taken
    slot_free = threading.Condition()
    threads: list[threading.Thread] = []
    max_lag = 0.0

    def work(index: int, slot: int) -> None:
        try:
            record = measure_request(
                target, _request_at(requests, index),
                run_id=case.run_id, case_id=case.case_id, test=case.test, prompt_length=case.prompt_length,
                concurrency=0, request_index=index, worker=slot, cold=cold_first and index == 0,
                arrival_rate=rate_per_s,
            )
            collector.add(record)
        except BaseException as error:  # a bug in the request source, not a failed request
            collector.fail(error)
        finally:
            with slot_free:
                heapq.heappush(slots, slot)
                slot_free.notify()

    started_ns = time.perf_counter_ns()
    started = started_ns / 1e9  # perf_counter()'s clock, in its unit
    try:
        for index, offset in enumerate(offsets):
            delay = started + offset - time.perf_counter()
            if collector.stop.wait(delay) if delay > 0 else collector.stop.is_set():
                break
            with slot_free:
                while not slots:
                    slot_free.wait()
                slot = heapq.heappop(slots)
            max_lag = max(max_lag, time.perf_counter() - (started + offset))
            thread = threading.Thread(target=work, args=(index, slot), name=f"arrival-{index}", daemon=True)
            thread.start()
            threads.append(thread)
    except KeyboardInterrupt:
        collector.stop.set()
        for thread in threads:
            thread.join()
        raise
    collector.join(threads)
    notes = []
    if max_lag > 0.05:
        notes.append(f"dispatch fell up to {max_lag:.3f} s behind the arrival schedule (max_in_flight={max_in_flight})")
    wall_s = _wall_s(collector.records, started)
    return LoadResult(collector.records, wall_s, notes + client_load_notes(collector.records, wall_s), started_ns)


# Share of one core above which the measuring client itself may delay what it measures (Python
# runs one thread at a time, so one core is all the client's threads get together).
CLIENT_CORE_WARNING = 0.8


def client_core_share(records: list[RequestRecord], wall_s: float) -> float | None:
    """CPU the target's client spent (HTTP: ``details["client_cpu_s"]`` per request) over the wall time."""
    cpu = [r.details.get("client_cpu_s", 0.0) + r.details.get("client_post_cpu_s", 0.0)
           for r in records if "client_cpu_s" in r.details]
    return sum(cpu) / wall_s if cpu and wall_s > 0 else None


def client_load_notes(records: list[RequestRecord], wall_s: float) -> list[str]:
    share = client_core_share(records, wall_s)
    if share is None or share < CLIENT_CORE_WARNING:
        return []
    return [f"the HTTP client used {share:.0%} of one core: it may be the bottleneck, and its timings late"]


def _wall_s(records: list[RequestRecord], started: float) -> float:
    """First submit -> last end on the records' own clock; the loop's span when nothing ran."""
    if not records:
        return time.perf_counter() - started
    return (max(r.end_ns for r in records) - min(r.submit_ns for r in records)) / 1e9
