"""Stop strings over streamed text: the reply ends before the first stop string, which is not sent.

Text is streamed as it comes, except a tail that could still grow into a stop string: that is held
back until the next delta proves it is not one (or the reply ends and it is released).
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(stops)
        self._held = ""  # text received but not yet released
        self.stopped = False

    def feed(self, delta: str) -> str:
        """The text that can be sent now. After a stop string, ``stopped`` is True and nothing more is sent."""
        if self.stopped:
            return ""
        if not self._stops:
            return delta
        text = self._held + delta
        cut = _first_stop(text, self._stops)
        if cut is not None:
            self.stopped, self._held = True, ""
            return text[:cut]
        keep = _partial_tail(text, self._stops)
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """At the end of the reply: the held-back tail was not a stop string after all."""
        held, self._held = self._held, ""
        return "" if self.stopped else held


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [index for index in (text.find(stop) for stop in stops) if index >= 0]
    return min(found) if found else None


def _partial_tail(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that is a proper start of some stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
