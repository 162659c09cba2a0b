"""Size presets of the embedded model: what "small" is, and how --model names a preset.

Building "small" takes tens of seconds and 600 MB, so these tests check its spec and the plumbing;
benchmarks/roofline.py builds and measures it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.model import default_model
from harness.model.default_model import MODEL_PRESETS, cached_model_path, resolve_model
from harness.model.tiny.spec import SIZES, TinySpec, spec_for


def _int4_bytes(spec: TinySpec) -> int:
    """Packed int4 weights + one fp32 scale per block, over every MatMulNBits (projections and LM head)."""
    h, kv, inter = spec.hidden_size, spec.num_kv_heads * spec.head_size, spec.intermediate_size
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * inter  # q, o; k, v; gate, up, down
    params = spec.num_layers * per_layer + h * spec.vocab_size
    return params // 2 + params // spec.int4_block_size * 4


def test_small_is_phi3_mini_shaped_with_at_least_150_mb_of_int4_weights() -> None:
    small = spec_for("small")
    assert (small.hidden_size, small.num_heads, small.num_kv_heads, small.head_size, small.intermediate_size) == (
        3072, 32, 32, 96, 8192)
    assert (small.vocab_size, small.context_length, small.eos_token_ids) == (32064, 4096, (32000, 32001, 32007))
    assert _int4_bytes(small) >= 150e6
    assert _int4_bytes(spec_for("tiny")) < 5e6  # the default stays tiny


def test_an_unknown_size_is_a_one_line_error() -> None:
    with pytest.raises(HarnessError, match="unknown model size 'huge'.*tiny, small"):
        spec_for("huge")


def test_sizes_get_their_own_cache_folders() -> None:
    tiny, small = cached_model_path("int4"), cached_model_path("int4", size="small")
    assert tiny.name.startswith("tiny-phi3-cpu-int4-") and small.name.startswith("small-phi3-cpu-int4-")
    assert set(SIZES) == {name for name, _ in MODEL_PRESETS.values()}


def test_model_argument_names_a_preset_or_a_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    built: list[tuple[str, str]] = []

    def fake_build(precision: str = "fp32", layout: str = "cpu", seed: int = 0, size: str = "tiny") -> Path:
        built.append((size, precision))
        return tmp_path / size

    monkeypatch.setattr(default_model, "default_model_dir", fake_build)
    assert resolve_model("small") == tmp_path / "small" and built == [("small", "int4")]
    assert resolve_model(None) == tmp_path / "tiny"  # None: the embedded tiny model, built on first use
    folder = tmp_path / "my-model"
    assert resolve_model(str(folder)) == folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small").mkdir()
    assert resolve_model("small") == Path("small")  # a folder of that name wins over the preset
