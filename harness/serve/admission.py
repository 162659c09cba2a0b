"""KV-cache admission: generations start while the cache they reserve fits a memory budget.

Each request's KV cache holds ``prompt + max_new_tokens`` positions (the engine sizes it once, for
the shared-buffer layout). On a real Phi-3 mini that is 384 KiB per position in fp16 (768 KiB in
fp32): 64 full-context requests at once would want ~96 GiB. So requests reserve their positions
here first and wait, first come first served, while the budget is taken. One request larger than
the whole budget still runs, alone: refusing it would make a valid request impossible.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

# ONNX Runtime input type -> bytes per element, for the KV inputs
_BYTES = {"tensor(float)": 4, "tensor(float16)": 2, "tensor(bfloat16)": 2}
WAIT_SLICE_S = 0.05  # how often a waiting request looks at its cancel flag


def kv_bytes_per_token(engine: Any) -> int:
    """Key + value bytes one position takes over all layers, from the session's own input types."""
    config = engine.config
    past_key = config.names.past(0)[0]
    kind = next(i.type for i in engine.session.get_inputs() if i.name == past_key)
    return 2 * config.num_layers * config.num_kv_heads * config.head_size * _BYTES.get(kind, 4)


class KVBudget:
    def __init__(self, budget_tokens: int) -> None:
        self.budget_tokens = budget_tokens
        self.reserved_tokens = 0
        self.peak_reserved_tokens = 0
        self._turns: deque[object] = deque()
        self._changed = threading.Condition()

    def acquire(self, tokens: int, cancel: threading.Event) -> bool:
        """Wait for this request's turn and room; False when it was cancelled while waiting."""
        turn = object()
        with self._changed:
            self._turns.append(turn)
            try:
                while self._turns[0] is not turn or not self._fits(tokens):
                    if cancel.is_set():
                        return False
                    self._changed.wait(WAIT_SLICE_S)
                self.reserved_tokens += tokens
                self.peak_reserved_tokens = max(self.peak_reserved_tokens, self.reserved_tokens)
                return True
            finally:
                self._turns.remove(turn)
                self._changed.notify_all()

    def release(self, tokens: int) -> None:
        with self._changed:
            self.reserved_tokens -= tokens
            self._changed.notify_all()

    def _fits(self, tokens: int) -> bool:
        return self.reserved_tokens == 0 or self.reserved_tokens + tokens <= self.budget_tokens
