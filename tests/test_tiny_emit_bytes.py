"""The tiny model's ``emit_bytes`` variant: only the LM head differs, and the cache keeps it apart."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from harness.commands import tiny_model as tiny_model_command
from harness.model.default_model import cached_model_path
from harness.model.tiny.build import read_build_info
from harness.model.tiny.spec import TinySpec
from harness.model.tiny.weights import make_weights

LM_HEAD = "lm_head.MatMul.weight"


def test_emit_bytes_changes_only_the_lm_head_rows_of_bytes_and_specials() -> None:
    spec = TinySpec()
    plain, emitting = make_weights(spec, seed=0), make_weights(spec, seed=0, emit_bytes=True)
    assert all(np.array_equal(plain[k], emitting[k]) for k in plain if k != LM_HEAD)
    words = slice(259, 32000)
    assert np.array_equal(plain[LM_HEAD][:, words], emitting[LM_HEAD][:, words])
    assert not plain[LM_HEAD][:, :259].any() and not plain[LM_HEAD][:, 32000:].any()
    assert emitting[LM_HEAD][:, 3:259].any(axis=0).all(), "every byte piece can be generated"
    assert emitting[LM_HEAD][:, 32000:32011].any(axis=0).all(), "every special token can be generated"
    assert not emitting[LM_HEAD][:, 32011:].any(), "ids the tokenizer lacks stay unreachable"


def test_cli_builds_the_variant_and_records_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    tiny_model_command.add_arguments(parser)
    assert tiny_model_command.run(parser.parse_args(["--emit-bytes", "--out", str(tmp_path / "m")])) == 0
    assert read_build_info(Path(capsys.readouterr().out.strip()))["emit_bytes"] is True


def test_the_cache_keeps_the_variant_in_its_own_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHI3_HARNESS_CACHE", str(tmp_path))
    assert cached_model_path(emit_bytes=True) != cached_model_path()
    assert "-bytes-" in cached_model_path(emit_bytes=True).name
