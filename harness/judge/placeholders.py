"""Text a stub server, a mock or a broken pipeline returns instead of generating.

Phrases (whole words, any case, any spacing) and shapes (the answer repeats the prompt, or talks
about the request instead of answering it). Each entry has a name that the verdict quotes.
tests/test_placeholders.py holds a positive and a negative example for every entry.
"""

from __future__ import annotations

import re
from typing import Sequence

_FILLER = r"(?:response|reply|output|answer|text|completion|message|content)"
_SP = r"\s+"

PHRASES: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "lorem ipsum": rf"\blorem{_SP}ipsum\b",
        "placeholder": r"\bplace[\s-]?holders?\b",
        "dummy/stub/mock/fake text": rf"\b(?:dummy|stub(?:bed)?|mock(?:ed)?|fake|canned|test|sample){_SP}{_FILLER}s?\b",
        "to do": r"\bTODO\b|\bTBD\b|\bFIXME\b",
        "not implemented": rf"\bnot{_SP}(?:yet{_SP})?implemented\b",
        "response generated using": rf"\b(?:response|output|answer|text){_SP}(?:was{_SP})?generated{_SP}(?:using|by|with)\b",
        "canned apology": (rf"\b(?:I'?m|I{_SP}am){_SP}(?:sorry|afraid),?{_SP}(?:but{_SP})?I{_SP}(?:can(?:'|no)t|cannot|am{_SP}unable{_SP}to|"
                           rf"(?:do{_SP})?not{_SP}(?:able|know))"
                           rf"|\bas{_SP}an{_SP}AI(?:{_SP}language)?{_SP}model\b"
                           rf"|\bI{_SP}(?:am{_SP}unable{_SP}to|cannot|can'?t){_SP}(?:help|assist|answer|respond){_SP}(?:with{_SP})?(?:that|this)\b"),
        "describes the request": (rf"\b(?:you|the{_SP}user){_SP}(?:have{_SP}|has{_SP})?asked{_SP}(?:me{_SP})?(?:about|for|to|a|the|whether)\b"
                                  rf"|\byour{_SP}(?:question|request|prompt|message){_SP}(?:was|is|asks|reads|says)\b"
                                  rf"|\bthe{_SP}(?:user'?s{_SP})?(?:request|prompt){_SP}(?:asks|was|reads|says)\b"
                                  rf"|\b(?:this|here){_SP}is{_SP}(?:a|an|the|my){_SP}(?:response|reply|answer){_SP}to{_SP}(?:your|the)\b"
                                  rf"|\bin{_SP}response{_SP}to{_SP}(?:your|the){_SP}(?:question|request|prompt|message)\b"),
    }.items()
}

MIN_ECHO_WORDS = 4  # a shorter prompt can be repeated by a real answer ("Paris." for "Paris?")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def echoes(output: str, prompt: str) -> bool:
    """The answer repeats the prompt: the prompt's words (at least MIN_ECHO_WORDS) appear in order,
    one after another, in the output."""
    prompt_words, output_words = _words(prompt), _words(output)
    size = len(prompt_words)
    if size < MIN_ECHO_WORDS:
        return False
    return any(output_words[i : i + size] == prompt_words for i in range(len(output_words) - size + 1))


def placeholder_hit(output: str, prompt: str = "") -> str | None:
    """The name and the matched text of the first phrase or shape found, e.g. "placeholder ('stub reply')"."""
    for name, pattern in PHRASES.items():
        if (match := pattern.search(output)) is not None:
            return f"{name} ({match.group(0)!r})"
    if prompt and echoes(output, prompt):
        return "echo of the prompt"
    return None


def placeholder_hits(outputs: Sequence[str], prompts: Sequence[str] = ()) -> list[str]:
    """One entry per output that looks like a placeholder: "#2: placeholder ('...')"."""
    hits = []
    for index, output in enumerate(outputs):
        prompt = prompts[index] if index < len(prompts) else ""
        if (hit := placeholder_hit(output, prompt)) is not None:
            hits.append(f"#{index}: {hit}")
    return hits
