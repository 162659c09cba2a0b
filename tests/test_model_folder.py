"""A model folder is read from genai_config.json, and every broken piece is a one-line error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.targets.engine import Engine
from harness.model.folder import load_model_folder


@pytest.fixture()
def folder_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def _edit_config(folder: Path, edit) -> None:
    path = folder / "genai_config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


def _one_line_error(folder: Path, *fragments: str) -> str:
    with pytest.raises(HarnessError) as caught:
        Engine.load(folder)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_names_come_from_genai_config(tiny_model_dir: Path) -> None:
    config = load_model_folder(tiny_model_dir).config
    assert config.names.past(1) == ("past_key_values.1.key", "past_key_values.1.value")
    assert config.names.present(0) == ("present.0.key", "present.0.value")
    assert config.eos_token_ids == (32000, 32001, 32007)
    assert config.vocab_size == 32064 and config.context_length == 4096


def test_a_single_eos_id_as_the_model_builder_writes_it_is_read_as_one(folder_copy: Path) -> None:
    # onnxruntime-genai's builder (0.18) copies the HF config's eos_token_id, an int for a single id.
    _edit_config(folder_copy, lambda c: c["model"].update(eos_token_id=32000))
    assert load_model_folder(folder_copy).config.eos_token_ids == (32000,)


def test_unused_config_fields_are_accepted(folder_copy: Path) -> None:
    _edit_config(folder_copy, lambda c: c["model"]["decoder"].update(sliding_window=262144, future_field=1))
    assert Engine.load(folder_copy).config.num_layers >= 1


def test_missing_folder(tmp_path: Path) -> None:
    _one_line_error(tmp_path / "nope", "does not exist", "--model")


def test_missing_genai_config(folder_copy: Path) -> None:
    (folder_copy / "genai_config.json").unlink()
    _one_line_error(folder_copy, "genai_config.json", "missing")


def test_invalid_genai_config(folder_copy: Path) -> None:
    (folder_copy / "genai_config.json").write_text("{ not json")
    _one_line_error(folder_copy, "genai_config.json", "not valid JSON")


def test_genai_config_without_required_key(folder_copy: Path) -> None:
    _edit_config(folder_copy, lambda c: c["model"]["decoder"].pop("num_hidden_layers"))
    _one_line_error(folder_copy, "model.decoder.num_hidden_layers")


def test_missing_onnx(folder_copy: Path) -> None:
    (folder_copy / "model.onnx").unlink()
    _one_line_error(folder_copy, "model.onnx", "missing")


def test_missing_onnx_data(folder_copy: Path) -> None:
    (folder_copy / "model.onnx.data").unlink()
    _one_line_error(folder_copy, "model.onnx.data", "missing")


def test_missing_tokenizer(folder_copy: Path) -> None:
    (folder_copy / "tokenizer.json").unlink()
    _one_line_error(folder_copy, "tokenizer.json", "missing")


def test_inputs_that_do_not_match_the_config(folder_copy: Path) -> None:
    _edit_config(folder_copy, lambda c: c["model"]["decoder"]["inputs"].update(past_key_names="past.%d.k"))
    _one_line_error(folder_copy, "past.0.k", "genai_config.json")


PIPELINE_CONFIG = Path(__file__).parent / "fixtures" / "genai" / "qnn_decoder_pipeline_config.json"


def test_a_decoder_pipeline_folder_is_refused_in_one_line_naming_its_graphs(folder_copy: Path) -> None:
    shutil.copy(PIPELINE_CONFIG, folder_copy / "genai_config.json")
    message = _one_line_error(folder_copy, "decoder-pipeline model (embeddings, context, iterator, lm_head)",
                              "single-decoder folders", "onnxruntime-genai")
    assert "model.decoder.filename' is missing" not in message


def test_a_pipeline_list_without_the_type_is_recognised_too(folder_copy: Path) -> None:
    _edit_config(folder_copy, lambda c: c["model"]["decoder"].update(pipeline={"embeddings": {}, "lm_head": {}}))
    _one_line_error(folder_copy, "decoder-pipeline model (embeddings, lm_head)")


def test_growing_kv_is_refused_on_directml_before_a_token_is_generated(tiny_model_dir: Path) -> None:
    from harness.providers import ProviderSettings, create_session

    folder = load_model_folder(tiny_model_dir)
    session = create_session(folder.onnx_path, ProviderSettings(name="cpu"))
    with pytest.raises(HarnessError, match="growing KV strategy is wrong on dml: DirectML's GroupQueryAttention"):
        Engine(folder, session, ProviderSettings(name="dml", options={"device_id": 0}), kv_strategy="growing")
    engine = Engine(folder, session, ProviderSettings(name="dml", options={"device_id": 0}), kv_strategy="auto")
    assert engine.kv_strategy == "shared"  # the tiny folder shares past and present, as DirectML needs
