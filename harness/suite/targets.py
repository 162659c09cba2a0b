"""What a suite measures through, whatever the target: the in-process engine or an HTTP endpoint.

The suites ask the session for a ``SuiteTarget`` and use only this: ``target`` to measure
(``stream``), ``tokenizer`` to build prompts, ``run_alone`` for single-stream reference outputs, and
``output_of`` to compare outputs. Ids are not on the wire, so HTTP outputs compare as text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.measure.results import RequestRecord
from harness.model.tokenizer import Phi3Tokenizer
from harness.targets.base import Request, TokenEvent


@dataclass
class SuiteTarget:
    kind: str  # "engine" | "http"
    target: Any  # a harness.targets.base.Target
    tokenizer: Phi3Tokenizer  # the model folder's: prompts of exact lengths, independent token counts
    tokenizer_is_the_servers: bool = True  # False: HTTP without --model (tiny model's tokenizer for prompts only)
    notes: list[str] = field(default_factory=list)

    def prompt_ids(self, request: Request) -> list[int]:
        """The templated prompt as the model folder's tokenizer builds it (with ``<s>``)."""
        if request.prompt_ids is not None:
            return list(request.prompt_ids)
        return self.tokenizer.encode_chat(request.messages, add_bos=True)

    def run_alone(self, request: Request) -> tuple[Any, ...] | str:
        """The output of ``request`` run on its own (not recorded), in ``output_of``'s form."""
        tokens = [item for item in self.target.stream(request) if isinstance(item, TokenEvent)]
        if self.kind == "http":
            return "".join(token.text for token in tokens)
        return tuple(token.token_id for token in tokens)

    def output_of(self, record: RequestRecord) -> tuple[Any, ...] | str:
        return record.output_text if self.kind == "http" else tuple(record.output_ids)


def reference_answers(model_dir: Path, requests: list[Request]) -> list[tuple[str, int]]:
    """(text, generated token count) of the in-process reference engine's greedy answers (CPU)."""
    from harness.targets.engine import Engine

    engine = Engine.load(model_dir)
    try:
        answers = [engine.generate(Request(messages=r.messages, max_new_tokens=r.max_new_tokens)) for r in requests]
    finally:
        engine.close()
    return [(answer.text, len(answer.output_ids)) for answer in answers]
