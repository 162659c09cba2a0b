"""Block-wise 4-bit round-to-nearest (RTN) quantization in the MatMulNBits layout.

Symmetric: each block of ``block_size`` weights along K shares one scale ``absmax / 7``; a weight
``w`` is stored as ``clip(rint(w / scale), -7, 7) + 8`` (so the code 8 means zero and no zero-point
tensor is needed: MatMulNBits assumes 8 when ``zero_points`` is absent). Dequantized:
``(q - 8) * scale``. Codes 0 (= -8) are never produced; one level is given up for a symmetric grid.

Layout (com.microsoft MatMulNBits, B input): for a MatMul weight ``W`` of shape [K, N], the packed
tensor is uint8 [N, K / block_size, block_size / 2]: column n, block b, byte j holds the codes of
``W[b*bs + 2j, n]`` in its low nibble and ``W[b*bs + 2j + 1, n]`` in its high nibble. Scales are
[N * K / block_size], column-major over blocks (n outer, b inner).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BITS = 4
ZERO_CODE = 8
MAX_LEVEL = 7


@dataclass(frozen=True)
class QuantizedMatrix:
    packed: np.ndarray  # uint8 [N, K // block_size, block_size // 2]
    scales: np.ndarray  # float [N * K // block_size], dtype of the activations
    k: int
    n: int
    block_size: int


_COLUMNS_PER_PASS = 2048  # columns quantized at once: bounds the temporaries (the small preset's LM head is 394 MB)


def quantize_int4(weight: np.ndarray, block_size: int, scale_dtype: type = np.float32) -> QuantizedMatrix:
    """Quantize a MatMul weight [K, N]; K must be a multiple of ``block_size`` (an even number)."""
    k, n = weight.shape
    if k % block_size or block_size % 2:
        raise ValueError(f"K={k} must be a multiple of an even block_size={block_size}")
    packed = np.empty((n, k // block_size, block_size // 2), dtype=np.uint8)
    scales = np.empty((n, k // block_size), dtype=scale_dtype)
    for start in range(0, n, _COLUMNS_PER_PASS):
        stop = min(start + _COLUMNS_PER_PASS, n)
        packed[start:stop], scales[start:stop] = _quantize_columns(weight[:, start:stop], block_size, scale_dtype)
    return QuantizedMatrix(packed, scales.reshape(-1), k, n, block_size)


def _quantize_columns(weight: np.ndarray, block_size: int, scale_dtype: type) -> tuple[np.ndarray, np.ndarray]:
    k, n = weight.shape
    blocks = weight.astype(np.float32).T.reshape(n, k // block_size, block_size)
    # Scales are rounded to their stored dtype first, so codes are computed against the scale the
    # kernel will actually use.
    scales = (np.abs(blocks).max(axis=2) / MAX_LEVEL).astype(scale_dtype)
    safe = np.where(scales == 0, 1.0, scales.astype(np.float32))[..., None]
    codes = np.clip(np.rint(blocks / safe), -MAX_LEVEL, MAX_LEVEL).astype(np.int16) + ZERO_CODE
    codes = codes.astype(np.uint8)
    return codes[..., 0::2] | (codes[..., 1::2] << 4), scales


def dequantize_int4(q: QuantizedMatrix) -> np.ndarray:
    """The float32 [K, N] weight that ``q`` stands for (the builder's own check; tests have theirs)."""
    low = (q.packed & 0x0F).astype(np.float32)
    high = (q.packed >> 4).astype(np.float32)
    codes = np.empty(low.shape[:2] + (q.block_size,), dtype=np.float32)
    codes[..., 0::2], codes[..., 1::2] = low, high
    scales = q.scales.astype(np.float32).reshape(q.n, q.k // q.block_size, 1)
    return ((codes - ZERO_CODE) * scales).reshape(q.n, q.k).T
