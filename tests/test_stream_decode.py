"""Streaming decode, property-tested: the deltas of any id sequence concatenate to ``decode(ids)``,
and each delta goes out as soon as no continuation of the ids could change it.

Id sequences mix words, the lone "▁" piece, byte-fallback runs that are valid UTF-8 (from random
text) and arbitrary (mostly invalid) ones, special tokens (EOS included) and ids the vocabulary lacks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from harness.model.folder import load_model_folder
from harness.model.streaming import known_fffd
from harness.model.tokenizer import Phi3Tokenizer

BYTE0 = 3  # <0x00> in the tiny vocabulary (and Phi-3's)
SPECIALS = [0, 1, 2, *range(32000, 32011)]  # <unk> <s> </s>, then <|endoftext|> .. <|user|> (EOS: 32000/1/7)
UNKNOWN = st.integers(32011, 32063)  # inside the model's 32064 logits, not in the tokenizer
CONTINUATIONS = (0x80, 0x90, 0xA0, 0xBF)
PROPERTY = settings(max_examples=300, deadline=None)
SECONDARY = settings(max_examples=100, deadline=None)


def byte_ids(data: bytes) -> list[int]:
    return [BYTE0 + b for b in data]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Phi3Tokenizer:
    return Phi3Tokenizer(load_model_folder(tiny_model_dir).tokenizer_path)


def id_sequences(word_ids: st.SearchStrategy[int]) -> st.SearchStrategy[list[int]]:
    chunk = st.one_of(
        word_ids.map(lambda i: [i]),
        st.just([308]),  # "▁" alone: a space, stripped at the very start
        st.text(min_size=1, max_size=3).map(lambda s: byte_ids(s.encode("utf-8"))),
        st.binary(min_size=1, max_size=5).map(byte_ids),
        st.sampled_from(SPECIALS).map(lambda i: [i]),
        UNKNOWN.map(lambda i: [i]),
    )
    return st.lists(chunk, max_size=14).map(lambda chunks: [i for c in chunks for i in c])


ID_SEQUENCES = id_sequences(st.integers(259, 31999))


def stream(tokenizer: Phi3Tokenizer, ids: list[int]) -> tuple[list[str], str]:
    decoder = tokenizer.stream_decoder()
    deltas = [decoder.add(i) for i in ids]
    return deltas, decoder.flush()


def test_the_word_piece_used_below_is_the_lone_space(tokenizer: Phi3Tokenizer) -> None:
    assert tokenizer.id_to_token(308) == "\u2581"


@PROPERTY
@given(ids=ID_SEQUENCES)
def test_stream_deltas_concatenate_to_decode_for_any_ids(tokenizer: Phi3Tokenizer, ids: list[int]) -> None:
    deltas, tail = stream(tokenizer, ids)
    assert "".join(deltas) + tail == tokenizer.decode(ids)
    _label(tokenizer, ids, tail)


def _label(tokenizer: Phi3Tokenizer, ids: list[int], tail: str) -> None:
    """What the example held (pytest --hypothesis-show-statistics shows the shares)."""
    text = tokenizer.decode(ids)
    event("byte run decodes to U+FFFD" if "\ufffd" in text else "no U+FFFD")
    event("multi-byte character from bytes" if any(ord(c) > 127 and c != "\ufffd" for c in text) else "no multi-byte")
    event("special or EOS" if set(ids) & set(SPECIALS) else "no special")
    event("text left for flush" if tail else "flush empty")


def _open_run(tokenizer: Phi3Tokenizer, ids: list[int]) -> bytes:
    """Bytes of the byte-fallback run at the end of ``ids`` (decode skips specials inside a run)."""
    run = bytearray()
    for i in reversed(ids):
        if BYTE0 <= i < BYTE0 + 256:
            run.insert(0, i - BYTE0)
        elif tokenizer.decode([i]) != "" or i == 308:
            break
    return bytes(run)


def _completion(run: bytes) -> list[int] | None:
    """Continuation bytes that make an unfinished UTF-8 run valid, if there are any."""
    for n in (1, 2, 3):
        for tail in (bytes([c] * n) for c in CONTINUATIONS):
            try:
                (run + tail).decode("utf-8")
            except UnicodeDecodeError:
                continue
            return byte_ids(tail)
    return None


def certain_text(tokenizer: Phi3Tokenizer, ids: list[int]) -> str:
    """The longest text every probed continuation of ``ids`` starts with: end now, a word, a stray
    continuation byte (makes any open run invalid), and the bytes that finish an open run."""
    word = tokenizer.encode("the")[0]
    probes = [[], [word], [BYTE0 + 0x80, word]]
    completion = _completion(_open_run(tokenizer, ids))
    if completion is not None:
        probes.append([*completion, word])
    return os.path.commonprefix([tokenizer.decode(ids + p) for p in probes])


@PROPERTY
@given(ids=ID_SEQUENCES)
def test_each_delta_goes_out_as_soon_as_it_is_certain(tokenizer: Phi3Tokenizer, ids: list[int]) -> None:
    decoder = tokenizer.stream_decoder()
    emitted = ""
    for k, token_id in enumerate(ids, start=1):
        emitted += decoder.add(token_id)
        assert emitted == certain_text(tokenizer, ids[:k]), f"after {ids[:k]}"


@SECONDARY
@given(text=st.text(max_size=40))
def test_encoded_text_streams_back_without_replacement_characters(tokenizer: Phi3Tokenizer, text: str) -> None:
    ids = tokenizer.encode(text)
    deltas, tail = stream(tokenizer, ids)
    assert "".join(deltas) + tail == tokenizer.decode(ids)
    assert "\ufffd" not in "".join(deltas) + tail or "\ufffd" in text


@pytest.mark.parametrize(
    ("data", "decoded"),
    [
        (b"\x46\xa7", "\ufffd\ufffd"),  # seen from a real model: "F" was streamed, decode says two U+FFFD
        (b"\x20\xf5\x6c", "\ufffd\ufffd\ufffd"),
        (b"\xc3\xa9\x41\x80", "\ufffd" * 4),  # valid "éA" until the stray continuation byte
    ],
)
def test_an_invalid_byte_run_never_streams_its_valid_start(tokenizer: Phi3Tokenizer, data: bytes, decoded: str) -> None:
    deltas, tail = stream(tokenizer, byte_ids(data))
    assert tokenizer.decode(byte_ids(data)) == decoded
    assert "".join(deltas) + tail == decoded
    assert all(set(d) <= {"\ufffd"} for d in deltas)


def test_decode_stream_alone_streams_a_byte_that_decode_then_replaces(tiny_model_dir: Path) -> None:
    """Why streaming.py adds a layer: the library's DecodeStream (installed version) emits "F" for
    ``<0x46>`` although ``<0x46><0xA7>`` decodes to two U+FFFD. Should this start failing, the
    library changed and the layer may be able to shrink (the properties above still hold it to account)."""
    from tokenizers import Tokenizer
    from tokenizers.decoders import DecodeStream

    raw = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    stream = DecodeStream(skip_special_tokens=True)
    assert [stream.step(raw, i) for i in byte_ids(b"\x46\xa7")] == ["F", None]
    assert raw.decode(byte_ids(b"\x46\xa7")) == "\ufffd\ufffd"


def test_a_special_token_inside_a_byte_run_does_not_end_it(tokenizer: Phi3Tokenizer) -> None:
    ids = [*byte_ids(b"\xc3"), 32002, *byte_ids(b"\xa9")]  # <|placeholder1|> between the bytes of "é"
    deltas, tail = stream(tokenizer, ids)
    assert deltas == ["", "", ""] and tail == "é" == tokenizer.decode(ids)


@pytest.mark.parametrize(
    ("run", "certain"),
    [(b"", 0), (b"\xc3", 0), (b"\xc3\xa9", 0), (b"\xff", 1), (b"A\xff", 2), (b"\xef\xbf\xbd", 1),
     (b"\xef\xbf\xbdA", 1), (b"\xe2\x82", 0), (b"\xed\xa0", 2)],
)
def test_known_fffd_counts_only_replacement_characters_no_byte_can_undo(run: bytes, certain: int) -> None:
    assert known_fffd(run) == certain


@pytest.fixture(scope="module")
def fffd_piece_tokenizer(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Phi3Tokenizer:
    """The tiny tokenizer with one piece whose text ends in U+FFFD (DecodeStream holds such text)."""
    data = json.loads((tiny_model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    old = next(piece for piece, i in vocab.items() if i == 31999)
    vocab["\u2581x\ufffd"] = vocab.pop(old)
    path = tmp_path_factory.mktemp("fffd") / "tokenizer.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return Phi3Tokenizer(path)


@SECONDARY
@given(ids=id_sequences(st.sampled_from([31999, 31999, 400, 5000])))
def test_a_piece_ending_in_fffd_keeps_the_stream_equal_to_decode(fffd_piece_tokenizer: Phi3Tokenizer,
                                                                 ids: list[int]) -> None:
    deltas, tail = stream(fffd_piece_tokenizer, ids)
    assert "".join(deltas) + tail == fffd_piece_tokenizer.decode(ids)
