"""POST /v1/chat/completions bodies -> ``ChatParams``, or one ``ApiError`` (400) naming the field.

What is accepted (OpenAI's chat API, the parts a local Phi-3 can honour):
- ``messages``: a non-empty list of ``{"role", "content"}``; roles system | user | assistant
  (``developer`` is taken as system); content a string or a list of ``{"type": "text", "text"}``
  parts (null content counts as ""). Other part types are refused.
- ``model`` (any string: the server runs one model and answers with its own name), ``stream``,
  ``stream_options.include_usage`` (+ vLLM's ``continuous_usage_stats``: usage on every chunk),
  ``max_tokens`` / ``max_completion_tokens`` (the latter wins; both capped by the context),
  ``temperature`` (>= 0; 0 = greedy; default 1 as in OpenAI's API), ``top_p`` (0 < p <= 1), ``top_k`` (vLLM's extension; 0 or -1 = off), ``seed`` (64-bit integer),
  ``stop`` (a string or up to 4 non-empty strings).
- ``ignore_eos`` (vLLM's extension, sent by load tools): true keeps generating past EOS.
- Features the engine cannot honour are refused when asked for (``n`` > 1, ``logprobs``,
  ``tools``, penalties, ``logit_bias``, a JSON ``response_format``); their neutral values pass.
- Any other field is ignored, as vLLM does: load tools send their own extras.

JSON's ``NaN`` / ``Infinity`` literals are refused: Python's json accepts them, OpenAI's API does not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.serve.api_error import ApiError, bad_field

ROLE_ALIASES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
MAX_STOP_STRINGS = 4
_INT64 = 2**63

# Field -> test that its value asks for nothing (anything else is refused as unsupported).
_NEUTRAL: dict[str, Callable[[Any], bool]] = {
    "n": lambda v: v is None or (type(v) is int and v == 1),
    "logprobs": lambda v: v is None or v is False,
    "top_logprobs": lambda v: v is None or v == 0,
    "tools": lambda v: not v,
    "functions": lambda v: not v,
    "logit_bias": lambda v: not v,
    "presence_penalty": lambda v: v is None or v == 0,
    "frequency_penalty": lambda v: v is None or v == 0,
    "repetition_penalty": lambda v: v is None or v == 1,
    "response_format": lambda v: v is None or (isinstance(v, dict) and v.get("type") == "text"),
}


@dataclass(frozen=True)
class ChatParams:
    messages: tuple[tuple[str, str], ...]
    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    continuous_usage: bool = False  # vLLM's stream_options.continuous_usage_stats: usage on every chunk
    max_tokens: int | None = None  # None: up to the context
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def parse_chat_request(body: bytes) -> ChatParams:
    data = _load_json(body)
    for name, is_neutral in _NEUTRAL.items():
        if name in data and not is_neutral(data[name]):
            raise ApiError(400, f"{name}={data[name]!r} is not supported by this server: leave it out",
                           param=name, code="unsupported_parameter")
    stream = _bool(data, "stream")
    include_usage, continuous_usage = _stream_options(data.get("stream_options"))
    return ChatParams(
        messages=_messages(data.get("messages")),
        model=_optional_str(data, "model"),
        stream=stream,
        include_usage=include_usage and stream,
        continuous_usage=continuous_usage and include_usage and stream,  # vLLM needs both, as here
        max_tokens=_max_tokens(data),
        temperature=_number(data, "temperature", 1.0, lambda v: v >= 0, ">= 0 (0 = greedy)"),
        top_p=_number(data, "top_p", 1.0, lambda v: 0 < v <= 1, "in (0, 1]"),
        top_k=_top_k(data),
        seed=_seed(data),
        stop=_stop(data.get("stop")),
        ignore_eos=_bool(data, "ignore_eos"),
    )


def _load_json(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the request body is not UTF-8: send JSON encoded as UTF-8", code="invalid_json") from None
    except ValueError as error:  # JSONDecodeError and the NaN refusal
        raise ApiError(400, f"the request body is not valid JSON ({error}): send one JSON object",
                       code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    return data


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _messages(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise bad_field("messages", "messages must be a non-empty list of {role, content} objects")
    return tuple(_message(index, item) for index, item in enumerate(value))


def _message(index: int, item: Any) -> tuple[str, str]:
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        raise bad_field(where, f"{where} must be an object with role and content")
    role = item.get("role")
    if role not in ROLE_ALIASES:
        raise bad_field(f"{where}.role", f"{where}.role must be one of system, user, assistant (got {role!r})")
    return ROLE_ALIASES[role], _content(where, item.get("content"))


def _content(where: str, content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise bad_field(f"{where}.content", f"{where}.content parts must be {{\"type\": \"text\", \"text\": ...}}")
            texts.append(part["text"])
        return "".join(texts)
    raise bad_field(f"{where}.content", f"{where}.content must be a string or a list of text parts")


def _bool(data: dict, name: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_field(name, f"{name} must be true or false (got {value!r})")
    return value


def _optional_str(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise bad_field(name, f"{name} must be a string (got {value!r})")
    return value


def _stream_options(options: Any) -> tuple[bool, bool]:
    """(include_usage, continuous_usage_stats)."""
    if options is None:
        return False, False
    if not isinstance(options, dict):
        raise bad_field("stream_options", "stream_options must be an object such as {\"include_usage\": true}")
    return _bool(options, "include_usage"), _bool(options, "continuous_usage_stats")


def _int(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if type(value) is not int:  # bool is an int subclass; true is not a token count
        raise bad_field(name, f"{name} must be an integer (got {value!r})")
    return value


def _max_tokens(data: dict) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = _int(data, name)
        if value is not None:
            if value < 1:
                raise bad_field(name, f"{name} must be >= 1 (got {value})")
            return value
    return None


def _number(data: dict, name: str, default: float, ok: Callable[[float], bool], rule: str) -> float:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise bad_field(name, f"{name} must be a number {rule} (got {value!r})")
    return float(value)


def _top_k(data: dict) -> int:
    value = _int(data, "top_k")
    if value is None or value in (0, -1):
        return 0
    if value < 0:
        raise bad_field("top_k", f"top_k must be >= 1, or 0 / -1 for no filter (got {value})")
    return value


def _seed(data: dict) -> int | None:
    value = _int(data, "seed")
    if value is None:
        return None
    if not -_INT64 <= value < _INT64:
        raise bad_field("seed", f"seed must fit in 64 bits (got {value})")
    # numpy's generators take seeds >= 0: a negative seed maps to its two's complement, still repeatable
    return value % 2**64


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    strings = [value] if isinstance(value, str) else value
    if (
        not isinstance(strings, list)
        or len(strings) > MAX_STOP_STRINGS
        or not all(isinstance(s, str) and s for s in strings)
    ):
        raise bad_field("stop", f"stop must be a non-empty string or a list of up to {MAX_STOP_STRINGS} of them")
    return tuple(strings)
