"""The event-stream parser follows the WHATWG rules, whatever way the bytes are split."""

from __future__ import annotations

import pytest

from harness.targets.sse import SseError, SseParser

STREAM = (b": ping\r\n\r\ndata:{\"a\":1}\r\n\r\ndata: line one\ndata: line two\n\n"
          b"event: note\nid: 3\nretry: 10\nfoo: bar\ndata: x\r\rdata\n\ndata: [DONE]\n\n")
EXPECTED = ['{"a":1}', "line one\nline two", "x", "", "[DONE]"]


def parse(pieces: list[bytes]) -> tuple[list[str], SseParser]:
    parser = SseParser()
    events = []
    for t, piece in enumerate(pieces):
        events += parser.feed(piece, t)
    return [e.data for e in events], parser


def test_comments_multiline_data_optional_space_and_all_line_ends() -> None:
    data, parser = parse([STREAM])
    assert data == EXPECTED
    assert parser.comments == 1 and not parser.has_partial


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_any_split_of_the_bytes_gives_the_same_events(size: int) -> None:
    pieces = [STREAM[i:i + size] for i in range(0, len(STREAM), size)]
    assert parse(pieces)[0] == EXPECTED


def test_event_carries_the_time_of_the_piece_that_completed_it() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a", 10) == []
    (event,) = parser.feed(b"\n\n", 20)
    assert (event.data, event.t_ns, event.event) == ("a", 20, "message")


def test_named_event_type_is_kept() -> None:
    (event,) = SseParser().feed(b"event: error\ndata: {}\n\n", 1)
    assert event.event == "error"


def test_unfinished_event_is_reported_as_partial() -> None:
    parser = SseParser()
    parser.feed(b"data: half", 1)
    assert parser.has_partial


def test_overlong_line_and_non_utf8_are_errors() -> None:
    with pytest.raises(SseError, match="longer than"):
        SseParser(max_line_bytes=8).feed(b"data: 0123456789", 1)
    with pytest.raises(SseError, match="not UTF-8"):
        SseParser().feed(b"data: \xff\n\n", 1)


def test_long_line_beyond_64_kib_is_one_event() -> None:
    text = "y" * 200_000  # aiohttp's 64 KiB line buffer broke such outputs (vllm#39963)
    (event,) = SseParser().feed(f"data: {text}\n\n".encode(), 1)
    assert event.data == text
