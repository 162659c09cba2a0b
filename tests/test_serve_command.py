"""`phi3-harness serve` as a user runs it: a subprocess, its log lines, Ctrl-C, bad input. Bounded waits."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_model import BuildFn
from serve_client import request

from harness.cli import main
from harness.serve.server import exposure_warning
from harness.serve.state import ServeOptions

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT to a child, a POSIX signal")


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_logs_its_url_answers_then_stops_cleanly_on_ctrl_c(tiny_builds: BuildFn) -> None:
    process = start("--model", str(tiny_builds()), "--port", "0")
    try:
        first = process.stderr.readline()  # the line says where it listens (port 0 -> the bound port)
        url = re.search(r"listening at (http://127\.0\.0\.1:\d+)", first).group(1)
        ready = process.stderr.readline()
        assert " on cpu (CPUExecutionProvider) at " + url in ready
        assert request(url, "GET", "/health").json()["status"] == "ok"
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 130
    assert rest.strip() == "phi3-harness serve: stopped (SIGINT)"


def test_a_folder_without_a_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    process = start("--model", str(tmp_path), "--port", "0")
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    lines = stderr.strip().splitlines()
    assert process.returncode == 2 and "Traceback" not in stderr
    assert len(lines) == 2 and lines[1].startswith("phi3-harness serve: the model did not load: ")


@pytest.mark.parametrize(("args", "message"), [(["--port", "70000"], "--port must be in"),
                                                (["--api-key", " "], "--api-key is empty"),
                                                (["--max-concurrency", "0"], "must be >= 1"),
                                                (["--kv-budget-gib", "nan"], "--kv-budget-gib must be"),
                                                (["--provider", "nope"], "unknown provider 'nope'"),
                                                (["--provider", "auto"], "serve runs on one provider"),
                                                (["--set", "bogus.key=1"], "unknown key 'bogus.key'")])
def test_bad_options_are_one_line_and_exit_2(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["serve", *args]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("host", "key", "warns"), [("127.0.0.1", None, False), ("::1", None, False),
                                                    ("localhost", None, False), ("0.0.0.0", None, True),
                                                    ("0.0.0.0", "k", False), ("myhost.lan", None, True)])
def test_listening_beyond_loopback_without_a_key_is_warned(host: str, key: str | None, warns: bool) -> None:
    assert (exposure_warning(ServeOptions(host=host, api_key=key)) is not None) == warns
