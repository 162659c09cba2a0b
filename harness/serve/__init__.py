"""The reference OpenAI-compatible server over the in-process engine (``phi3-harness serve``).

Rooms: ``schemas`` (request validation), ``generation`` (engine runs in worker threads),
``completion`` (one request as an ASGI response: relay, stop strings, client disconnect),
``streaming`` (the bytes: SSE chunks / JSON), ``app`` (routes, key, body cap, errors),
``state`` (options, model loading), ``server`` (uvicorn, socket, start/stop).
"""
