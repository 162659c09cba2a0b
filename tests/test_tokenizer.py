"""Chat template, explicit BOS, token counting and streaming decode on the real tokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.model.folder import load_model_folder
from harness.model.tokenizer import Phi3Tokenizer, render_chat

USER, END, ASSISTANT, SYSTEM = 32010, 32007, 32001, 32006


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Phi3Tokenizer:
    return Phi3Tokenizer(load_model_folder(tiny_model_dir).tokenizer_path)


def test_chat_template_matches_phi3() -> None:
    text = render_chat([("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye")])
    assert text == (
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello<|end|>\n"
        "<|user|>\nBye<|end|>\n<|assistant|>\n"
    )


def test_unknown_role_is_an_error() -> None:
    with pytest.raises(HarnessError, match="unknown chat role"):
        render_chat([("robot", "x")])


def test_special_tokens_have_phi3_ids(tokenizer: Phi3Tokenizer) -> None:
    ids = tokenizer.encode_chat([("system", "s"), ("user", "Hello")], add_bos=False)
    assert ids[0] == SYSTEM and USER in ids and ids.count(END) == 2 and ASSISTANT in ids


def test_bos_only_when_asked(tokenizer: Phi3Tokenizer) -> None:
    plain = tokenizer.encode("Hello world")
    assert plain[0] != 1
    assert tokenizer.encode("Hello world", add_bos=True) == [1, *plain]


def test_count_is_the_number_of_ids(tokenizer: Phi3Tokenizer) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    assert tokenizer.count(text) == len(tokenizer.encode(text)) > 0


@pytest.mark.parametrize("text", ["plain words only", "héllo wörld 🙂 — 世界!", "🙂🙂🙂", "a\nb\tc  d"])
def test_stream_decode_equals_full_decode_and_never_breaks_utf8(tokenizer: Phi3Tokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    decoder = tokenizer.stream_decoder()
    deltas = [decoder.add(i) for i in ids]
    deltas.append(decoder.flush())
    assert "".join(deltas) == tokenizer.decode(ids) == text
    assert not any("\ufffd" in d for d in deltas)


def test_flush_returns_an_incomplete_tail(tokenizer: Phi3Tokenizer) -> None:
    ids = tokenizer.encode("ok 🙂")
    pieces = [tokenizer.id_to_token(i) for i in ids]
    assert sum(p.startswith("<0x") for p in pieces) == 4, f"the emoji should be 4 byte pieces: {pieces}"
    decoder = tokenizer.stream_decoder()
    deltas = [decoder.add(i) for i in ids[:-1]]  # stop one byte short of a whole character
    assert "".join(deltas) == "ok "  # the three bytes so far are held back
    tail = decoder.flush()
    assert tail.endswith("\ufffd") and "ok " + tail == tokenizer.decode(ids[:-1])


def test_tokenizers_on_one_file_share_its_parse_and_an_edited_file_is_read_again(tiny_model_dir: Path,
                                                                                 tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    shutil.copy(load_model_folder(tiny_model_dir).tokenizer_path, path)
    first, second = Phi3Tokenizer(path), Phi3Tokenizer(path)
    assert first._tokenizer is second._tokenizer
    data = json.loads(path.read_text(encoding="utf-8"))
    hello = first.encode("Hello")
    data["model"]["vocab"] = {piece: (i + 1) % len(data["model"]["vocab"]) for piece, i in data["model"]["vocab"].items()}
    path.write_text(json.dumps(data), encoding="utf-8")  # another size: a new version of the file
    edited = Phi3Tokenizer(path)
    assert edited._tokenizer is not first._tokenizer
    assert edited.encode("Hello") != hello and first.encode("Hello") == hello
