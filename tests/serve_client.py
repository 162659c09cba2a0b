"""A minimal raw HTTP client for the `serve` tests: what is on the wire, with no client library between."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 20.0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[Any]:
        """SSE ``data:`` payloads in order: parsed JSON, or the string ``[DONE]``."""
        events = []
        for block in self.body.decode("utf-8").split("\n\n"):
            if not block.strip():
                continue
            assert block.startswith("data: "), block
            payload = block[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
        return events


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)


def request(url: str, method: str, path: str, body: bytes | dict | None = None,
            headers: dict[str, str] | None = None) -> Reply:
    connection = connect(url)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        connection.request(method, path, body=data, headers={"content-type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def chat(url: str, content: str = "hello", headers: dict[str, str] | None = None, **fields: Any) -> Reply:
    body = {"model": "any", "messages": [{"role": "user", "content": content}], **fields}
    return request(url, "POST", "/v1/chat/completions", body, headers)


def streamed_text(events: list[Any]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events if isinstance(event, dict)
        for choice in event.get("choices", [])
    )
