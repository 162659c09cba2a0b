"""Per-request measurement: one target stream -> one RequestRecord with the timings defined below.

Definitions (tools disagree on names; these are ours, and the report states them):
    TTFT  = submit -> first generated token
    E2E   = submit -> last generated token
    ITL   = every gap between consecutive generated tokens (one sample per gap)
    TPOT  = (E2E - TTFT) / (output tokens - 1)
    prefill tok/s = prompt tokens / TTFT
    decode tok/s  = 1 / TPOT

Statistics of the samples (summaries, percentiles, intervals) live in harness.stats.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

from harness.measure.results import RequestRecord
from harness.targets.base import Request, Target, TokenEvent, Usage

NS = 1e9

# --- one request ------------------------------------------------------------------------------


def error_kind_of(error: BaseException) -> str:
    """A short, groupable kind: the target's own ``error_kind`` if it set one, else the type name."""
    kind = getattr(error, "error_kind", None)
    if isinstance(kind, str) and kind:
        return kind
    if isinstance(error, TimeoutError):
        return "timeout"
    return f"exception:{type(error).__name__}"


def measure_request(
    target: Target,
    request: Request,
    *,
    run_id: str,
    case_id: str,
    test: str,
    prompt_length: int,
    concurrency: int,
    request_index: int,
    worker: int,
    cold: bool,
    arrival_rate: float | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> RequestRecord:
    """Run one request through ``target.stream`` and turn its timestamps into a RequestRecord.

    Never raises for a failing request: the exception becomes ``ok=False`` with ``error_kind`` and
    ``error``, and the tokens seen before the failure are kept.
    """
    tokens: list[TokenEvent] = []
    usage: Usage | None = None
    error: BaseException | None = None
    submit_ns = clock()  # just before the call: the generator's setup counts towards TTFT
    try:
        for item in target.stream(request):
            if isinstance(item, TokenEvent):
                tokens.append(item)
            elif isinstance(item, Usage):
                usage = item
    except Exception as caught:  # a failed request is a result, not a crash of the run
        error = caught
    stream_end_ns = clock()
    return build_record(
        tokens,
        usage,
        error,
        submit_ns=submit_ns,
        stream_end_ns=stream_end_ns,
        meta=dict(
            run_id=run_id,
            case_id=case_id,
            test=test,
            target=str(getattr(target, "name", "?")),
            provider=str(getattr(target, "provider", "?")),
            prompt_length=prompt_length,
            concurrency=concurrency,
            request_index=request_index,
            worker=worker,
            cold=cold,
            max_new_tokens=request.max_new_tokens,
            arrival_rate=arrival_rate,
            precision=getattr(target, "precision", None),
        ),
    )


def build_record(
    tokens: Sequence[TokenEvent],
    usage: Usage | None,
    error: BaseException | None,
    *,
    submit_ns: int,
    stream_end_ns: int,
    meta: dict[str, Any],
) -> RequestRecord:
    """The arithmetic of ``measure_request``, separate so it can be checked on hand-made timestamps."""
    token_ns = [event.t_ns for event in tokens]
    ok = error is None and usage is not None
    error_kind = error_kind_of(error) if error is not None else (None if usage is not None else "no_usage")
    message = (str(error) or type(error).__name__) if error is not None else (
        None if usage is not None else "the stream ended without a Usage item"
    )
    first_ns = token_ns[0] if token_ns else None
    # E2E ends at the last token; without tokens, at the moment the stream ended or failed.
    end_ns = token_ns[-1] if (token_ns and ok) else stream_end_ns
    ttft = (first_ns - submit_ns) / NS if first_ns is not None else None
    e2e = (end_ns - submit_ns) / NS
    # Usage's count is authoritative (an HTTP chunk may carry several tokens); fall back to events.
    n_out = usage.completion_tokens if usage is not None else len(tokens)
    timed = usage is None or usage.per_token_timing
    tpot = (e2e - ttft) / (n_out - 1) if (ok and timed and ttft is not None and n_out > 1) else None
    prompt_tokens = usage.prompt_tokens if usage is not None else 0
    return RequestRecord(
        **meta,
        submit_ns=submit_ns,
        first_token_ns=first_ns,
        end_ns=end_ns,
        token_ns=token_ns,
        prompt_tokens=prompt_tokens,
        completion_tokens=n_out,
        ttft_s=ttft,
        e2e_s=e2e,
        tpot_s=tpot,
        itl_s=[(b - a) / NS for a, b in zip(token_ns, token_ns[1:])] if timed else [],
        prefill_tok_s=prompt_tokens / ttft if (ok and ttft and prompt_tokens) else None,
        decode_tok_s=1.0 / tpot if tpot else None,
        ok=ok,
        error_kind=error_kind,
        error=message,
        output_text="".join(event.text for event in tokens),
        output_ids=[event.token_id for event in tokens],
        details=_details(usage, error),
    )


def _details(usage: Usage | None, error: BaseException | None) -> dict[str, Any]:
    """What the target reported beyond tokens: from its Usage, or from the exception on failure."""
    source = usage.details if usage is not None else getattr(error, "details", None)
    return dict(source) if isinstance(source, Mapping) else {}
