"""Command line: parse arguments, call a plain function. Nothing is measured or rendered here.

Each subcommand lives in ``harness/commands/<name>.py`` and exposes ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; this list is the one place they are registered.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from typing import Sequence

from harness.errors import one_line

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
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command_parser)
        # accepted after the command too; SUPPRESS keeps a later default from hiding the earlier flag
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                    help="show the traceback of an error")
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The one error boundary: any error a command raises is one line on stderr and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"phi3-harness {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Exception as error:  # noqa: BLE001 - the boundary: every error becomes one line
        if args.debug:
            traceback.print_exc()
        print(f"phi3-harness {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
