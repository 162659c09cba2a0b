"""First-class flags for the matrix settings people change most, mapped onto config overrides.

``--prompt-lengths 128,1024`` is ``--set matrix.prompt_lengths=128,1024``, and so on; naming one
key both ways is a contradiction and a one-line error. Values are checked here so a typo is one
line naming the flag, not a pytest traceback.
"""

from __future__ import annotations

import argparse
import math

from harness.errors import HarnessError
from harness.judge.slo import parse_slo

# --sweep's offered loads, as multiples of the single-stream capacity (1 / E2E): from well below
# saturation to clearly past it, so the knee falls inside the plot
SWEEP_LOADS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)

# flag attribute -> (config key, kind of list item, whether a list is allowed)
FLAGS: dict[str, tuple[str, type, bool]] = {
    "prompt_lengths": ("matrix.prompt_lengths", int, True),
    "max_new_tokens": ("matrix.max_new_tokens", int, False),
    "concurrency": ("matrix.concurrency", int, True),
    "request_rate": ("matrix.arrival_rates", float, True),
    "repetitions": ("matrix.repetitions", int, False),
}


def add_matrix_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("matrix (shortcuts for --set matrix.KEY=VALUE)")
    group.add_argument("--prompt-lengths", metavar="N[,N...]", help="prompt lengths in tokens (config default: quick 16,128)")
    group.add_argument("--max-new-tokens", metavar="N", help="generated tokens per request (quick: 16)")
    group.add_argument("--concurrency", metavar="N[,N...]", help="closed-loop concurrency levels (quick: 1,4)")
    group.add_argument("--request-rate", metavar="R[,R...]",
                       help="open-loop Poisson arrival rates in requests/s (quick: 100)")
    group.add_argument("--repetitions", metavar="N", help="measured requests per latency case (quick: 30)")
    group.add_argument("--sweep", action="store_true",
                       help="also sweep open-loop Poisson rates from a quarter of the measured single-stream "
                            f"capacity to past saturation ({','.join(f'{x:g}' for x in SWEEP_LOADS)} x capacity); "
                            "the report plots TTFT and goodput against offered and achieved rate")
    group.add_argument("--slo", metavar="SPEC",
                       help="service-level objectives, e.g. ttft=300ms,tpot=50ms,e2el=2s: goodput counts requests "
                            "that meet all of them (names as vLLM bench, AIPerf, GuideLLM)")


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """``KEY=VALUE`` overrides for the flags given; contradictions with ``--set`` are errors."""
    overrides: list[str] = []
    for attribute, (key, kind, many) in FLAGS.items():
        text = getattr(args, attribute, None)
        if text is not None:
            overrides.append(f"{key}={_values(attribute, text, kind, many)}")
    if getattr(args, "sweep", False):
        overrides.append("matrix.sweep=" + ",".join(repr(load) for load in SWEEP_LOADS))
    if getattr(args, "slo", None) is not None:
        overrides += [f"slo.{name}_s={seconds!r}" for name, seconds in parse_slo(args.slo).items()]
    _refuse_contradictions(overrides, args.overrides)
    return overrides


def _values(attribute: str, text: str, kind: type, many: bool) -> str:
    flag = "--" + attribute.replace("_", "-")
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts or (len(parts) > 1 and not many):
        raise HarnessError(f"{flag} takes {'a list like 16,128' if many else 'one number'}, got {text!r}")
    values = []
    for part in parts:
        try:
            value = kind(part)
        except ValueError:
            raise HarnessError(f"{flag}: {part!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value) or value <= 0:
            raise HarnessError(f"{flag}: {part!r} must be a finite number > 0")
        values.append(repr(value))
    return ",".join(values)


def _refuse_contradictions(flags: list[str], sets: list[str]) -> None:
    given = {text.split("=", 1)[0].strip() for text in sets}
    for text in flags:
        key = text.split("=", 1)[0]
        if key in given:
            raise HarnessError(f"{key} is set twice (by a flag and by --set {key}=...): keep one")
