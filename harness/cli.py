"""Command line: parse arguments, call a plain function. Nothing is measured or rendered here.

Each subcommand lives in ``harness/commands/<name>.py`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; this list is the one place they are registered.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from harness.errors import HarnessError

COMMANDS = {
    "tiny-model": "harness.commands.tiny_model",
    "generate": "harness.commands.generate",
    "doctor": "harness.commands.doctor",
    "run": "harness.commands.run",
    "report": "harness.commands.report",
    "serve": "harness.commands.serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phi3-harness", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except HarnessError as error:
        print(f"phi3-harness {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"phi3-harness {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
