"""What the embedded tiny Phi-3 is: architecture, precisions, layouts, and input/output names.

Shared by the graph builder, the weight generator and the genai_config writer so that the three
agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError

PRECISIONS = ("fp32", "fp16", "int4")
LAYOUTS = ("cpu", "dml")

INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
POSITION_IDS = "position_ids"
PAST_KEY = "past_key_values.%d.key"
PAST_VALUE = "past_key_values.%d.value"
LOGITS = "logits"
PRESENT_KEY = "present.%d.key"
PRESENT_VALUE = "present.%d.value"

MODEL_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"


@dataclass(frozen=True)
class TinySpec:
    """Phi-3 mini's shape, shrunk: same vocabulary, context, rope and norm settings."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int = 192
    vocab_size: int = 32064
    context_length: int = 4096
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    bos_token_id: int = 1
    pad_token_id: int = 32000
    eos_token_ids: tuple[int, ...] = (32000, 32001, 32007)
    int4_block_size: int = 32
    int4_accuracy_level: int = 4  # as the published cpu-int4-rtn-block-32-acc-level-4 build

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


# Size presets. "tiny" is the default embedded model: per-call overhead and the LM head dominate.
# "small" has two layers of Phi-3 mini's real shape (hidden 3072, 32 heads and KV heads of 96,
# MLP 8192) and the full-width LM head: 203 MB of int4 weights (325M parameters) are read per
# decode step, so decoding is bound by memory bandwidth, as a real Phi-3's is.
SIZES: dict[str, TinySpec] = {
    "tiny": TinySpec(),
    "small": TinySpec(hidden_size=3072, num_layers=2, num_heads=32, num_kv_heads=32, intermediate_size=8192),
}


def spec_for(size: str) -> TinySpec:
    if size not in SIZES:
        raise HarnessError(f"unknown model size {size!r}: use one of {', '.join(SIZES)}")
    return SIZES[size]


@dataclass(frozen=True)
class Variant:
    """One buildable folder: weight precision and graph layout.

    cpu layout: one packed qkv_proj MatMul, rotary inside GroupQueryAttention (as the cpu and cuda builds).
    dml layout: separate q/k/v MatMuls, ``position_ids`` input and separate RotaryEmbedding nodes (as the
    DirectML build), always fp16 activations and KV like the published DirectML folders.
    """

    precision: str = "fp32"
    layout: str = "cpu"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise HarnessError(f"unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if self.layout not in LAYOUTS:
            raise HarnessError(f"unknown layout {self.layout!r}: use one of {', '.join(LAYOUTS)}")
        if self.layout == "dml" and self.precision == "fp32":
            raise HarnessError(
                "the dml layout has fp16 activations and KV, as the published DirectML builds: "
                "use --precision fp16 or int4 with --layout dml"
            )

    @property
    def float_dtype(self) -> str:
        """Activation, KV and logits dtype: fp32 unless the folder is fp16 or DirectML."""
        return "float16" if self.precision == "fp16" or self.layout == "dml" else "float32"

    @property
    def quantized(self) -> bool:
        return self.precision == "int4"
