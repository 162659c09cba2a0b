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
from typing import NoReturn, Sequence

from harness import __version__
from harness.errors import one_line

# what --help says (the module docstring above is for people reading the code)
DESCRIPTION = ("Validate and benchmark Phi-3 on ONNX Runtime on this machine: generate a reply, diagnose the "
               "providers, run the validation suites and write a report, serve an OpenAI-compatible endpoint.")

COMMANDS = {
    "tiny-model": "harness.commands.tiny_model",
    "generate": "harness.commands.generate",
    "doctor": "harness.commands.doctor",
    "run": "harness.commands.run",
    "report": "harness.commands.report",
    "serve": "harness.commands.serve",
}


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it has none worth showing or already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default in (None, False, [], argparse.SUPPRESS) or "default" in text or not action.option_strings
                or action.nargs == 0):
            return text
        return f"{text} (default: %(default)s)"


class _OneLineParser(argparse.ArgumentParser):
    """A malformed command line is one line naming the problem and where help is, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}: see {self.prog} --help\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Every command's parser; when ``argv`` names a command, that command's only.

    Building a command's parser imports its module and what that imports (``generate``'s flags
    need the engine and numpy): 0.11 s of `phi3-harness report` on a quiet 2-core machine went
    into the other commands' modules.
    """
    parser = _OneLineParser(prog="phi3-harness", description=DESCRIPTION, formatter_class=_HelpFormatter,
                            epilog="Run 'phi3-harness COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"phi3-harness {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in _commands_named(argv).items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP,
                                        formatter_class=_HelpFormatter)
        module.add_arguments(command_parser)
        # accepted after the command too; SUPPRESS keeps a later default from hiding the earlier flag
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                    help="show the traceback of an error")
        command_parser.set_defaults(_run=module.run)
    return parser


def _commands_named(argv: Sequence[str] | None) -> dict[str, str]:
    # The top-level options take no value, so the first other word is the command; top-level help
    # (asked for before any command) lists them all.
    for word in argv or ():
        if word in ("-h", "--help"):
            break
        if not word.startswith("-"):
            return {word: COMMANDS[word]} if word in COMMANDS else COMMANDS
    return COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    """The one error boundary: any error a command raises is one line on stderr and exit 2."""
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = build_parser(argv).parse_args(argv)  # imports the command's module: Ctrl-C may land here too
    except KeyboardInterrupt:
        print("phi3-harness: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
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
