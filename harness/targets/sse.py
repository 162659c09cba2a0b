"""Server-sent events, parsed by the WHATWG rules (html.spec.whatwg.org, "Parsing an event stream").

Feed bytes as they arrive; complete events come out. What the rules say and this parser does:
lines end in CRLF, LF or CR (a CR at the end of one read may be followed by the LF in the next);
a line starting with ``:`` is a comment (servers send them as keep-alive pings); ``field: value``
loses one leading space from the value, so ``data:x`` and ``data: x`` are the same; several
``data`` lines in one event join with LF; a blank line dispatches the event; an event with no data
is dropped; unknown fields are ignored. A line longer than ``max_line_bytes`` is an error rather
than a silent truncation (aiohttp's fixed 64 KiB line buffer broke long outputs: vllm#39963).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE_BYTES = 16 * 1024 * 1024


class SseError(ValueError):
    """The byte stream is not a valid event stream."""


@dataclass(frozen=True)
class SseEvent:
    data: str
    event: str  # "message" unless the server named it
    t_ns: int  # arrival time of the read that completed the event


class SseParser:
    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self.comments = 0  # ``:`` lines seen (keep-alive pings)
        self._pending = b""  # bytes of an unfinished line
        self._skip_lf = False  # the previous read ended in CR: a leading LF belongs to it
        self._data: list[str] = []
        self._event = ""

    def feed(self, chunk: bytes, t_ns: int) -> list[SseEvent]:
        """Events completed by ``chunk`` (which arrived at ``t_ns``)."""
        if self._skip_lf and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._skip_lf = chunk.endswith(b"\r")
        buffer = self._pending + chunk
        lines = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        self._pending = lines.pop()  # no line end yet: wait for more bytes
        if len(self._pending) > self.max_line_bytes:
            raise SseError(f"an event-stream line is longer than {self.max_line_bytes} bytes")
        events: list[SseEvent] = []
        for line in lines:
            event = self._line(line, t_ns)
            if event is not None:
                events.append(event)
        return events

    @property
    def has_partial(self) -> bool:
        """Bytes or data lines that no blank line has dispatched yet."""
        return bool(self._pending or self._data)

    def _line(self, raw: bytes, t_ns: int) -> SseEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SseError(f"event-stream line is not UTF-8 ({error.reason})") from None
        if not line:
            return self._dispatch(t_ns)
        if line.startswith(":"):
            self.comments += 1
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None  # id, retry and unknown fields do not matter to a completion stream

    def _dispatch(self, t_ns: int) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SseEvent("\n".join(data), event or "message", t_ns)
