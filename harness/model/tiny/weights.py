"""Random weights of the tiny Phi-3 from a fixed seed, and its rotary cos/sin caches.

Scales. Every projection has std ``gain / sqrt(fan_in)`` so each activation is of unit size; the
embedding has std 0.02 like Phi-3's initialiser (RMSNorm makes its absolute size irrelevant). A flat
std of 0.02 everywhere would make attention uniform and the MLP a rounding error, and a reference
test could then not see a wrong rotary or MLP. q/k get a larger gain so attention is peaked;
lm_head's gain sets the logit spread (std ~3): the top two logits are then far apart compared with
fp32/fp16 rounding, so greedy decoding is stable and prompt-dependent.

Unreachable rows. lm_head rows of ids that should never be *generated* are zero (logit exactly 0,
far below the ~4-sigma maximum): ``<unk>``, ``<s>``, ``</s>``, the 256 byte-fallback tokens (a lone
byte decodes to U+FFFD) and every id >= 32000 (specials, and 32011..32063 which the tokenizer does
not have, as in Phi-3). Greedy output is therefore always decodable words; EOS never wins greedy,
so generation runs to max_new_tokens (sampling reaches such ids with p ~ 1e-7 per step).

The ``emit_bytes`` variant instead gives those rows real weight (larger gains than the words'), so
greedy and sampled output mixes words with byte-fallback runs (valid and invalid UTF-8), special
tokens and, more rarely, EOS: what real models emit now and then, and what streaming must survive.
Only ids the tokenizer lacks (32011..32063) stay zero. The same weights are drawn either way.
"""

from __future__ import annotations

import numpy as np

from harness.model.tiny.spec import TinySpec

EMBED_STD = 0.02
PROJECTION_GAIN = 1.0
QK_GAIN = 1.3
LM_HEAD_GAIN = 3.0
NORM_JITTER = 0.1  # norm weights 1 + N(0, 0.1): a reference that ignored them would fail
FIRST_GENERATED_ID = 259  # after <unk>, <s>, </s> and <0x00>..<0xFF>
SPECIAL_IDS_START = 32000
SPECIAL_IDS_END = 32011  # one past <|user|>: the tokenizer has no ids from here on
# emit_bytes variant: row gains relative to the words, chosen by measuring the mix: greedy over the
# suite prompts gives ~31 % byte pieces (mostly invalid UTF-8 runs), ~3 % specials, an EOS now and then
BYTE_ROW_GAIN = 1.4
SPECIAL_ROW_GAIN = 1.4
EOS_ROW_GAIN = 1.25


def layer_prefix(layer: int) -> str:
    return f"model.layers.{layer}"


def make_weights(spec: TinySpec, seed: int, emit_bytes: bool = False) -> dict[str, np.ndarray]:
    """All float32 weights, MatMul weights as [in, out]; the draw order is fixed (determinism)."""
    rng = np.random.default_rng(seed)
    h, kv = spec.hidden_size, spec.num_kv_heads * spec.head_size
    weights = {"model.embed_tokens.weight": _normal(rng, (spec.vocab_size, h), EMBED_STD)}
    for layer in range(spec.num_layers):
        p = layer_prefix(layer)
        weights[f"{p}.input_layernorm.weight"] = _norm_weight(rng, h)
        weights[f"{p}.attn.q_proj.MatMul.weight"] = _projection(rng, h, h, QK_GAIN)
        weights[f"{p}.attn.k_proj.MatMul.weight"] = _projection(rng, h, kv, QK_GAIN)
        weights[f"{p}.attn.v_proj.MatMul.weight"] = _projection(rng, h, kv, PROJECTION_GAIN)
        weights[f"{p}.attn.o_proj.MatMul.weight"] = _projection(rng, h, h, PROJECTION_GAIN)
        weights[f"{p}.post_attention_layernorm.weight"] = _norm_weight(rng, h)
        weights[f"{p}.mlp.gate_proj.MatMul.weight"] = _projection(rng, h, spec.intermediate_size, PROJECTION_GAIN)
        weights[f"{p}.mlp.up_proj.MatMul.weight"] = _projection(rng, h, spec.intermediate_size, PROJECTION_GAIN)
        weights[f"{p}.mlp.down_proj.MatMul.weight"] = _projection(rng, spec.intermediate_size, h, PROJECTION_GAIN)
    weights["model.norm.weight"] = _norm_weight(rng, h)
    lm_head = _projection(rng, h, spec.vocab_size, LM_HEAD_GAIN)
    if emit_bytes:
        _boost_unusual_rows(lm_head, spec)
    else:
        lm_head[:, :FIRST_GENERATED_ID] = 0.0
        lm_head[:, SPECIAL_IDS_START:] = 0.0
    weights["lm_head.MatMul.weight"] = lm_head
    return weights


def _boost_unusual_rows(lm_head: np.ndarray, spec: TinySpec) -> None:
    """Byte pieces and special tokens win often; EOS sometimes; ids outside the tokenizer never."""
    lm_head[:, :FIRST_GENERATED_ID] *= np.float32(BYTE_ROW_GAIN)
    lm_head[:, SPECIAL_IDS_START:SPECIAL_IDS_END] *= np.float32(SPECIAL_ROW_GAIN)
    eos = list(spec.eos_token_ids)
    lm_head[:, eos] *= np.float32(EOS_ROW_GAIN / SPECIAL_ROW_GAIN)
    lm_head[:, SPECIAL_IDS_END:] = 0.0


def rotary_caches(spec: TinySpec) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [context_length, head_size / 2] for non-interleaved (rotate-half) rope."""
    half = spec.head_size // 2
    inv_freq = 1.0 / spec.rope_theta ** (np.arange(half, dtype=np.float64) * 2 / spec.head_size)
    angles = np.outer(np.arange(spec.context_length, dtype=np.float64), inv_freq)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def _normal(rng: np.random.Generator, shape: tuple[int, int], std: float) -> np.ndarray:
    # scaled in place: the "small" preset draws 424M values, and each extra copy costs seconds and GBs
    values = rng.standard_normal(shape, dtype=np.float32)
    values *= np.float32(std)
    return values


def _projection(rng: np.random.Generator, fan_in: int, fan_out: int, gain: float) -> np.ndarray:
    return _normal(rng, (fan_in, fan_out), gain / np.sqrt(fan_in))


def _norm_weight(rng: np.random.Generator, size: int) -> np.ndarray:
    return (1.0 + rng.standard_normal(size, dtype=np.float32) * np.float32(NORM_JITTER)).astype(np.float32)
