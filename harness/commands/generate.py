"""`phi3-harness generate`: stream one reply from the engine and print its timings."""

from __future__ import annotations

import argparse
import json
import sys
import time

from harness.errors import HarnessError
from harness.units import duration, number
from harness.measure.metrics import build_record
from harness.model.default_model import resolve_model
from harness.model.sampling import SamplingParams
from harness.targets.engine import KV_STRATEGIES, Engine
from harness.providers import (
    ProviderSettings,
    huge_pages_in_effect,
    prefill_logits_in_effect,
    short_name,
    threading_in_effect,
)
from harness.targets.base import Request, TokenEvent, Usage

# build_record wants run metadata; one interactive request has none worth recording
_GENERATE_META = dict(run_id="", case_id="generate", test="generate", target="engine", provider="", prompt_length=0,
                      concurrency=1, request_index=0, worker=0, cold=True)

HELP = "Generate a reply to one prompt with the reference engine; print TTFT, E2E, decode tok/s and token counts."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the user message (rendered with the Phi-3 chat template)")
    parser.add_argument("--model", help="model folder, or a preset: tiny (the default) or small (memory-bound int4)")
    parser.add_argument("--provider", default="cpu", help="cpu, dml, qnn or cuda (default cpu)")
    parser.add_argument("--system", help="an optional system message")
    parser.add_argument("--max-new-tokens", type=int, default=64,
                        help="stop after this many generated tokens (or at the end-of-turn token)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="argmax decoding (the default)")
    mode.add_argument("--temperature", type=float, help="sample at this temperature instead of greedy")
    parser.add_argument("--top-k", type=int, default=0, help="with --temperature: keep the k best tokens (default: 0, all)")
    parser.add_argument("--top-p", type=float, default=1.0, help="with --temperature: nucleus mass")
    parser.add_argument("--seed", type=int, help="with --temperature: seed for repeatable sampling")
    parser.add_argument("--kv-strategy", choices=KV_STRATEGIES, default="auto",
                        help="where the KV cache lives between steps; auto picks the provider's best")
    parser.add_argument("--config", help="run config (TOML path or configs/ name) for the provider's options and threads")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set provider.cpu.intra_op_num_threads=1")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")


def run(args: argparse.Namespace) -> int:
    _check_text("the prompt", args.prompt, required=True)
    _check_text("--system", args.system, required=False)
    _sampling(args)  # bad sampling options fail before a (possibly slow) model load
    engine = Engine.load(resolve_model(args.model), _settings(args), args.kv_strategy)
    messages = ((("system", args.system),) if args.system else ()) + (("user", args.prompt),)
    _check_fits(engine, messages, args.max_new_tokens)
    request = Request(
        messages=messages,
        max_new_tokens=args.max_new_tokens,
        greedy=args.temperature is None,
        temperature=1.0 if args.temperature is None else args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )
    submit_ns = time.perf_counter_ns()
    tokens: list[TokenEvent] = []
    usage: Usage | None = None
    for item in engine.stream(request):
        if isinstance(item, TokenEvent):
            tokens.append(item)
            if not args.json:
                print(item.text, end="", flush=True)
        else:
            usage = item
    assert usage is not None  # the engine always ends with Usage
    summary = _summary(engine, submit_ns, tokens, usage, time.perf_counter_ns())
    if args.json:
        summary["threading"] = threading_in_effect(engine.session)
        summary["huge_pages"] = huge_pages_in_effect(engine.session)
        summary["prefill_logits"] = prefill_logits_in_effect(engine.session)
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(file=sys.stdout)
        # two lines, so that each fits 100 columns: timings, then token counts
        print(f"--- provider {summary['provider']} | load {engine.load_seconds:.2f} s | TTFT {duration(summary['ttft_s'])}"
              f" | E2E {duration(summary['e2e_s'])} | decode {number(summary['decode_tok_s'])} tok/s")
        print(f"--- prompt {usage.prompt_tokens} tokens | completion {usage.completion_tokens} tokens"
              f" ({usage.finish_reason})")
    return 0


def _check_text(what: str, text: str | None, required: bool) -> None:
    """Text from the command line: valid UTF-8 (the OS hands undecodable bytes over as surrogates)."""
    if text is None:
        return
    if required and not text.strip():
        raise HarnessError(f"{what} is empty: give the text to answer, e.g. phi3-harness generate \"Hello\"")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        byte = ord(text[error.start]) - 0xDC00 if 0xDC80 <= ord(text[error.start]) <= 0xDCFF else None
        shown = f"byte 0x{byte:02x}" if byte is not None else f"character U+{ord(text[error.start]):04X}"
        raise HarnessError(f"{what} is not valid UTF-8 text ({shown} at offset {error.start}): "
                           "pass UTF-8 text (check the terminal's or file's encoding)") from None


def _sampling(args: argparse.Namespace) -> SamplingParams:
    if args.seed is not None and args.seed < 0:
        raise HarnessError(f"--seed must be >= 0 (got {args.seed}): use any non-negative integer")
    if args.max_new_tokens < 1:
        raise HarnessError(f"--max-new-tokens must be >= 1 (got {args.max_new_tokens})")
    _check_sampling_flags(args)
    temperature = 1.0 if args.temperature is None else args.temperature
    return SamplingParams(args.temperature is None, temperature, args.top_k, args.top_p, args.seed)


def _check_sampling_flags(args: argparse.Namespace) -> None:
    """Sampling options only mean something when sampling: refuse them with greedy instead of ignoring them."""
    given = [flag for flag, value, unset in (("--top-k", args.top_k, 0), ("--top-p", args.top_p, 1.0),
                                             ("--seed", args.seed, None)) if value != unset]
    if given and args.temperature is None:
        mode = "--greedy" if args.greedy else "greedy decoding (the default)"
        verb = "has" if len(given) == 1 else "have"
        raise HarnessError(f"{', '.join(given)} {verb} no effect with {mode}: "
                           "add --temperature T (e.g. --temperature 0.7) to sample, or drop it")


def _check_fits(engine: Engine, messages: tuple[tuple[str, str], ...], max_new_tokens: int) -> None:
    """The prompt and every requested new token must fit the model's context: no silent cap."""
    limit = min(engine.config.context_length, engine.config.max_length)
    prompt = len(engine.tokenizer.encode_chat(messages, add_bos=True))
    if prompt + max_new_tokens > limit:
        room = limit - prompt
        fix = f"use --max-new-tokens {room} or less" if room >= 1 else "shorten the prompt"
        raise HarnessError(f"the prompt ({prompt} tokens) plus --max-new-tokens {max_new_tokens} exceeds the "
                           f"model's context of {limit} tokens: {fix}")


def _settings(args: argparse.Namespace) -> ProviderSettings:
    """The provider's options and threading: built-in defaults <- --config <- --set."""
    if not args.config and not args.overrides:
        return ProviderSettings(name=args.provider)
    from harness.config import load_config, parse_override

    config = load_config(args.config, dict(parse_override(text) for text in args.overrides))
    return config.provider_settings(short_name(args.provider))


def _summary(engine: Engine, submit_ns: int, tokens: list[TokenEvent], usage: Usage, end_ns: int) -> dict:
    # the same arithmetic (and definitions) as every measured request in a run
    record = build_record(tokens, usage, None, submit_ns=submit_ns, stream_end_ns=end_ns, meta=_GENERATE_META)
    return {
        "prompt_ids": list(usage.prompt_ids),
        "output_ids": record.output_ids,
        "text": engine.tokenizer.decode(record.output_ids),
        "ttft_s": record.ttft_s,
        "e2e_s": record.e2e_s,
        "decode_tok_s": record.decode_tok_s,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "finish_reason": usage.finish_reason,
        "provider": engine.provider,
        "execution_providers": engine.session.get_providers(),
        "kv_strategy": engine.kv_strategy,
        "load_s": engine.load_seconds,
        "model": str(engine.folder.path),
    }
