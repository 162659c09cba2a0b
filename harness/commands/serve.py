"""`phi3-harness serve`: the reference OpenAI-compatible server over the engine (harness/serve/)."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

HELP = "Serve the engine over an OpenAI-compatible HTTP API (/health, /v1/models, /v1/chat/completions)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, help="model folder, or a preset: tiny (the default) or small (memory-bound int4)")
    parser.add_argument("--provider", default="cpu", help="cpu, dml, qnn or cuda (default cpu)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    parser.add_argument("--api-key", help="require 'Authorization: Bearer KEY' on /v1/* (default: no key)")
    parser.add_argument("--model-name", help="the model id clients see (default: the model folder's name)")
    parser.add_argument("--max-concurrency", type=int, default=64, help="requests generating at once; more wait (default 64)")
    parser.add_argument("--kv-budget-gib", type=float, default=4.0,
                        help="KV cache the requests in flight may reserve; more wait their turn (default 4)")
    parser.add_argument("--max-body-bytes", type=int, default=4 * 2**20, help="request body cap, 413 above it (default 4 MiB)")
    parser.add_argument("--config", help="run config (TOML path or configs/ name) for the provider's options and threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set provider.cpu.intra_op_num_threads=2")


def run(args: argparse.Namespace) -> int:
    try:
        from harness.serve.server import serve_forever
        from harness.serve.state import ServeOptions
    except ImportError as error:
        raise HarnessError(f"serve needs its extra ({error.name} is missing): pip install 'phi3-harness[serve]'") from None
    if not 0 <= args.port <= 65535:
        raise HarnessError(f"--port must be in 0..65535 (got {args.port})")
    if args.max_concurrency < 1 or args.max_body_bytes < 1:
        raise HarnessError("--max-concurrency and --max-body-bytes must be >= 1")
    if not (math.isfinite(args.kv_budget_gib) and args.kv_budget_gib > 0):
        raise HarnessError(f"--kv-budget-gib must be a number > 0 (got {args.kv_budget_gib})")
    if args.api_key is not None and not args.api_key.strip():
        raise HarnessError("--api-key is empty: give a key, or leave the option out")
    settings = _settings(args)  # a bad config fails here, before anything listens
    logging.basicConfig(level=logging.INFO, format="phi3-harness serve: %(message)s", stream=sys.stderr)
    options = ServeOptions(
        model_dir=args.model, provider=settings.name, settings=settings, host=args.host, port=args.port, api_key=args.api_key,
        model_name=args.model_name, max_body_bytes=args.max_body_bytes, max_concurrency=args.max_concurrency,
        kv_budget_gib=args.kv_budget_gib,
    )
    return serve_forever(options)


def _settings(args: argparse.Namespace) -> Any:
    """The provider's options and threading: the config defaults <- --config <- --set (as `run` uses)."""
    from harness.config import load_config, parse_override
    from harness.providers import execution_provider_name, short_name

    name = short_name(args.provider)
    if name == "auto":
        raise HarnessError("serve runs on one provider: name it with --provider (cpu, dml, qnn or cuda)")
    execution_provider_name(name)  # an unknown name is a one-line error before anything listens
    config = load_config(args.config, dict(parse_override(text) for text in args.overrides))
    return config.provider_settings(name)
