"""Chunks to tokens: counts per chunk by the best source, spread timing, text kept whole."""

from __future__ import annotations

from harness.model.tokenizer import Phi3Tokenizer
from harness.targets.http_stream import Chunk
from harness.targets.http_tokens import completion_count, token_events, tokens_per_chunk


def test_running_server_counts_give_tokens_per_chunk() -> None:
    chunks = [Chunk(10, "a", {"completion_tokens": 1}), Chunk(20, "bcd", {"completion_tokens": 4})]
    assert tokens_per_chunk(chunks, None) == ([1, 3], [], "server")


def test_without_counts_or_tokenizer_each_chunk_is_one_token() -> None:
    assert tokens_per_chunk([Chunk(1, "a"), Chunk(2, "b")], None) == ([1, 1], [], "chunks")


def test_tokenizer_assigns_each_token_to_the_chunk_holding_its_last_character(tiny_model_dir) -> None:
    tokenizer = Phi3Tokenizer(tiny_model_dir / "tokenizer.json")
    texts = ["Hello world,", " the sea", " is blue."]  # chunk ends before a space: token boundaries
    counts, ids, source = tokens_per_chunk([Chunk(i, t) for i, t in enumerate(texts)], tokenizer)
    prefixes = [len(tokenizer.encode("".join(texts[: i + 1]))) for i in range(len(texts))]
    assert source == "tokenizer" and ids == tokenizer.encode("".join(texts))
    assert counts == [b - a for a, b in zip([0, *prefixes], prefixes)]
    split = tokens_per_chunk([Chunk(0, "Hello wor"), Chunk(1, "ld,")], tokenizer)[0]
    assert sum(split) == len(tokenizer.encode("Hello world,"))  # a token split across chunks counts once


def test_later_chunk_tokens_are_spread_over_the_gap_and_the_first_chunk_is_ttft() -> None:
    chunks = [Chunk(100, "a"), Chunk(130, "bcd"), Chunk(140, "e")]
    events = token_events(chunks, [1, 3, 1], [])
    assert [e.t_ns for e in events] == [100, 110, 120, 130, 140]
    assert "".join(e.text for e in events) == "abcde" and events[3].text == "bcd"
    assert all(e.token_id == -1 for e in events)


def test_first_chunk_with_several_tokens_stamps_them_all_at_its_arrival() -> None:
    events = token_events([Chunk(50, "ab")], [2], [7, 8])
    assert [(e.token_id, e.t_ns) for e in events] == [(7, 50), (8, 50)]


def test_a_chunk_counted_as_no_token_hands_its_text_to_the_next() -> None:
    events = token_events([Chunk(1, "x"), Chunk(2, "y"), Chunk(3, "z")], [1, 0, 1], [])
    assert [e.text for e in events] == ["x", "yz"] and [e.t_ns for e in events] == [1, 3]


def test_completion_count_prefers_server_usage_then_tokenizer_then_chunks(tiny_model_dir) -> None:
    tokenizer = Phi3Tokenizer(tiny_model_dir / "tokenizer.json")
    assert completion_count({"completion_tokens": 9}, "abc", [1], tokenizer) == (9, "server")
    assert completion_count(None, "the sea", [1], tokenizer) == (tokenizer.count("the sea"), "tokenizer")
    assert completion_count(None, "abc", [1, 1], None) == (2, "chunks")


def test_chunks_sharing_a_stamp_with_the_next_content_chunk_are_flagged() -> None:
    from harness.targets.http_tokens import merged_with_next

    chunks = [Chunk(10, "a"), Chunk(20, "b"), Chunk(20, "c"), Chunk(30, "d")]
    assert merged_with_next(chunks) == [1]


def test_the_last_content_chunk_sharing_a_stamp_with_the_finish_chunk_is_flagged() -> None:
    from harness.targets.http_tokens import content_chunks, merged_with_next

    finish_apart = [Chunk(5, "", role=True), Chunk(10, "a"), Chunk(20, "b"), Chunk(25, ""), Chunk(25, "", {"x": 1})]
    assert merged_with_next(content_chunks(finish_apart), finish_apart) == []
    read_late = [Chunk(5, "", role=True), Chunk(10, "a"), Chunk(30, "b"), Chunk(30, ""), Chunk(31, "", {"x": 1})]
    assert merged_with_next(content_chunks(read_late), read_late) == [1]
