"""OpenAI-style error bodies: ``{"error": {"message", "type", "param", "code"}}``.

The official ``openai`` client turns such a body (with the HTTP status) into its ``APIError``
subclasses, and load tools print ``message``; so every refusal the server makes goes through here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# HTTP status -> OpenAI's error ``type`` for it.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    500: "server_error",
    503: "unavailable_error",
}


@dataclass(eq=False)  # not frozen: raising and re-raising sets attributes on exceptions
class ApiError(Exception):
    """A refusal with its HTTP status; ``message`` names the problem and the fix."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        return self.message

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "invalid_request_error"),
                "param": self.param,
                "code": self.code,
            }
        }

    def json_bytes(self) -> bytes:
        return json.dumps(self.body(), ensure_ascii=False).encode("utf-8")


def bad_field(param: str, message: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, for logs and bodies that must stay one line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
