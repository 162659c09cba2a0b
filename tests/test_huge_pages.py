"""Weights on transparent huge pages (harness/providers/huge_pages.py): which memory is advised, and
that a real CPU session's weights end up on 2 MiB pages where the kernel offers them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import run_cli

from harness.providers import ProviderSettings, create_session, huge_pages, huge_pages_in_effect
from harness.providers.huge_pages import HUGE_PAGE, MIN_REGION, anonymous_regions, huge_spans, unavailable_reason

MAPS = """\
55d0c8a00000-55d0c8a21000 r--p 00000000 fd:01 131 /usr/bin/python3.11
55d0c9000000-55d0c9400000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000a00000 rw-p 00000000 00:00 0
7f0001000000-7f0001001000 rw-p 00000000 00:00 0
7f0002000000-7f0002800000 rw-p 00000000 fd:01 77 /tmp/model.onnx.data
7f0003000000-7f0003a00000 r--p 00000000 00:00 0
7ffd10000000-7ffd10021000 rw-p 00000000 00:00 0 [stack]
"""


def test_only_private_writable_anonymous_memory_and_the_heap_count() -> None:
    regions = anonymous_regions(MAPS)
    assert regions == {
        (0x55D0C9000000, 0x55D0C9400000): True,  # [heap]
        (0x7F0000000000, 0x7F0000A00000): False,
        (0x7F0001000000, 0x7F0001001000): False,
    }  # not the binary, a file mapping, read-only memory or the stack


def test_spans_are_new_mappings_and_the_heap_cut_to_whole_huge_pages() -> None:
    base = 0x7F0000000000
    old_mapping, heap = (base + 64 * HUGE_PAGE, base + 80 * HUGE_PAGE), (0x5000_0000, 0x5000_0000 + MIN_REGION)
    start = base + 4096  # not aligned: the span starts at the next 2 MiB boundary
    small = (0x8000_0000, 0x8000_0000 + MIN_REGION - HUGE_PAGE)  # new but below MIN_REGION
    regions = {old_mapping: False, heap: True, (start, start + 6 * HUGE_PAGE): False, small: False}
    before = {old_mapping, heap}
    assert huge_spans(regions, before) == [heap, (base + HUGE_PAGE, base + 6 * HUGE_PAGE)]
    assert huge_spans(regions, regions) == [heap]  # nothing new: the heap alone, where reused blocks live


def test_other_platforms_and_thp_never_say_why_nothing_is_done(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(huge_pages.sys, "platform", "win32")
    assert "Linux feature" in unavailable_reason()
    monkeypatch.setattr(huge_pages.sys, "platform", "linux")
    setting = tmp_path / "enabled"
    setting.write_text("always madvise [never]\n")
    monkeypatch.setattr(huge_pages, "THP_SETTING", setting)
    assert "switched off" in unavailable_reason()
    result = huge_pages.load_on_huge_pages(lambda: "loaded")
    assert result[0] == "loaded" and result[1].advised_bytes == 0 and "switched off" in result[1].note


NO_THP = unavailable_reason()


@pytest.mark.skipif(NO_THP is not None, reason=f"no transparent huge pages here: {NO_THP}")
def test_a_fresh_process_gets_its_cpu_weights_onto_huge_pages(tiny_model_dir: Path) -> None:
    # a process of its own: here, earlier tests' freed memory could be reused by the load
    script = (
        "import json, sys\n"
        "from harness.providers import huge_pages\n"
        "from harness.providers import ProviderSettings, create_session, huge_pages_in_effect\n"
        "from harness.model.folder import load_model_folder\n"
        "path = load_model_folder(sys.argv[1]).onnx_path\n"
        "before = huge_pages.process_huge_page_bytes()\n"
        "pages = huge_pages_in_effect(create_session(path, ProviderSettings()))\n"
        "plain = huge_pages_in_effect(create_session(path, ProviderSettings(huge_pages=False)))\n"
        "print(json.dumps({'before': before, 'pages': pages, 'plain': plain}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tiny_model_dir)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    pages = found["pages"]
    # the tiny model's prepacked weights and LM head: ~13 MB, all of it in fresh mappings
    assert pages["requested"] and pages["collapsed_bytes"] >= 8 * 2**20, pages
    assert pages["process_huge_bytes"] - found["before"] >= pages["collapsed_bytes"]
    assert found["plain"]["requested"] is False and found["plain"]["advised_bytes"] == 0


@pytest.mark.skipif(NO_THP is not None, reason=f"no transparent huge pages here: {NO_THP}")
def test_a_load_into_memory_an_earlier_session_freed_still_lands_on_huge_pages(tiny_model_dir: Path) -> None:
    from harness.model.folder import load_model_folder

    path = load_model_folder(tiny_model_dir).onnx_path
    first = create_session(path, ProviderSettings(huge_pages=False))
    del first  # its memory, on 4 KiB pages, goes back to the allocator and serves the next load
    pages = huge_pages_in_effect(create_session(path, ProviderSettings()))
    assert pages["requested"] and pages["collapsed_bytes"] >= 8 * 2**20, pages
    assert pages["process_huge_bytes"] >= pages["collapsed_bytes"]


def test_generate_json_says_what_the_advice_did(capsys) -> None:
    result = run_cli(capsys, "generate", "Hello", "--json", "--max-new-tokens", "2",
                     "--set", "provider.cpu.huge_pages=false")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["huge_pages"]["requested"] is False


def test_the_advice_is_skipped_with_a_reason_when_off_or_on_an_accelerator() -> None:
    from harness.providers.session import _huge_pages_skip

    assert _huge_pages_skip(ProviderSettings(huge_pages=False)) == "not requested"
    assert "dml keeps its weights in device memory" in _huge_pages_skip(ProviderSettings(name="dml"))
    assert _huge_pages_skip(ProviderSettings()) is None  # cpu: advised
    loaded, result = huge_pages.load_on_huge_pages(lambda: "loaded", skip="not requested")
    assert loaded == "loaded" and result.as_dict()["requested"] is False and result.note == "not requested"
