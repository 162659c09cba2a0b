"""The tiny model's tokenizer, read back by the real `tokenizers` library (and onnxruntime-genai)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_model import BuildFn
from tokenizers import Tokenizer

SPECIALS = {
    "<unk>": 0, "<s>": 1, "</s>": 2, "<|endoftext|>": 32000, "<|assistant|>": 32001, "<|placeholder1|>": 32002,
    "<|placeholder4|>": 32005, "<|system|>": 32006, "<|end|>": 32007, "<|placeholder5|>": 32008,
    "<|placeholder6|>": 32009, "<|user|>": 32010,
}
CHAT = "<|user|>\nHello<|end|>\n<|assistant|>\n"
PLAIN_TEXTS = [
    "Hello world, how are you?", "naïve café", "😀 emoji", "日本語のテキスト", "tabs\tand\nnew lines", "x  two  spaces",
]


@pytest.fixture(scope="module")
def folder(tiny_builds: BuildFn) -> Path:
    return tiny_builds("fp32", "cpu")


@pytest.fixture(scope="module")
def tokenizer(folder: Path) -> Tokenizer:
    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def test_special_tokens_sit_at_the_phi3_ids(tokenizer: Tokenizer) -> None:
    for token, token_id in SPECIALS.items():
        assert tokenizer.token_to_id(token) == token_id
    assert tokenizer.get_vocab_size(with_added_tokens=True) == 32011


def test_chat_text_encodes_to_the_special_ids(tokenizer: Tokenizer) -> None:
    encoding = tokenizer.encode(CHAT)
    ids, tokens = encoding.ids, encoding.tokens
    assert ids[:2] == [1, 32010], "the post-processor adds <s>, then <|user|>"
    assert ids.count(32007) == 1 and ids.count(32001) == 1
    assert tokens.count("<0x0A>") == 3, "each newline is a byte-fallback token, as in Phi-3"
    body = tokenizer.decode(ids[2:ids.index(32007)])
    assert body.strip() == "Hello"
    # SentencePiece-legacy form: "▁" before every piece between specials (as Phi-3 and genai).
    assert tokenizer.decode(ids, skip_special_tokens=False) == "<s><|user|> \nHello<|end|> \n<|assistant|> \n"


@pytest.mark.parametrize("text", PLAIN_TEXTS)
def test_plain_text_round_trips(tokenizer: Tokenizer, text: str) -> None:
    ids = tokenizer.encode(text).ids
    assert ids[0] == 1
    assert tokenizer.decode(ids) == text


def test_text_outside_the_vocabulary_uses_byte_fallback(tokenizer: Tokenizer) -> None:
    tokens = tokenizer.encode("😀").tokens
    assert tokens[-4:] == ["<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
    assert tokenizer.token_to_id("<0x00>") == 3 and tokenizer.token_to_id("<0xFF>") == 258
    assert "<unk>" not in tokenizer.encode("naïve 日本 🙂").tokens


def test_trained_merges_make_whole_words(tokenizer: Tokenizer) -> None:
    tokens = tokenizer.encode("the capital of France", add_special_tokens=False).tokens
    assert len(tokens) < len("the capital of France") / 2, tokens


def test_every_generatable_id_decodes_to_distinct_text(tokenizer: Tokenizer) -> None:
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    assert sorted(vocab.values()) == list(range(32000)), "ids 0..31999 are all taken, once each"
    # Decoded after a word so the lone "▁" piece (a space) shows too; none may be empty or U+FFFD.
    word = tokenizer.token_to_id("▁the")
    texts = [tokenizer.decode([word, i])[len("the"):] for i in range(259, 32000)]
    assert all(t and "\ufffd" not in t for t in texts)
    assert len({tokenizer.id_to_token(i) for i in range(259, 32000)}) == 32000 - 259


def test_tokenizer_config_is_phi3_style(folder: Path) -> None:
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["add_bos_token"] is True and config["add_eos_token"] is False
    assert (config["bos_token"], config["eos_token"], config["unk_token"]) == ("<s>", "<|endoftext|>", "<unk>")
    assert config["added_tokens_decoder"]["32010"]["content"] == "<|user|>"
    assert all(config["added_tokens_decoder"][str(i)]["special"] for i in SPECIALS.values())
    for fragment in ("'<|system|>\\n' + message['content'] + '<|end|>\\n'", "'<|user|>\\n'", "'<|assistant|>\\n'"):
        assert fragment.replace("\\n", "\n") in config["chat_template"]


def test_chat_template_renders_phi3_turns(folder: Path) -> None:
    jinja2 = pytest.importorskip("jinja2", reason="jinja2 not installed; the template text is checked above")
    template = json.loads((folder / "tokenizer_config.json").read_text())["chat_template"]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rendered = jinja2.Template(template).render(
        messages=messages, add_generation_prompt=True, eos_token="<|endoftext|>"
    )
    assert rendered == "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"


def test_onnxruntime_genai_tokenizer_agrees(folder: Path, tokenizer: Tokenizer) -> None:
    og = pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai not installed (pip install '.[genai]')")
    genai = og.Tokenizer(og.Model(str(folder)))
    for text in [CHAT, "<|system|>\nBe brief.<|end|>\n<|user|>\nnaïve 😀<|end|>\n<|assistant|>\n", *PLAIN_TEXTS]:
        assert [int(i) for i in genai.encode(text)] == tokenizer.encode(text, add_special_tokens=False).ids
    ids = tokenizer.encode("Hello world", add_special_tokens=False).ids
    assert genai.decode(ids).strip() == tokenizer.decode(ids) == "Hello world"  # genai keeps a leading space
