"""ONNX Runtime threading: config keys reach the session, and what the session runs with is read back."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime
import psutil
import pytest

from harness import cli
from harness.config import load_config
from harness.errors import HarnessError
from harness.providers import ProviderSettings, create_session, session_options, threading_in_effect
from harness.providers import thread_default
from harness.providers.thread_default import ONE_THREAD_BELOW_BYTES, default_intra_op_threads, folder_bytes


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_threading_keys_in_the_config_reach_the_session_options(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[provider.cpu]\nintra_op_num_threads = 1\ninter_op_num_threads = 3\n"
                                          "allow_spinning = true\nexecution_mode = \"parallel\"\n"))
    options = session_options(config.provider_settings("cpu"))
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 3)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "1"
    assert str(options.execution_mode).endswith("ORT_PARALLEL")


def test_spinning_stop_and_dynamic_blocks_reach_the_session_and_are_read_back(tmp_path: Path, tiny_model_dir: Path) -> None:
    config = load_config(_write(tmp_path, "[provider.cpu]\nallow_spinning = true\nforce_spinning_stop = true\n"
                                          "dynamic_block_base = 4\n"))
    options = session_options(config.provider_settings("cpu"))
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert options.get_session_config_entry("session.dynamic_block_base") == "4"
    session = create_session(tiny_model_dir / "model.onnx", config.provider_settings("cpu"))
    read_back = threading_in_effect(session)
    assert (read_back["force_spinning_stop"], read_back["dynamic_block_base"]) == (True, 4)


def test_spinning_is_off_unless_asked_for() -> None:
    options = session_options(load_config().provider_settings("cpu"))
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_threads_is_short_for_intra_op_num_threads_and_the_long_key_wins(tmp_path: Path) -> None:
    short = load_config(_write(tmp_path, "[provider.cpu]\nthreads = 2\n"))
    assert short.provider_settings("cpu").intra_op_threads == 2
    both = load_config(_write(tmp_path, "[provider.cpu]\nthreads = 2\nintra_op_num_threads = 1\n"))
    assert both.provider_settings("cpu").intra_op_threads == 1


@pytest.mark.parametrize("text, key", [
    ("execution_mode = \"fast\"", "provider.cpu.execution_mode"),
    ("inter_op_num_threads = 0", "provider.cpu.inter_op_num_threads"),
    ("allow_spinning = \"maybe\"", "provider.cpu.allow_spinning"),
    ("dynamic_block_base = -1", "provider.cpu.dynamic_block_base"),
    ("dynamic_block_base = 99999999999999999999", "provider.cpu.dynamic_block_base"),  # ORT's stoi would throw
    ("force_spinning_stop = true", "provider.cpu.force_spinning_stop"),  # without allow_spinning it means nothing
])
def test_bad_threading_values_are_refused_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(HarnessError, match=key.replace(".", r"\.")):
        load_config(_write(tmp_path, f"[provider.cpu]\n{text}\n"))


def test_threading_in_effect_is_read_back_from_the_session(tiny_model_dir: Path) -> None:
    onnx_path = tiny_model_dir / "model.onnx"
    configured = create_session(onnx_path, ProviderSettings(intra_op_threads=1, allow_spinning=True))
    assert threading_in_effect(configured) == {
        "intra_op_num_threads": 1, "inter_op_num_threads": 0, "intra_op_threads_source": "configured",
        "allow_spinning": True, "force_spinning_stop": False, "dynamic_block_base": 0, "execution_mode": "sequential",
    }
    default = threading_in_effect(create_session(onnx_path, ProviderSettings()))  # the tiny model: one thread
    assert default["intra_op_num_threads"] == 1 and default["allow_spinning"] is False
    assert default["intra_op_threads_source"] == "default: one thread for a model folder under 32 MB"
    bare = threading_in_effect(onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]))
    assert bare["intra_op_num_threads"] == (psutil.cpu_count(logical=False) or 1)  # ORT's own default, read back
    assert bare["intra_op_threads_source"] == "default: one per physical core"


def _sparse(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # its size counts; no disk is used
        handle.truncate(size)
    return path


def test_only_a_toy_sized_cpu_model_defaults_to_one_thread(tmp_path: Path, tiny_model_dir: Path) -> None:
    tiny = tiny_model_dir / "model.onnx"
    assert default_intra_op_threads("cpu", tiny) == (1, "default: one thread for a model folder under 32 MB")
    assert default_intra_op_threads("dml", tiny)[0] is None  # an accelerator's CPU threads run leftovers only
    assert default_intra_op_threads("cpu", tmp_path / "missing" / "model.onnx")[0] is None  # nothing to size
    # external data under any name, in a subfolder, or a symlink to a blob (Hugging Face snapshots) counts
    for name, layout in (("named", "weights/layer0.bin"), ("linked", "model.onnx.data")):
        folder = tmp_path / name
        _sparse(folder / "model.onnx", 5)
        if name == "linked":
            (folder / layout).symlink_to(_sparse(tmp_path / "blobs" / "abc123", ONE_THREAD_BELOW_BYTES))
        else:
            _sparse(folder / layout, ONE_THREAD_BELOW_BYTES)
        assert default_intra_op_threads("cpu", folder / "model.onnx") == (None, "default: one per physical core"), name


def test_a_folder_is_sized_only_until_it_passes_the_line(tmp_path: Path) -> None:
    for index in range(3):
        _sparse(tmp_path / f"part{index}.bin", 40)
    assert folder_bytes(tmp_path, stop_at=50) == 80  # stopped after the second file
    assert folder_bytes(tmp_path, stop_at=10**9) == 120
    (tmp_path / "loop").symlink_to(tmp_path)  # a symlinked folder is not followed
    assert folder_bytes(tmp_path, stop_at=10**9) == 120


def test_a_folder_of_too_many_entries_counts_as_over_the_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(thread_default, "_MAX_ENTRIES", 3)  # 10,000 in use: made small here
    for index in range(4):
        (tmp_path / f"empty{index}").touch()
    assert folder_bytes(tmp_path, stop_at=50) == 50  # 0 bytes seen, yet not called a toy model


def test_generate_takes_threading_from_set_and_reports_it(tiny_model_dir: Path, capsys) -> None:
    code = cli.main(["generate", "hi", "--model", str(tiny_model_dir), "--max-new-tokens", "2", "--json",
                     "--set", "provider.cpu.intra_op_num_threads=1", "--set", "provider.cpu.allow_spinning=true"])
    assert code == 0
    threading = json.loads(capsys.readouterr().out)["threading"]
    assert threading["intra_op_num_threads"] == 1 and threading["allow_spinning"] is True


def test_doctor_shows_the_threading_of_each_usable_provider(tiny_model_dir: Path, capsys) -> None:
    assert cli.main(["doctor", "--model", str(tiny_model_dir)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # doctor wraps lines at 100 columns
    assert "threads: intra-op" in out and "spinning off" in out
