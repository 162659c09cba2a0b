"""The OpenAI-compatible app (Starlette): routes, API key, body cap, error bodies.

Routes:
- ``GET /health``: 200 ``{"status": "ok", "model", "provider" (the one actually executing),
  "execution_providers", "context_length", "kv_budget_tokens", "active_requests", ...}`` when ready; 503 with an
  OpenAI-style error body (code ``model_loading`` or ``model_load_failed``) otherwise. Never needs
  the API key, so probes and load balancers work without it.
- ``GET /v1/models``: the one model served (``{"object": "list", "data": [...]}``).
- ``POST /v1/chat/completions``: see ``schemas`` (fields) and ``streaming`` (bytes).
Every refusal is ``{"error": {...}}``: 400 bad JSON / field / over-context prompt, 401 missing or
wrong key (when the server has one), 404/405 unknown route or method, 413 body over the cap,
503 model not ready, 500 generation failure.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.serve.api_error import ApiError, one_line
from harness.serve.completion import ChatCompletion
from harness.serve.schemas import parse_chat_request
from harness.serve.state import ModelState

log = logging.getLogger("harness.serve")


def build_app(state: ModelState, on_startup: Callable[[], None] | None = None) -> OneLineErrors:
    """The app over ``state``; ``on_startup`` runs once the server has started (it starts the load)."""

    async def health(request: Request) -> Response:
        if state.status != "ready":
            return error_response(state.unavailable())
        return JSONResponse(state.health())

    async def models(request: Request) -> Response:
        check_key(request, state.options.api_key)
        state.require_ready()
        return JSONResponse({"object": "list", "data": [state.model_card()]})

    async def chat_completions(request: Request) -> Any:
        check_key(request, state.options.api_key)
        body = await read_capped(request, state.options.max_body_bytes)
        params = parse_chat_request(body)
        return ChatCompletion(state.require_ready(), params, state.model_name)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            on_startup()
        try:
            yield
        finally:
            state.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ],
        exception_handlers={ApiError: _api_error_handler, HTTPException: _http_error_handler,
                            Exception: _internal_error_handler},
        lifespan=lifespan,
    )
    return OneLineErrors(app)


class OneLineErrors:
    """Outermost ASGI layer: a failure is one log line, never a traceback in the server's output.

    Starlette answers an unexpected exception (with ``_internal_error_handler``'s JSON body) and
    re-raises it for the server to log with its traceback; here it ends as one line instead. A
    client that hangs up while its body is still arriving (``ClientDisconnect``) is not an error.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            return
        except Exception as error:  # noqa: BLE001 - already answered with a 500; logged on one line
            log.error("%s %s failed: %s", scope.get("method", ""), scope.get("path", ""), one_line(error))


def check_key(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    # compare_digest: the time taken does not say how much of the key was right
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
        what = "a wrong API key" if given else "no API key"
        raise ApiError(401, f"{what} was given: send the header 'Authorization: Bearer <key>' with the server's --api-key",
                       code="invalid_api_key")


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past ``limit`` bytes (by its Content-Length, or while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is over the server's cap of {limit} bytes: send a shorter prompt",
                    code="request_too_large")


def error_response(error: ApiError) -> Response:
    headers = {"www-authenticate": "Bearer"} if error.status == 401 else None
    return Response(error.json_bytes(), status_code=error.status, media_type="application/json", headers=headers)


async def _api_error_handler(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error_response(error)


async def _internal_error_handler(request: Request, error: Exception) -> Response:
    return error_response(ApiError(500, f"the server failed on this request ({one_line(error)}): see its log"))


async def _http_error_handler(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    status = error.status_code
    message = {404: f"no route {request.url.path}: use /health, /v1/models or /v1/chat/completions",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(status, str(error.detail))
    return error_response(ApiError(status, message))
