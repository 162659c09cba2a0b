"""The two KV-cache strategies of onnxruntime-genai, both on IOBinding.

SharedBufferKV (``search.past_present_share_buffer: true``): one buffer of the request's capacity per
tensor, bound as both past and present; GroupQueryAttention appends in place, nothing is copied.
GrowingKV: past starts empty and each step's ``present`` outputs become the next step's ``past``.
Either way the cache stays in the provider's memory between steps.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from harness.model.folder import ModelConfig
from harness.model.placement import Placement

class KVCache(Protocol):
    in_place: bool  # True when Run writes the cache in place and after_run has nothing to take
    def bind(self, binding: Any) -> None:
        """Bind past inputs and present outputs for the next Run."""

    def after_run(self, binding: Any, outputs: list[Any]) -> None:
        """Take what the Run produced (``outputs`` in binding order, logits first)."""


def _zeros(shape: tuple[int, ...], dtype: np.dtype, where: Placement, ort: Any) -> Any:
    """A zero-filled KV buffer where the session computes (the provider's device and adapter).

    Device memory starts uninitialised, and attention kernels may read slots beyond the sequence
    (a NaN there poisons the softmax even with a zero weight): onnxruntime-genai zero-fills its KV on
    every backend but WebGPU, and so does this. The host zeros are calloc'd pages, copied once per
    buffer: on a GPU that upload is part of each request's TTFT (a 1,056-token fp16 Phi-3-mini cache
    is ~415 MB), as genai's device memset is part of its own.
    """
    zeros = np.zeros(shape, dtype=dtype)
    if where.device == "cpu":
        return ort.OrtValue.ortvalue_from_numpy(zeros)
    return ort.OrtValue.ortvalue_from_numpy(zeros, where.device, where.device_id)


class SharedBufferKV:
    in_place = True

    def __init__(self, config: ModelConfig, capacity: int, dtype: np.dtype, where: Placement, ort: Any) -> None:
        shape = (1, config.num_kv_heads, capacity, config.head_size)
        self._names = [(config.names.past(i), config.names.present(i)) for i in range(config.num_layers)]
        self._buffers = [(_zeros(shape, dtype, where, ort), _zeros(shape, dtype, where, ort)) for _ in self._names]

    def bind(self, binding: Any) -> None:
        for ((past_k, past_v), (present_k, present_v)), (key, value) in zip(self._names, self._buffers):
            binding.bind_ortvalue_input(past_k, key)
            binding.bind_ortvalue_input(past_v, value)
            binding.bind_ortvalue_output(present_k, key)
            binding.bind_ortvalue_output(present_v, value)

    def after_run(self, binding: Any, outputs: list[Any]) -> None:
        pass  # written in place


class GrowingKV:
    in_place = False

    def __init__(self, config: ModelConfig, dtype: np.dtype, where: Placement, ort: Any) -> None:
        empty = (1, config.num_kv_heads, 0, config.head_size)
        self._names = [(config.names.past(i), config.names.present(i)) for i in range(config.num_layers)]
        self._past = [(_zeros(empty, dtype, where, ort), _zeros(empty, dtype, where, ort)) for _ in self._names]
        self._where = where

    def bind(self, binding: Any) -> None:
        for ((past_k, past_v), (present_k, present_v)), (key, value) in zip(self._names, self._past):
            binding.bind_ortvalue_input(past_k, key)
            binding.bind_ortvalue_input(past_v, value)
            binding.bind_output(present_k, self._where.device, self._where.device_id)
            binding.bind_output(present_v, self._where.device, self._where.device_id)

    def after_run(self, binding: Any, outputs: list[Any]) -> None:
        presents = outputs[1:]  # binding order: logits, then present key/value per layer
        self._past = [(presents[2 * i], presents[2 * i + 1]) for i in range(len(self._names))]
