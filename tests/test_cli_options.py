"""The CLI's surface: --version, help text on every option, contradictory generate options refused."""

from __future__ import annotations

import argparse

import pytest

from harness import __version__
from harness.cli import build_parser, main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"phi3-harness {__version__}"


def test_top_level_help_describes_the_tool_not_the_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "Validate and benchmark Phi-3" in out
    assert "parse arguments" not in out


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_every_option_of_every_command_has_help(command: str) -> None:
    parser = _subparsers()[command]
    missing = [a.option_strings or a.dest for a in parser._actions if not a.help]
    assert missing == []


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 64)" in out and "(default: auto)" in out


@pytest.mark.parametrize(("argv", "named"), [
    (["generate", "hi", "--top-k", "5"], "--top-k has no effect with greedy decoding"),
    (["generate", "hi", "--greedy", "--seed", "3"], "--seed has no effect with --greedy"),
    (["generate", "hi", "--top-p", "0.5", "--seed", "1"], "--top-p, --seed have no effect"),
])
def test_contradictory_generate_options_are_one_line_errors(argv: list[str], named: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "--temperature" in err[0]


@pytest.mark.parametrize("argv", [
    ["report", "runs/a", "--baseline", "runs/b", "--fail-on-regression", "10"],
    ["--debug", "generate", "hi", "--max-new-tokens", "3"],
    ["doctor", "--json", "--debug"],
])
def test_a_command_line_parses_the_same_with_only_its_commands_parser(argv: list[str]) -> None:
    alone = build_parser(argv)
    action = next(a for a in alone._actions if isinstance(a, argparse._SubParsersAction))
    assert list(action.choices) == [next(word for word in argv if not word.startswith("-"))]
    assert vars(alone.parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--help"], ["--help", "report"], ["nonsense", "--help"]])
def test_top_level_help_and_an_unknown_command_see_every_command(argv: list[str]) -> None:
    action = next(a for a in build_parser(argv)._actions if isinstance(a, argparse._SubParsersAction))
    assert len(action.choices) == 6 and "report" in action.choices
