"""What the server serves: options, and the model's state (loading -> ready, or failed).

The model loads in a thread started once the socket listens, so ``/health`` answers 503 while a
real Phi-3 takes seconds to load, and 200 once requests can be served.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.model.default_model import resolve_model
from harness.providers import ProviderSettings, short_name, threading_in_effect
from harness.serve.api_error import ApiError, one_line
from harness.serve.generation import GenerationPool
from harness.targets.engine import Engine

DEFAULT_MAX_BODY_BYTES = 4 * 2**20  # a 128k-token prompt is ~0.5 MB of text; JSON escaping adds some
DEFAULT_MAX_CONCURRENCY = 64  # worker threads; more requests queue (their wait counts in their TTFT)
# KV cache that generations in flight may reserve (admission.py): with a real Phi-3 mini, ~10k
# positions in fp16, ~5k in fp32; the tiny model's positions are so small it never binds.
DEFAULT_KV_BUDGET_GIB = 4.0


@dataclass(frozen=True)
class ServeOptions:
    model_dir: Path | None = None  # None: the embedded tiny Phi-3; a preset name ("small") is built on load
    provider: str = "cpu"
    settings: ProviderSettings | None = None  # options and threads from a config; None: the defaults
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str | None = None  # the id clients see; default: the model folder's name
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    kv_budget_gib: float = DEFAULT_KV_BUDGET_GIB


class ModelState:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.status = "loading"  # loading | ready | failed
        self.error: str | None = None
        self.engine: Any = None
        self.pool: GenerationPool | None = None
        self.model_name = options.model_name or (options.model_dir.name if options.model_dir else "phi3-tiny")
        self.loaded = threading.Event()  # set when ready or failed

    def load(self) -> None:
        """Load the engine (blocking; run it in a thread). Failures are kept, never raised."""
        try:
            # a preset is built here, after the socket is up: /health says "loading" meanwhile
            settings = self.options.settings or ProviderSettings(name=self.options.provider)
            engine = Engine.load(resolve_model(self.options.model_dir), settings)
        except HarnessError as error:
            self.error, self.status = str(error), "failed"
        except Exception as error:  # ORT's own failures: name them on one line
            self.error, self.status = one_line(error), "failed"
        else:
            self.engine = engine
            self.pool = GenerationPool(engine, self.options.max_concurrency, round(self.options.kv_budget_gib * 2**30))
            self.model_name = self.options.model_name or engine.folder.path.name
            self.status = "ready"
        finally:
            self.loaded.set()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def require_ready(self) -> GenerationPool:
        if self.status == "ready" and self.pool is not None:
            return self.pool
        raise self.unavailable()

    def unavailable(self) -> ApiError:
        if self.status == "failed":
            return ApiError(503, f"the model failed to load: {self.error}", code="model_load_failed")
        return ApiError(503, f"the model is loading on {self.options.provider}: retry when /health says ok",
                        code="model_loading")

    @property
    def provider(self) -> str:
        """The provider actually executing: the session's first provider, not the one asked for."""
        return short_name(self.engine.session.get_providers()[0])

    def health(self) -> dict:
        engine, pool = self.engine, self.pool
        assert engine is not None and pool is not None
        return {
            "status": "ok",
            "model": self.model_name,
            "provider": self.provider,
            "execution_providers": list(engine.session.get_providers()),
            "model_path": str(engine.folder.path.resolve()),
            "context_length": pool.limit,
            "load_s": round(engine.load_seconds, 3),
            "max_concurrency": pool.max_workers,
            "kv_budget_tokens": pool.kv.budget_tokens,
            "kv_reserved_tokens": pool.kv.reserved_tokens,
            "active_requests": pool.active,
            "serial_runs": engine.settings.serial_runs,
            "threading": threading_in_effect(engine.session),
        }

    def model_card(self) -> dict:
        assert self.pool is not None
        return {
            "id": self.model_name,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "phi3-harness",
            "max_model_len": self.pool.limit,
        }
