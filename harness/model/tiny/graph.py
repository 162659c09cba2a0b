"""The tiny Phi-3 decoder graph, in the node form the onnxruntime-genai model builder emits.

Per layer: (Skip)SimplifiedLayerNormalization -> QKV projection -> GroupQueryAttention -> o_proj
MatMul -> SkipSimplifiedLayerNormalization -> SwiGLU MLP
(gate * sigmoid(gate) * up -> down). Then a final skip norm and the lm_head MatMul -> ``logits``.
int4 folders use MatMulNBits for every projection and lm_head; the embedding stays float.

The two layouts follow the model builder's GroupQueryAttention settings: the cpu layout (its cpu
and cuda builds) has one packed ``qkv_proj`` MatMul whose output GQA splits (key and value inputs
empty) and rotary inside GQA; the dml layout (DirectML builds, where GQA takes no packed QKV) has
separate q/k/v MatMuls, a ``position_ids`` input and separate com.microsoft RotaryEmbedding nodes.

SimplifiedLayerNormalization is registered by ONNX Runtime in the ONNX domain (not com.microsoft);
SkipSimplifiedLayerNormalization, GroupQueryAttention, RotaryEmbedding and MatMulNBits are
com.microsoft. ``onnx.checker`` does not know these: validate by loading in ONNX Runtime.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from harness.model.tiny import spec as names
from harness.model.tiny.quant import quantize_int4
from harness.model.tiny.spec import TinySpec, Variant
from harness.model.tiny.weights import layer_prefix

MS = "com.microsoft"
OPSET = 21
IR_VERSION = 10
_ONNX_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}


class _GraphWriter:
    """Collects nodes and initializers; names outputs ``<node name>/output_<i>`` like the builder."""

    def __init__(self, float_dtype: str) -> None:
        self.float_dtype = np.dtype(float_dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._constants: dict[str, str] = {}

    def weight(self, name: str, array: np.ndarray, cast: bool = True) -> str:
        data = array.astype(self.float_dtype) if cast else array
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(data), name))
        return name

    def int64(self, value: int | list[int]) -> str:
        """A shared int64 constant (scalar for an int, 1-D for a list)."""
        name = f"/model/constants/INT64/{value}"
        if name not in self._constants:
            self._constants[name] = self.weight(name, np.array(value, dtype=np.int64), cast=False)
        return name

    def node(
        self, op: str, inputs: list[str], name: str, outputs: int | list[str] = 1, domain: str = "", **attrs: Any
    ) -> list[str]:
        if isinstance(outputs, int):
            outputs = [f"{name}/output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs))
        return outputs


def build_graph(
    spec: TinySpec, variant: Variant, weights: dict[str, np.ndarray], rotary: tuple[np.ndarray, np.ndarray]
) -> onnx.ModelProto:
    """The whole decoder as an in-memory ModelProto (weights inline; the caller externalises them)."""
    builder = _DecoderBuilder(spec, variant, weights)
    builder.decoder(rotary)
    g = builder.g
    graph = helper.make_graph(
        g.nodes, "main_graph", _graph_inputs(spec, variant), _graph_outputs(spec, variant), g.initializers
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
        ir_version=IR_VERSION,
        producer_name="phi3-harness tiny-model",
    )


class _DecoderBuilder:
    def __init__(self, spec: TinySpec, variant: Variant, weights: dict[str, np.ndarray]) -> None:
        self.spec, self.variant, self.weights = spec, variant, weights
        self.g = _GraphWriter(variant.float_dtype)

    def decoder(self, rotary: tuple[np.ndarray, np.ndarray]) -> None:
        g, spec = self.g, self.spec
        caches = (g.weight("cos_cache", rotary[0]), g.weight("sin_cache", rotary[1]))
        lengths = self._mask_to_gqa_lengths()
        embed = g.weight("model.embed_tokens.weight", self.weights["model.embed_tokens.weight"])
        hidden = g.node("Gather", [embed, names.INPUT_IDS], "/model/embed_tokens/Gather")[0]
        residual = hidden
        for layer in range(spec.num_layers):
            p, base = layer_prefix(layer), f"/model/layers.{layer}"
            if layer == 0:
                normed = self._first_norm(hidden, f"{p}.input_layernorm.weight")
            else:
                normed, residual = self._skip_norm(hidden, residual, f"{p}.input_layernorm", f"{base}/input_layernorm")
            attn = self._attention(layer, normed, lengths, caches)
            normed, residual = self._skip_norm(
                attn, residual, f"{p}.post_attention_layernorm", f"{base}/post_attention_layernorm"
            )
            hidden = self._mlp(layer, normed)
        final = f"/model/layers.{spec.num_layers}/final_norm_layernorm"
        normed, _ = self._skip_norm(hidden, residual, "model.norm", final)
        self._matmul("/lm_head/MatMul", normed, "lm_head.MatMul.weight", output=names.LOGITS)

    def _mask_to_gqa_lengths(self) -> tuple[str, str]:
        """seqlens_k = sum(mask, 1) - 1 (int32 [batch]); total = mask.shape[1] (int32 scalar)."""
        g, base = self.g, "/model/attn_mask_reformat/attn_mask_subgraph"
        summed = g.node("ReduceSum", [names.ATTENTION_MASK, g.int64([1])], f"{base}/ReduceSum", keepdims=0)[0]
        minus_one = g.node("Sub", [summed, g.int64(1)], f"{base}/Sub")[0]
        seqlens_k = g.node("Cast", [minus_one], f"{base}/Sub/Cast", to=TensorProto.INT32)[0]
        shape = g.node("Shape", [names.ATTENTION_MASK], f"{base}/Shape")[0]
        width = g.node("Gather", [shape, g.int64(1)], f"{base}/Gather", axis=0)[0]
        total = g.node("Cast", [width], f"{base}/Gather/Cast", to=TensorProto.INT32)[0]
        return seqlens_k, total

    def _first_norm(self, x: str, weight_name: str) -> str:
        weight = self.g.weight(weight_name, self.weights[weight_name])
        name = "/model/layers.0/input_layernorm/LayerNorm"
        return self.g.node(
            "SimplifiedLayerNormalization", [x, weight], name, axis=-1, epsilon=self.spec.rms_eps, stash_type=1
        )[0]

    def _skip_norm(self, x: str, residual: str, weight_name: str, node_base: str) -> tuple[str, str]:
        """RMSNorm(x + residual); returns (normed, x + residual) - the builder's residual chain."""
        weight = self.g.weight(f"{weight_name}.weight", self.weights[f"{weight_name}.weight"])
        name = f"{node_base}/SkipLayerNorm"
        outputs = [f"{name}/output_0", "", "", f"{name}/output_3"]
        self.g.node(
            "SkipSimplifiedLayerNormalization", [x, residual, weight], name,
            outputs=outputs, domain=MS, epsilon=self.spec.rms_eps,
        )
        return outputs[0], outputs[3]

    def _matmul(
        self, name: str, x: str, weight_name: str, output: str | None = None, weight: np.ndarray | None = None
    ) -> str:
        """A projection by ``weights[weight_name]`` (or ``weight``, stored under that name)."""
        g = self.g
        weight = self.weights[weight_name] if weight is None else weight
        outputs: int | list[str] = [output] if output else 1
        if not self.variant.quantized:
            return g.node("MatMul", [x, g.weight(weight_name, weight)], name, outputs=outputs)[0]
        q = quantize_int4(weight, self.spec.int4_block_size, scale_dtype=g.float_dtype.type)
        packed = g.weight(f"{weight_name}_Q4", q.packed, cast=False)
        scales = g.weight(f"{weight_name}_scales", q.scales, cast=False)
        return g.node(
            "MatMulNBits", [x, packed, scales], name.replace("/MatMul", "/MatMulNBits"), outputs=outputs, domain=MS,
            K=q.k, N=q.n, bits=4, block_size=q.block_size, accuracy_level=self.spec.int4_accuracy_level,
        )[0]

    def _attention(self, layer: int, x: str, lengths: tuple[str, str], caches: tuple[str, str]) -> str:
        g, spec = self.g, self.spec
        base, p = f"/model/layers.{layer}/attn", f"{layer_prefix(layer)}.attn"
        past = [names.PAST_KEY % layer, names.PAST_VALUE % layer]
        if self.variant.layout == "dml":
            # DirectML build: separate q/k/v, rotary as its own nodes on position_ids, GQA without rotary.
            q, k, v = (self._matmul(f"{base}/{m}_proj/MatMul", x, f"{p}.{m}_proj.MatMul.weight") for m in "qkv")
            q, k = (
                g.node("RotaryEmbedding", [t, names.POSITION_IDS, *caches], f"{base}/{m}_rotary/RotaryEmbedding",
                       domain=MS, interleaved=0)[0]
                for t, m in ((q, "q"), (k, "k"))
            )
            inputs, do_rotary = [q, k, v, *past, *lengths], 0
        else:
            # cpu/cuda build: one MatMul reads the three weights in one pass; GQA splits its output.
            packed = np.concatenate([self.weights[f"{p}.{m}_proj.MatMul.weight"] for m in "qkv"], axis=1)
            qkv = self._matmul(f"{base}/qkv_proj/MatMul", x, f"{p}.qkv_proj.MatMul.weight", weight=packed)
            inputs, do_rotary = [qkv, "", "", *past, *lengths, *caches], 1
        name = f"{base}/GroupQueryAttention"
        outputs = [f"{name}/output_0", names.PRESENT_KEY % layer, names.PRESENT_VALUE % layer]
        g.node(
            "GroupQueryAttention", inputs, name, outputs=outputs, domain=MS,
            num_heads=spec.num_heads, kv_num_heads=spec.num_kv_heads, scale=1.0 / float(np.sqrt(spec.head_size)),
            do_rotary=do_rotary, rotary_interleaved=0, local_window_size=-1,
        )
        return self._matmul(f"{base}/o_proj/MatMul", outputs[0], f"{p}.o_proj.MatMul.weight")

    def _mlp(self, layer: int, x: str) -> str:
        """SwiGLU: down(silu(gate(x)) * up(x)), silu written as gate * sigmoid(gate) like the builder."""
        g, base, p = self.g, f"/model/layers.{layer}/mlp", f"{layer_prefix(layer)}.mlp"
        gate = self._matmul(f"{base}/gate_proj/MatMul", x, f"{p}.gate_proj.MatMul.weight")
        up = self._matmul(f"{base}/up_proj/MatMul", x, f"{p}.up_proj.MatMul.weight")
        sigmoid = g.node("Sigmoid", [gate], f"{base}/act_fn/Sigmoid")[0]
        silu = g.node("Mul", [gate, sigmoid], f"{base}/act_fn/Mul")[0]
        product = g.node("Mul", [silu, up], f"{base}/Mul")[0]
        return self._matmul(f"{base}/down_proj/MatMul", product, f"{p}.down_proj.MatMul.weight")


def _graph_inputs(spec: TinySpec, variant: Variant) -> list[onnx.ValueInfoProto]:
    kv_type = _ONNX_TYPES[variant.float_dtype]
    past_shape = ["batch_size", spec.num_kv_heads, "past_sequence_length", spec.head_size]
    inputs = [
        helper.make_tensor_value_info(names.INPUT_IDS, TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info(names.ATTENTION_MASK, TensorProto.INT64, ["batch_size", "total_sequence_length"]),
    ]
    if variant.layout == "dml":
        position_shape = ["batch_size", "sequence_length"]
        inputs.append(helper.make_tensor_value_info(names.POSITION_IDS, TensorProto.INT64, position_shape))
    for layer in range(spec.num_layers):
        inputs.append(helper.make_tensor_value_info(names.PAST_KEY % layer, kv_type, past_shape))
        inputs.append(helper.make_tensor_value_info(names.PAST_VALUE % layer, kv_type, past_shape))
    return inputs


def _graph_outputs(spec: TinySpec, variant: Variant) -> list[onnx.ValueInfoProto]:
    float_type = _ONNX_TYPES[variant.float_dtype]
    present_shape = ["batch_size", spec.num_kv_heads, "total_sequence_length", spec.head_size]
    logits_shape = ["batch_size", "sequence_length", spec.vocab_size]
    outputs = [helper.make_tensor_value_info(names.LOGITS, float_type, logits_shape)]
    for layer in range(spec.num_layers):
        outputs.append(helper.make_tensor_value_info(names.PRESENT_KEY % layer, float_type, present_shape))
        outputs.append(helper.make_tensor_value_info(names.PRESENT_VALUE % layer, float_type, present_shape))
    return outputs
