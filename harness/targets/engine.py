"""The reference Phi-3 engine: prefill + decode with a KV cache on one ONNX Runtime session.

``stream(request)`` yields a TokenEvent per generated token, stamped with perf_counter_ns as soon
as the token is chosen, then one Usage; that makes the engine a Target (harness.targets.base) and
lets TTFT and inter-token latency come from the engine itself.

Thread safety: each request owns its IOBinding and KV cache; the session is shared. Providers that
take one Run at a time (DirectML) get a per-session lock around Run.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from harness.errors import HarnessError
from harness.model.folder import ModelFolder, check_session_io, load_model_folder
from harness.model.kv_cache import GrowingKV, KVCache, SharedBufferKV
from harness.model.length_inputs import SEQLENS_INPUT, TOTAL_LENGTH_INPUT
from harness.model.rope_switch import switch_length
from harness.model.sampling import Sampler, SamplingParams
from harness.model.tokenizer import Phi3Tokenizer
from harness.providers import ProviderSettings, create_session, folder_graph, import_onnxruntime, placement_for
from harness.targets.base import Request, StreamItem, TokenEvent, Usage

KV_STRATEGIES = ("auto", "shared", "growing")

# Prompt tokens per prefill Run. Chunks keep the logits of a long prompt (every position's row)
# and the activations to this many rows. GroupQueryAttention on the CPU provider takes a chunk after
# cached tokens; other providers get the whole prompt in one Run unless told otherwise (the
# provider record's chunked_prefill, harness/providers/spec.py).
PREFILL_CHUNK = 256

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


@dataclass
class Generation:
    """A finished request, for callers that want the whole result at once."""

    prompt_ids: list[int]
    output_ids: list[int] = field(default_factory=list)
    token_ns: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str = "stop"


class Engine:
    name = "engine"

    def __init__(
        self,
        folder: ModelFolder,
        session: Any,
        settings: ProviderSettings,
        kv_strategy: str = "auto",
        prefill_chunk: int | None = None,
    ) -> None:
        if kv_strategy not in KV_STRATEGIES:
            raise HarnessError(f"unknown kv strategy {kv_strategy!r}: use one of {', '.join(KV_STRATEGIES)}")
        check_session_io(folder, session)
        self.folder = folder
        self.config = folder.config
        self.session = session
        self.settings = settings
        self.provider = settings.name
        self.tokenizer = Phi3Tokenizer(folder.tokenizer_path, folder.config.bos_token_id)
        self.kv_strategy = self._resolve_strategy(kv_strategy)
        self._ort = import_onnxruntime()
        self._kv_placement = placement_for(settings)  # the session's device and adapter
        self._kv_dtype = self._input_dtype(self.config.names.past(0)[0])
        self._logits_dtype = self._output_dtype(self.config.names.logits)
        # A graph edited to return the last position's logits only (model/last_logits.py) says so in
        # its declared output shape; then a prefill Run writes one row, like a decode step.
        self.last_logits_only = self._logits_declared_for_one_position()
        # The lengths edit (model/length_inputs.py): the Run reads two int32 lengths the engine writes
        # in place, instead of the attention mask.
        self.feeds_lengths = SEQLENS_INPUT in {value.name for value in session.get_inputs()}
        # Part of a case's identity in records (fp32 | fp16); int4 weights show in the model's hash.
        self.precision = {"float32": "fp32", "float16": "fp16"}.get(self._kv_dtype.name, self._kv_dtype.name)
        self._eos = frozenset(self.config.eos_token_ids)
        self._run_lock = threading.Lock() if settings.serial_runs else contextlib.nullcontext()
        self.prefill_chunk = self._resolve_chunk(prefill_chunk)  # 0: the whole prompt in one Run
        # LongRoPE graphs (Phi-3 128k and Phi-3.5 cpu/cuda builds) switch rotary caches above this
        # total length; None: no switch in the graph (harness/model/rope_switch.py)
        self.rope_switch = switch_length(folder.onnx_path)
        self._prefill_buffers: list[np.ndarray] = []  # reused across requests: no page faults per prompt
        self._buffers_lock = threading.Lock()
        self.load_seconds = 0.0

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        settings: ProviderSettings | None = None,
        kv_strategy: str = "auto",
        prefill_chunk: int | None = None,
        session: Any = None,
        session_seconds: float = 0.0,
    ) -> "Engine":
        """Open a model folder on a provider (commands resolve ``--model`` to a folder first).

        ``session``: one already opened on this folder's graph with these ``settings`` (the provider
        probe's, harness/providers/probe.py), used instead of opening the model again;
        ``session_seconds``, what opening it took, counts in ``load_seconds``. A session opened for
        profiling is never passed: profiling is fixed when ORT creates a session.
        """
        started = time.perf_counter()
        folder = load_model_folder(model_dir)
        settings = settings or ProviderSettings()
        if session is not None and settings.profile_prefix is not None:
            raise HarnessError("Engine.load: a profiled engine needs its own session (profiling is set when it is created)")
        if session is None:
            session = create_session(folder_graph(folder, settings), settings)
        engine = cls(folder, session, settings, kv_strategy, prefill_chunk)
        engine.load_seconds = time.perf_counter() - started + session_seconds
        return engine

    # -- the Target protocol ------------------------------------------------------------------

    def stream(self, request: Request) -> Iterator[StreamItem]:
        prompt_ids = self.prompt_ids(request)
        max_new = self._check_lengths(len(prompt_ids), request.max_new_tokens)
        sampler = Sampler(
            SamplingParams(request.greedy, request.temperature, request.top_k, request.top_p, request.seed)
        )
        decoder = self.tokenizer.stream_decoder()
        step = _Step(self, capacity=len(prompt_ids) + max_new)
        logits = step.prefill(prompt_ids, whole=self._beyond_rope_switch(len(prompt_ids)))
        generated: list[int] = []
        while True:
            token = sampler(logits)
            t_ns = time.perf_counter_ns()
            generated.append(token)
            is_eos = token in self._eos and not request.ignore_eos
            last = is_eos or len(generated) == max_new
            text = "" if is_eos else decoder.add(token)
            if last:
                finish_reason = "stop" if is_eos else "length"
                text += decoder.flush()  # bytes still held back at the very end
            yield TokenEvent(token, text, t_ns)
            if last:
                break
            total = len(prompt_ids) + len(generated)  # the next Run's sequence length
            if self.rope_switch is not None and total == self.rope_switch + 1:  # the first Run past the switch
                logits = step.restart(prompt_ids + generated)  # the cache holds short-factor keys: feed it all again
            else:
                logits = step.decode(token, past_length=total - 1)
        yield Usage(len(prompt_ids), len(generated), finish_reason, tuple(prompt_ids))

    def close(self) -> None:
        self.session = None

    # -- conveniences ---------------------------------------------------------------------------

    def prompt_ids(self, request: Request) -> list[int]:
        if request.prompt_ids is not None:
            return list(request.prompt_ids)
        if not request.messages:
            raise HarnessError("request has neither prompt_ids nor messages: give a prompt")
        return self.tokenizer.encode_chat(request.messages, add_bos=True)

    def generate(self, request: Request) -> Generation:
        result = Generation(prompt_ids=[])
        for item in self.stream(request):
            if isinstance(item, TokenEvent):
                result.output_ids.append(item.token_id)
                result.token_ns.append(item.t_ns)
            else:
                result.prompt_ids, result.finish_reason = list(item.prompt_ids), item.finish_reason
        result.text = self.tokenizer.decode(result.output_ids)
        return result

    def end_profiling(self) -> str | None:
        """Stop ORT profiling and return the profile file (only when settings.profile_prefix was set)."""
        if self.settings.profile_prefix is None or self.session is None:
            return None
        return self.session.end_profiling()

    @contextlib.contextmanager
    def prefill_buffer(self, rows: int) -> Iterator[np.ndarray]:
        """A host buffer for ``rows`` rows of prompt logits, lent for one prefill and kept for the next."""
        with self._buffers_lock:
            fitting = [i for i, b in enumerate(self._prefill_buffers) if b.shape[1] >= rows]
            buffer = self._prefill_buffers.pop(fitting[0]) if fitting else None
        keep = self.prefill_chunk or PREFILL_CHUNK  # larger (whole-prompt) buffers are not kept
        if buffer is None:
            buffer = np.empty((1, max(rows, keep), self.config.vocab_size), self._logits_dtype)
        try:
            yield buffer
        finally:
            if buffer.shape[1] <= keep:
                with self._buffers_lock:
                    self._prefill_buffers.append(buffer)

    # -- internals --------------------------------------------------------------------------------

    def _beyond_rope_switch(self, total: int) -> bool:
        return self.rope_switch is not None and total > self.rope_switch

    def _resolve_chunk(self, requested: int | None) -> int:
        if requested is None:
            return PREFILL_CHUNK if self.settings.spec.chunked_prefill else 0
        if requested < 0:
            raise HarnessError(f"prefill_chunk must be >= 0 (got {requested}): 0 feeds the whole prompt at once")
        return requested

    def _resolve_strategy(self, requested: str) -> str:
        strategy = requested
        if requested == "auto":
            strategy = "shared" if self.config.past_present_share_buffer else "growing"
        spec = self.settings.spec
        if strategy not in spec.kv_strategies:
            raise HarnessError(
                f"the {strategy} KV strategy is wrong on {spec.name}: {spec.kv_strategy_note}: "
                f"use a model folder built for {spec.name} (kv strategy {', '.join(spec.kv_strategies)})"
            )
        return strategy

    def _check_lengths(self, prompt_length: int, max_new_tokens: int) -> int:
        limit = min(self.config.context_length, self.config.max_length)
        if prompt_length == 0:
            raise HarnessError("the prompt is empty: give at least one token")
        if prompt_length >= limit:
            raise HarnessError(
                f"the prompt is {prompt_length} tokens but the model's context is {limit}: "
                f"shorten it to at most {limit - 1} tokens"
            )
        if max_new_tokens < 1:
            raise HarnessError(f"max_new_tokens must be >= 1 (got {max_new_tokens})")
        return min(max_new_tokens, limit - prompt_length)

    def _input_dtype(self, name: str) -> np.dtype:
        kind = next(i.type for i in self.session.get_inputs() if i.name == name)
        return self._numpy_type(kind, name)

    def _logits_declared_for_one_position(self) -> bool:
        shape = next(o.shape for o in self.session.get_outputs() if o.name == self.config.names.logits)
        return len(shape) == 3 and shape[1] == 1

    def _output_dtype(self, name: str) -> np.dtype:
        kind = next(o.type for o in self.session.get_outputs() if o.name == name)
        return self._numpy_type(kind, name)

    def _numpy_type(self, kind: str, name: str) -> np.dtype:
        if kind not in _ORT_TYPES:
            raise HarnessError(f"{name} has type {kind}; this engine runs float32 or float16 models")
        return np.dtype(_ORT_TYPES[kind])


class _Step:
    """One request's decoding state: its IOBinding, KV cache and reusable host buffers.

    Bindings are made once where the buffer stays the same: the one-token input and the one-row
    logits output are numpy buffers ORT reads and writes in place, so a decode step rebinds only the
    attention mask (its length grows) and, on the dml layout, the position ids. On a graph with the
    lengths edit the mask's place is taken by two int32 buffers, bound once and written in place.
    """

    def __init__(self, engine: Engine, capacity: int) -> None:
        self.engine = engine
        names = engine.config.names
        self.names = names
        self.binding = engine.session.io_binding()
        self.kv = self._new_kv(capacity)
        self.mask = None if engine.feeds_lengths else np.ones((1, capacity), dtype=np.int64)
        self.positions = np.arange(capacity, dtype=np.int64).reshape(1, capacity)
        self.token = np.zeros((1, 1), dtype=np.int64)
        self._token_value = engine._ort.OrtValue.ortvalue_from_numpy(self.token)
        # decode steps write their one row of logits into the same host buffer every time
        self.step_logits = np.zeros((1, 1, engine.config.vocab_size), dtype=engine._logits_dtype)
        self._step_logits_value = engine._ort.OrtValue.ortvalue_from_numpy(self.step_logits)
        self._kv_bound = False
        self._decode_bound = False
        if engine.feeds_lengths:  # total - 1 per sequence, and total, written before each Run
            self.seqlens = np.zeros((1,), dtype=np.int32)
            self.total_length = np.zeros((), dtype=np.int32)
            self._length_values = [engine._ort.OrtValue.ortvalue_from_numpy(b) for b in (self.seqlens, self.total_length)]
            self.binding.bind_ortvalue_input(SEQLENS_INPUT, self._length_values[0])
            self.binding.bind_ortvalue_input(TOTAL_LENGTH_INPUT, self._length_values[1])

    def _new_kv(self, capacity: int) -> KVCache:
        engine = self.engine
        if engine.kv_strategy == "shared":
            return SharedBufferKV(engine.config, capacity, engine._kv_dtype, engine._kv_placement, engine._ort)
        return GrowingKV(engine.config, engine._kv_dtype, engine._kv_placement, engine._ort)

    def prefill(self, ids: list[int], whole: bool = False) -> np.ndarray:
        """Feed the prompt in chunks of ``engine.prefill_chunk`` tokens (``whole``: in one Run); return
        the last position's logits.

        A graph as the builder makes it returns logits for every position it is fed (a 3,900-token
        prompt: 477 MiB in fp32); chunks bound to one reused host buffer keep that to ``chunk``
        rows, and only the last row is kept. The last-position edit writes one row per Run.
        """
        chunk = len(ids) if whole else self.engine.prefill_chunk or len(ids)
        if self.engine.last_logits_only:
            self.binding.bind_ortvalue_output(self.names.logits, self._step_logits_value)
            self._feed(ids, chunk)
            return self.step_logits[0, 0]
        with self.engine.prefill_buffer(min(chunk, len(ids))) as buffer:
            rows = self._feed(ids, chunk, buffer)
            return buffer[0, rows - 1].copy()

    def _feed(self, ids: list[int], chunk: int, buffer: np.ndarray | None = None) -> int:
        """Run ``ids`` in chunks; with ``buffer``, each chunk's logits go into its first rows (the
        graph returns every position's). Returns the last chunk's length."""
        ort = self.engine._ort
        for start in range(0, len(ids), chunk):
            part = np.asarray(ids[start : start + chunk], dtype=np.int64).reshape(1, -1)
            self.binding.bind_cpu_input(self.names.input_ids, part)
            if buffer is not None:
                rows = ort.OrtValue.ortvalue_from_numpy(buffer[:, : part.shape[1]])
                self.binding.bind_ortvalue_output(self.names.logits, rows)
            self._run(past_length=start, seq=part.shape[1])
        self._decode_bound = False  # input_ids is bound to the prompt, not the one-token buffer
        return part.shape[1]

    def restart(self, ids: list[int]) -> np.ndarray:
        """Forget the cache and feed the whole sequence in one Run; return its last position's logits.

        For LongRoPE graphs when the sequence first passes the switch (harness/model/rope_switch.py).
        A shared buffer is reused: GroupQueryAttention treats a Run from position 0 as a first prompt
        and overwrites it; a growing cache starts empty again.
        """
        if not self.kv.in_place:
            self.kv, self._kv_bound = self._new_kv(capacity=len(ids)), False
        return self.prefill(ids, whole=True)

    def decode(self, token: int, past_length: int) -> np.ndarray:
        """Feed one token after ``past_length`` cached ones; return its logits (a reused buffer)."""
        if not self._decode_bound:
            self.binding.bind_ortvalue_input(self.names.input_ids, self._token_value)
            self.binding.bind_ortvalue_output(self.names.logits, self._step_logits_value)
            self._decode_bound = True
        self.token[0, 0] = token
        self._run(past_length, seq=1)
        return self.step_logits[0, 0]

    def _run(self, past_length: int, seq: int) -> None:
        binding, names = self.binding, self.names
        total = past_length + seq
        if self.engine.feeds_lengths:
            self.seqlens[0], self.total_length[()] = total - 1, total
        else:
            binding.bind_cpu_input(names.attention_mask, self.mask[:, :total])
        if names.position_ids:
            binding.bind_cpu_input(names.position_ids, self.positions[:, past_length:total])
        if not self._kv_bound or not self.kv.in_place:
            self.kv.bind(binding)  # after logits: get_outputs() returns logits first, then the KV
            self._kv_bound = True
        with self.engine._run_lock:
            # No RunOptions: with one, ORT's Python wrapper probes a config key that raises when unset,
            # which costs more per step than a tiny model's whole decode step.
            self.engine.session.run_with_iobinding(binding)
        if not self.kv.in_place:
            self.kv.after_run(binding, binding.get_outputs())
