"""What the judges read: request records, telemetry, and the evidence the suites gathered besides them.

``Evidence`` is filled in place by the evidence-gathering code (harness/suite/) and handed to the
judges as it is: there is no second copy to keep in step. None always means "not measured".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # frames are pandas at run time; the checklist table loads without it (gate.py)
    import pandas as pd


@dataclass
class ConcurrencyComparison:
    """One concurrency case's outputs compared with single-stream outputs of the same prompts."""

    case: str
    compared: int  # concurrent outputs compared
    mismatched: list[int] = field(default_factory=list)  # request indexes whose output differs


@dataclass
class TokenCount:
    """One request's reported counts beside counts made independently of the target."""

    case: str
    reported_prompt_tokens: int | None
    expected_prompt_tokens: int | None
    reported_completion_tokens: int | None
    expected_completion_tokens: int | None
    completion_note: str = ""  # how the completion count was made (re-tokenized, or streamed ids)

    @classmethod
    def of(cls, record: Any, case: str, expected_prompt: int | None, expected_completion: int | None,
           note: str) -> "TokenCount":
        """The record's reported counts (none when it failed) beside the independent ones."""
        return cls(case=case,
                   reported_prompt_tokens=record.prompt_tokens if record.ok else None,
                   expected_prompt_tokens=expected_prompt,
                   reported_completion_tokens=record.completion_tokens if record.ok else None,
                   expected_completion_tokens=expected_completion,
                   completion_note=note)


@dataclass
class Evidence:
    """Everything measured for one provider beyond records and telemetry."""

    load_s: float | None = None
    load_error: str | None = None
    health_model_loaded: bool | None = None  # HTTP targets: what the health endpoint said
    health_detail: str = ""
    proof: dict[str, Any] | None = None  # provider proof from a profiled generation
    prompts: list[str] = field(default_factory=list)  # texts of the real-responses prompts, in order
    decodes: bool | None = None  # output text equals the decoding of the generated ids
    matches_reference: bool | None = None  # greedy output equals the reference engine's
    reference_note: str = ""  # why the reference comparison did not run, or what it found
    concurrency: list[ConcurrencyComparison] = field(default_factory=list)
    token_counts: list[TokenCount] = field(default_factory=list)
    token_count_note: str = ""  # why no independent count could be made
    gpu_counters_reason: str = ""  # why GPU counters are unreadable, from the sampler


@dataclass
class CheckInputs:
    """One provider's (and target's) measurements, as the judges read them."""

    provider: str
    records: pd.DataFrame
    telemetry: pd.DataFrame
    evidence: Evidence = field(default_factory=Evidence)
    target: str = "engine"
