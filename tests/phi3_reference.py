"""An independent float64 numpy Phi-3 decoder, to check ONNX Runtime (and the engine) against.

Test helper only; it shares no code with ``harness/``. It reads the shape from genai_config.json
and the weights from the .onnx (+ .onnx.data) through ``onnx.numpy_helper``, finding each weight by
the node that consumes it (builder node names: ``/model/layers.{i}/attn/qkv_proj/...``, or q/k/v_proj
separately as DirectML builds have them). Everything
else is written from the Phi-3 definition, not read from the graph: rope theta 10000 with
rotate-half (non-interleaved) rotary, RMSNorm eps 1e-5, attention scale 1/sqrt(head_size), query
head h reading kv head h // (heads / kv_heads), SwiGLU MLP, causal attention. So a wrong cos cache,
epsilon or scale in the graph shows up as a logit difference. int4 (MatMulNBits) weights are
dequantized here from the packed blobs; the fp16 weights are upcast.

Batch rows are independent full sequences (no padding).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

ROPE_THETA = 10000.0
RMS_EPS = 1e-5


@dataclass(frozen=True)
class Layer:
    input_norm: np.ndarray
    q: np.ndarray  # [hidden, heads * head_size]
    k: np.ndarray
    v: np.ndarray
    o: np.ndarray
    post_norm: np.ndarray
    gate: np.ndarray
    up: np.ndarray
    down: np.ndarray


@dataclass(frozen=True)
class Weights:
    num_heads: int
    num_kv_heads: int
    head_size: int
    embed: np.ndarray  # [vocab, hidden]
    layers: tuple[Layer, ...]
    final_norm: np.ndarray
    lm_head: np.ndarray  # [hidden, vocab]


def load_weights(model_dir: Path | str) -> Weights:
    folder = Path(model_dir)
    data = folder / "model.onnx.data"
    stamp = (data.stat().st_mtime_ns if data.exists() else 0, (folder / "model.onnx").stat().st_mtime_ns)
    return _load_weights(str(folder.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _load_weights(folder: str, _stamp: tuple[int, int]) -> Weights:
    config = json.loads((Path(folder) / "genai_config.json").read_text(encoding="utf-8"))["model"]["decoder"]
    model = onnx.load(str(Path(folder) / config["filename"]))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = list(model.graph.node)

    def weight_of(prefix: str) -> np.ndarray:
        """The float64 weight consumed by the one weight-bearing node whose name starts with prefix."""
        found = [n for n in nodes if n.name.startswith(prefix) and any(i in tensors for i in n.input)]
        assert len(found) == 1, f"expected one node named {prefix}*, found {[n.name for n in found]}"
        node = found[0]
        if node.op_type == "MatMulNBits":
            return _dequantize_matmulnbits(node, tensors)
        inputs = [tensors[i] for i in node.input if i in tensors]
        assert len(inputs) == 1, f"{node.name}: expected one weight input"
        return inputs[0].astype(np.float64)

    def qkv_of(p: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Separate q/k/v projections (DirectML builds), or the packed qkv_proj split by width (cpu, cuda)."""
        if not any(n.name.startswith(f"{p}/attn/qkv_proj/") for n in nodes):
            return weight_of(f"{p}/attn/q_proj/"), weight_of(f"{p}/attn/k_proj/"), weight_of(f"{p}/attn/v_proj/")
        packed = weight_of(f"{p}/attn/qkv_proj/")
        q_width = config["num_attention_heads"] * config["head_size"]
        kv_width = config["num_key_value_heads"] * config["head_size"]
        assert packed.shape[1] == q_width + 2 * kv_width, f"{p}: qkv_proj has {packed.shape[1]} columns"
        return packed[:, :q_width], packed[:, q_width : q_width + kv_width], packed[:, q_width + kv_width :]

    layers = []
    n_layers = config["num_hidden_layers"]
    for i in range(n_layers):
        p = f"/model/layers.{i}"
        q, k, v = qkv_of(p)
        layers.append(Layer(
            input_norm=weight_of(f"{p}/input_layernorm/"),
            q=q, k=k, v=v, o=weight_of(f"{p}/attn/o_proj/"),
            post_norm=weight_of(f"{p}/post_attention_layernorm/"),
            gate=weight_of(f"{p}/mlp/gate_proj/"), up=weight_of(f"{p}/mlp/up_proj/"),
            down=weight_of(f"{p}/mlp/down_proj/"),
        ))
    return Weights(
        num_heads=config["num_attention_heads"],
        num_kv_heads=config["num_key_value_heads"],
        head_size=config["head_size"],
        embed=weight_of("/model/embed_tokens/"),
        layers=tuple(layers),
        final_norm=weight_of(f"/model/layers.{n_layers}/final_norm_layernorm/"),
        lm_head=weight_of("/lm_head/"),
    )


def _dequantize_matmulnbits(node: onnx.NodeProto, tensors: dict[str, np.ndarray]) -> np.ndarray:
    """[K, N] float64 from MatMulNBits (bits=4): codes low nibble first, w = (code - zp) * scale."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["bits"] == 4, "only 4-bit MatMulNBits is handled"
    k, n, block = attrs["K"], attrs["N"], attrs["block_size"]
    n_blocks = -(-k // block)
    packed = tensors[node.input[1]].reshape(n, n_blocks, block // 2)
    codes = np.empty((n, n_blocks, block), dtype=np.float64)
    codes[:, :, 0::2] = packed & 0x0F
    codes[:, :, 1::2] = packed >> 4
    scales = tensors[node.input[2]].astype(np.float64).reshape(n, n_blocks, 1)
    if len(node.input) > 3 and node.input[3]:
        zp_bytes = tensors[node.input[3]].reshape(n, -1)
        zps = np.stack([zp_bytes & 0x0F, zp_bytes >> 4], axis=-1).reshape(n, -1)[:, :n_blocks]
        zero = zps.astype(np.float64)[..., None]
    else:
        zero = 8.0
    return ((codes - zero) * scales).reshape(n, n_blocks * block)[:, :k].T


def _rms_norm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + RMS_EPS) * weight


def _rotate(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rotate-half rope on x [seq, heads, head_size] at absolute positions [seq]."""
    half = x.shape[-1] // 2
    inv_freq = ROPE_THETA ** (-np.arange(half, dtype=np.float64) * 2.0 / x.shape[-1])
    angle = positions[:, None].astype(np.float64) * inv_freq[None, :]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    first, second = x[..., :half], x[..., half:]
    return np.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class ReferenceDecoder:
    """One sequence with its own KV cache: ``step(ids)`` appends ids and returns their logits."""

    weights: Weights
    keys: list[np.ndarray] = field(default_factory=list)  # per layer [kv_heads, past, head_size]
    values: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def open(cls, model_dir: Path | str) -> "ReferenceDecoder":
        w = load_weights(model_dir)
        empty = np.zeros((w.num_kv_heads, 0, w.head_size))
        return cls(w, [empty] * len(w.layers), [empty] * len(w.layers))

    @property
    def length(self) -> int:
        return self.keys[0].shape[1]

    def step(self, ids: Sequence[int]) -> np.ndarray:
        """Logits [len(ids), vocab] (float64) for ids placed after everything seen so far."""
        w = self.weights
        positions = np.arange(self.length, self.length + len(ids))
        x = w.embed[np.asarray(ids, dtype=np.int64)]
        for i, layer in enumerate(w.layers):
            x = x + self._attention(i, layer, _rms_norm(x, layer.input_norm), positions)
            h = _rms_norm(x, layer.post_norm)
            gate = h @ layer.gate
            x = x + (gate / (1.0 + np.exp(-gate)) * (h @ layer.up)) @ layer.down
        return _rms_norm(x, w.final_norm) @ w.lm_head

    def _attention(self, i: int, layer: Layer, h: np.ndarray, positions: np.ndarray) -> np.ndarray:
        w = self.weights
        n, d = len(positions), w.head_size
        q = _rotate((h @ layer.q).reshape(n, w.num_heads, d), positions)
        k = _rotate((h @ layer.k).reshape(n, w.num_kv_heads, d), positions)
        v = (h @ layer.v).reshape(n, w.num_kv_heads, d)
        self.keys[i] = np.concatenate([self.keys[i], k.transpose(1, 0, 2)], axis=1)
        self.values[i] = np.concatenate([self.values[i], v.transpose(1, 0, 2)], axis=1)
        total = self.keys[i].shape[1]
        visible = np.arange(total)[None, :] <= positions[:, None]  # causal over absolute positions
        group = w.num_heads // w.num_kv_heads
        out = np.empty((n, w.num_heads, d))
        for head in range(w.num_heads):
            kv = head // group
            scores = q[:, head, :] @ self.keys[i][kv].T / np.sqrt(d)
            probs = _softmax(np.where(visible, scores, -np.inf))
            out[:, head, :] = probs @ self.values[i][kv]
        return out.reshape(n, w.num_heads * d) @ layer.o


def reference_logits(model_dir: Path | str, input_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Float64 logits of a prompt pass: [seq, vocab] for 1-D ids, [batch, seq, vocab] for 2-D."""
    ids = np.asarray(input_ids, dtype=np.int64)
    if ids.ndim == 1:
        return ReferenceDecoder.open(model_dir).step(ids.tolist())
    return np.stack([ReferenceDecoder.open(model_dir).step(row.tolist()) for row in ids])


def reference_greedy(
    model_dir: Path | str, prompt_ids: Sequence[int], n_new: int, stop_ids: Iterable[int] = ()
) -> list[int]:
    """Greedy continuation: up to ``n_new`` argmax tokens, using the decoder's own KV cache.

    Stops early after producing a token in ``stop_ids`` (that token is included, as the engine does).
    """
    decoder = ReferenceDecoder.open(model_dir)
    stops = set(stop_ids)
    logits = decoder.step(list(prompt_ids))[-1]
    out: list[int] = []
    while len(out) < n_new:
        token = int(np.argmax(logits))
        out.append(token)
        if token in stops:
            break
        logits = decoder.step([token])[-1]
    return out
