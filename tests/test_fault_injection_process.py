"""`phi3-harness run` as a real process: real signals part-way, and a disk that fills up.

Each case asserts the exit code, exactly one line on stderr, no traceback, whole records on disk,
and that no child process outlives `run`.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from harness.measure.results import load_checklist, load_records

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals, RLIMIT_FSIZE and /proc")

REPO = Path(__file__).resolve().parents[1]
# One small latency case that would run for hours: the run is always stopped part-way.
ENDLESS = ["--set", "matrix.providers=cpu", "--set", "matrix.prompt_lengths=16", "--set", "matrix.concurrency=1",
           "--set", "matrix.max_new_tokens=4", "--set", "matrix.arrival_rates=", "--set", "matrix.repetitions=1000000"]


def _start(out: Path, *extra: str, preexec_fn=None) -> subprocess.Popen:
    log = (out.parent / "stdout.txt").open("w")  # a file, not a pipe: nobody reads it while the run goes on
    return subprocess.Popen([sys.executable, "-m", "harness", "run", "--out", str(out), *ENDLESS, *extra],
                            cwd=REPO, stdout=log, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn)


def _wait_for_output(path: Path, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in path.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)


def _wait_for_records(out: Path, process: subprocess.Popen, count: int = 5) -> None:
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {count} records in time: {process.poll()=}")


def _finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return process.returncode, err.strip()


def _survivors(out: Path) -> list[str]:
    """Command lines of live processes that still name the run folder (the pytest child would)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(out) in text:
            found.append(text)
    return found


def _assert_whole_records(out: Path, killed: bool = False) -> int:
    """Every line of results.jsonl is a whole record, and the loader returns each of them.

    ``killed``: the child was SIGKILLed, which Linux may deliver in the middle of a write that crosses
    a page (it checks for fatal signals between pages), so the last line alone may be cut off: the
    loader then skips that line with a warning and returns every whole one.
    """
    data = (out / "results.jsonl").read_bytes()
    *lines, tail = data.split(b"\n")
    assert killed or tail == b"", "a clean stop leaves no partial line"
    assert all(json.loads(line)["ok"] for line in lines)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(load_records(out)) == len(lines)
    assert any("truncated" in str(w.message) for w in caught) == (tail != b"")
    return len(lines)


# The page's banner comes from environment.json's "interrupted" (asserted for both signals): drawn once.
@pytest.mark.parametrize(("signum", "code", "report"), [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_a_signal_part_way_judges_reports_and_marks_the_run(tmp_path: Path, signum: int, code: int,
                                                             report: bool) -> None:
    out = tmp_path / "run"
    process = _start(out, *([] if report else ["--no-report"]))
    _wait_for_records(out, process)
    process.send_signal(signum)
    returncode, err = _finish(process)
    name = signal.Signals(signum).name
    assert returncode == code
    judged = "checklist.json and index.html" if report else "checklist.json cover"
    assert err.startswith(f"phi3-harness run: interrupted by {name}: {out}: {judged}")
    assert _assert_whole_records(out) >= 5
    verdicts = load_checklist(out)
    assert verdicts and all(v.verdict != "skip" or v.reason for v in verdicts)
    assert any(v.verdict == "skip" and f"interrupted ({name})" in v.reason for v in verdicts)
    assert json.loads((out / "environment.json").read_text())["interrupted"] == {"signal": name, "forced": False}
    if report:
        assert f"interrupted by {name}" in (out / "index.html").read_text()
    assert not _survivors(out)


def test_a_second_ctrl_c_stops_at_once_with_records_intact(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = _start(out)
    _wait_for_records(out, process)
    process.send_signal(signal.SIGINT)
    _wait_for_output(tmp_path / "stdout.txt", "stopping:")  # `run` took the first one; the user presses again
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    returncode, err = _finish(process)
    assert returncode == 130 and time.monotonic() - started < 10
    assert "stopped at once by a second signal" in err
    _assert_whole_records(out, killed=True)  # the second signal SIGKILLs the child's group
    assert json.loads((out / "environment.json").read_text())["interrupted"]["forced"] is True
    assert not _survivors(out)


def _file_size_limit() -> None:
    """In the child: writes past 60 kB fail with EFBIG (instead of killing the process with SIGXFSZ).

    results.jsonl (~1.4 kB a record) reaches it first: environment.json and telemetry.csv stay under 10 kB."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))


def test_a_full_disk_stops_the_run_with_one_line_and_whole_records(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = _start(out, preexec_fn=_file_size_limit)
    returncode, err = _finish(process)
    assert returncode == 2
    assert err == (f"phi3-harness run: error: {out / 'results.jsonl'}: File too large: the file reached the size "
                   "limit (ulimit -f or the file system's): raise it or free space")
    assert _assert_whole_records(out) > 10  # the line that did not fit was cut off again
    assert load_checklist(out)  # the last whole checklist.json
    assert not _survivors(out)


def test_killing_run_outright_kills_its_child_and_leaves_whole_records(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = _start(out)
    _wait_for_records(out, process)
    process.kill()  # SIGKILL: `run` can do nothing; on Linux its child dies with it (parent-death signal)
    process.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while _survivors(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _survivors(out)
    _assert_whole_records(out, killed=True)
