"""What the suites need to know about an HTTP endpoint besides its answers: health, model name, process.

Health conventions (tried in this order; the verdict names the one that answered):
    GET /health      llama-server, vLLM, TGI, phi3-harness serve: 200 = ready ({"status": "ok"}),
                     503 = still loading (polled until ready or ``wait_s`` passes)
    GET /v1/health   some gateways put it under the API prefix
    GET /v1/models   no health route (Foundry Local, LM Studio): a non-empty model list = loaded
    GET /            Ollama: "Ollama is running"
The serving process is found by the port it listens on (psutil), when the host is this machine, so
its memory and CPU can be sampled exactly as the in-process engine's are.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from harness.targets.http_conn import Endpoint

OK_STATUSES = {"ok", "ready", "healthy", "up", "pass", "green"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


@dataclass
class Answer:
    path: str
    status: int | None  # None: no HTTP answer (refused, timeout)
    body: str = ""
    error: str = ""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self) -> str:
        return f"GET {self.path} -> " + (f"{self.status}" if self.status is not None else self.error)


@dataclass
class Health:
    model_loaded: bool | None  # None: nothing answered that tells
    detail: str  # what was tried and what answered, for the verdict
    convention: str = ""  # the route that answered: "/health", "/v1/models", "ollama /", ""
    info: dict[str, Any] = field(default_factory=dict)  # the health body (serve: provider, load_s, ...)
    tried: list[Answer] = field(default_factory=list)


def get(endpoint: Endpoint, path: str, api_key: str | None = None, timeout_s: float = 5.0) -> Answer:
    kind = http.client.HTTPSConnection if endpoint.scheme == "https" else http.client.HTTPConnection
    connection = kind(endpoint.host, endpoint.port, timeout=timeout_s)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        connection.request("GET", endpoint.base_path + path, headers=headers)
        response = connection.getresponse()
        return Answer(path, response.status, response.read(65536).decode("utf-8", "replace"))
    except (OSError, http.client.HTTPException) as error:
        return Answer(path, None, error=f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    finally:
        connection.close()


def probe_health(endpoint: Endpoint, api_key: str | None = None, wait_s: float = 60.0,
                 poll_s: float = 0.5) -> Health:
    """Ask the endpoint whether its model is loaded, by the first convention it answers."""
    tried: list[Answer] = []
    answer = _wait_while_loading(endpoint, api_key, wait_s, poll_s, tried)
    if answer.status is None:
        return Health(None, f"no answer from {endpoint.url}: {answer.error}", tried=tried)
    if answer.status != 404:
        return _judge_health(answer, tried)
    for path in ("/v1/health", "/v1/models", "/"):
        answer = get(endpoint, path, api_key)
        tried.append(answer)
        if answer.status not in (404, None):
            return _judge_fallback(answer, tried)
    return Health(None, "no health convention answered: " + "; ".join(a.describe() for a in tried), tried=tried)


def _wait_while_loading(endpoint: Endpoint, api_key: str | None, wait_s: float, poll_s: float,
                        tried: list[Answer]) -> Answer:
    deadline = time.monotonic() + wait_s
    while True:
        answer = get(endpoint, "/health", api_key)
        if answer.status != 503 or time.monotonic() >= deadline:
            tried.append(answer)
            return answer
        time.sleep(poll_s)


def _tried(tried: list[Answer]) -> str:
    return "; ".join(a.describe() for a in tried)


def _judge_health(answer: Answer, tried: list[Answer]) -> Health:
    body = answer.json()
    info = body if isinstance(body, dict) else {}
    status = str(info.get("status", "")).lower()
    if answer.status == 200 and (not info or status in OK_STATUSES or "status" not in info):
        return Health(True, f"{_tried(tried)} {answer.body.strip()[:120]}", "/health", info, tried)
    return Health(False, f"{_tried(tried)} {answer.body.strip()[:160]}", "/health", info, tried)


def _judge_fallback(answer: Answer, tried: list[Answer]) -> Health:
    convention = {"/": "ollama /"}.get(answer.path, answer.path)
    text = answer.body.strip()
    if answer.path == "/v1/models":
        body = answer.json()
        models = body.get("data") if isinstance(body, dict) else None
        loaded = answer.status == 200 and isinstance(models, list) and len(models) > 0
        names = ", ".join(str(m.get("id")) for m in models[:3] if isinstance(m, dict)) if models else "none"
        return Health(loaded, f"no /health; {_tried(tried)} (models: {names})", convention, tried=tried)
    if answer.path == "/":
        loaded = answer.status == 200 and "ollama is running" in text.lower()
        return Health(loaded if loaded else None, f"no /health; {_tried(tried)} {text[:80]!r}", convention, tried=tried)
    return _judge_health(answer, tried)


def model_names(endpoint: Endpoint, api_key: str | None = None) -> list[str]:
    """Ids from /v1/models ([] when the route is missing or says nothing)."""
    body = get(endpoint, "/v1/models", api_key).json()
    data = body.get("data") if isinstance(body, dict) else None
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m] if isinstance(data, list) else []


# -- the serving process ------------------------------------------------------------------------


def is_this_machine(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        address = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return False
    if address.is_loopback:
        return True
    local = {a.address for addresses in psutil.net_if_addrs().values() for a in addresses}
    return str(address) in local


def listening_process(endpoint: Endpoint) -> tuple[psutil.Process | None, str]:
    """(the process listening on the endpoint's port, "") or (None, why it cannot be sampled)."""
    if not is_this_machine(endpoint.host):
        return None, f"the server {endpoint.host} is not on this machine: its memory and CPU cannot be sampled"
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError) as error:
        return None, f"cannot list listening sockets to find the server process ({error})"
    pids = {c.pid for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == endpoint.port}
    pids.discard(None)
    if not pids:
        return None, (f"no process of this user listens on port {endpoint.port} "
                      "(another user's, or inside a container): memory and CPU not sampled")
    if len(pids) > 1:
        return None, f"several processes listen on port {endpoint.port} ({sorted(pids)}): memory and CPU not sampled"
    pid = pids.pop()
    try:
        return psutil.Process(pid), ""
    except psutil.Error as error:
        return None, f"the server process {pid} cannot be read ({error})"
