"""The target protocol every measured thing implements (engine, onnxruntime-genai, HTTP).

A target streams ``TokenEvent``s as tokens are produced and ends with one ``Usage``. Timestamps
are ``time.perf_counter_ns()`` taken by the target as close to the token as it can, so TTFT and
inter-token gaps come from the producer, not from the consumer's loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Protocol, Union, runtime_checkable


@dataclass(frozen=True)
class Request:
    """One generation request.

    Either ``prompt_ids`` (exact token ids, used by suites that need exact prompt lengths) or
    ``messages`` (chat turns, rendered with the Phi-3 chat template) must be given.
    """

    messages: tuple[tuple[str, str], ...] = ()  # (role, content), role in system|user|assistant
    prompt_ids: tuple[int, ...] | None = None
    max_new_tokens: int = 32
    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    top_p: float = 1.0
    seed: int | None = None
    request_id: str = ""
    ignore_eos: bool = False  # keep generating past EOS (load tools ask for fixed output lengths)

    @staticmethod
    def chat(prompt: str, **kwargs: object) -> "Request":
        return Request(messages=(("user", prompt),), **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TokenEvent:
    token_id: int
    text: str  # new text now certain (deltas concatenate to decode(ids)); "" while it could still change
    t_ns: int  # perf_counter_ns when the token was available


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"  # stop (eos) | length (max_new_tokens)
    prompt_ids: tuple[int, ...] = field(default=(), repr=False)
    # False when tokens were not timed one by one (an HTTP answer that was not streamed): TPOT and
    # decode speed are then undefined, and TTFT equals E2E.
    per_token_timing: bool = True
    # Target-specific facts kept in the record (HTTP: chunk arrivals, connection set-up, client CPU).
    details: Mapping[str, Any] = field(default_factory=dict, repr=False)


StreamItem = Union[TokenEvent, Usage]


@runtime_checkable
class Target(Protocol):
    """Something that generates: ``stream`` yields TokenEvents, then exactly one Usage."""

    name: str  # "engine", "genai", "http"
    provider: str  # short provider name actually executing ("cpu", "dml", ...), or "remote"

    def stream(self, request: Request) -> Iterator[StreamItem]: ...

    def close(self) -> None: ...
