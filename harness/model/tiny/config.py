"""genai_config.json of the tiny model, in the published Phi-3 folders' format."""

from __future__ import annotations

from typing import Any

from harness.model.tiny import spec as names
from harness.model.tiny.spec import TinySpec, Variant


def genai_config(spec: TinySpec, variant: Variant) -> dict[str, Any]:
    inputs = {"input_ids": names.INPUT_IDS, "attention_mask": names.ATTENTION_MASK}
    if variant.layout == "dml":
        inputs["position_ids"] = names.POSITION_IDS
    inputs.update(past_key_names=names.PAST_KEY, past_value_names=names.PAST_VALUE)
    # The DirectML build asks genai for the dml provider; a CPU-only genai refuses such a folder
    # until config.clear_providers() (docs/ARCHITECTURE.md, "Model format").
    provider_options: list[dict[str, Any]] = [{"dml": {}}] if variant.layout == "dml" else []
    decoder = {
        "session_options": {"log_id": "onnxruntime-genai", "provider_options": provider_options},
        "filename": names.MODEL_FILE,
        "head_size": spec.head_size,
        "hidden_size": spec.hidden_size,
        "inputs": inputs,
        "outputs": {
            "logits": names.LOGITS,
            "present_key_names": names.PRESENT_KEY,
            "present_value_names": names.PRESENT_VALUE,
        },
        "num_attention_heads": spec.num_heads,
        "num_hidden_layers": spec.num_layers,
        "num_key_value_heads": spec.num_kv_heads,
    }
    return {
        "model": {
            "bos_token_id": spec.bos_token_id,
            "context_length": spec.context_length,
            "decoder": decoder,
            "eos_token_id": list(spec.eos_token_ids),
            "pad_token_id": spec.pad_token_id,
            "type": "phi3",
            "vocab_size": spec.vocab_size,
        },
        "search": {
            "diversity_penalty": 0.0,
            "do_sample": False,
            "early_stopping": True,
            "length_penalty": 1.0,
            "max_length": spec.context_length,
            "min_length": 0,
            "no_repeat_ngram_size": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            "past_present_share_buffer": True,
            "repetition_penalty": 1.0,
            "temperature": 1.0,
            "top_k": 1,
            "top_p": 1.0,
        },
    }
