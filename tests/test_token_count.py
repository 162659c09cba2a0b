"""The independent token counter finds the chat template wherever Hugging Face tooling writes it.

transformers 5 and the onnxruntime-genai model builder (0.18) save it as chat_template.jinja beside a
tokenizer_config.json that has no chat_template key; older folders keep it in that key.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.suite.token_count import IndependentCounter

MESSAGES = (("system", "Be brief."), ("user", "How far is the moon?"))


def _tokenizer_folder(source: Path, target: Path, with_key: bool) -> tuple[Path, str]:
    """A copy of a model's tokenizer files, with or without the template key; returns (folder, template)."""
    target.mkdir()
    shutil.copy(source / "tokenizer.json", target / "tokenizer.json")
    config = json.loads((source / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = config["chat_template"] if with_key else config.pop("chat_template")
    (target / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return target, template


def test_a_builder_folder_with_chat_template_jinja_counts_as_the_key_does(tiny_builds, tmp_path: Path) -> None:
    source = tiny_builds("fp32", "cpu")
    keyed, _ = _tokenizer_folder(source, tmp_path / "keyed", with_key=True)
    builder, template = _tokenizer_folder(source, tmp_path / "builder", with_key=False)
    (builder / "chat_template.jinja").write_text(template, encoding="utf-8")
    expected = IndependentCounter(keyed).prompt_tokens(MESSAGES)
    assert IndependentCounter(builder).prompt_tokens(MESSAGES) == expected
    assert expected > 10


def test_chat_template_jinja_wins_over_the_config_key_as_in_transformers(tiny_builds, tmp_path: Path) -> None:
    folder, _ = _tokenizer_folder(tiny_builds("fp32", "cpu"), tmp_path / "both", with_key=True)
    (folder / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}", encoding="utf-8")
    assert IndependentCounter(folder).render(MESSAGES) == "Be brief.How far is the moon?"


def test_chat_template_json_is_read_when_there_is_no_jinja_file(tiny_builds, tmp_path: Path) -> None:
    folder, template = _tokenizer_folder(tiny_builds("fp32", "cpu"), tmp_path / "json", with_key=False)
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}), encoding="utf-8")
    assert "<|user|>" in IndependentCounter(folder).render(MESSAGES)


def test_without_any_template_prompts_are_not_counted_but_outputs_are_still_checked(tiny_builds, tmp_path: Path) -> None:
    folder, _ = _tokenizer_folder(tiny_builds("fp32", "cpu"), tmp_path / "none", with_key=False)
    counter = IndependentCounter(folder)
    assert "no chat template (chat_template.jinja, or chat_template in tokenizer_config.json)" in counter.missing_template
    with pytest.raises(HarnessError, match="prompt tokens cannot be counted independently"):
        counter.prompt_tokens(MESSAGES)
    ids = counter.tokenizer.encode("the moon", add_special_tokens=False).ids
    assert counter.decodes_to("the moon", ids) and not counter.decodes_to("the sun", ids)


@pytest.mark.parametrize("content", [b"{% for m in messages %}", b"\xff\xfe not utf-8"])
def test_a_broken_chat_template_jinja_is_one_line_not_a_traceback(tiny_builds, tmp_path: Path, content: bytes) -> None:
    folder, _ = _tokenizer_folder(tiny_builds("fp32", "cpu"), tmp_path / "broken", with_key=False)
    (folder / "chat_template.jinja").write_bytes(content)
    with pytest.raises(HarnessError) as caught:
        IndependentCounter(folder)
    message = str(caught.value)
    assert "\n" not in message and ("chat_template.jinja is not UTF-8" in message or "chat template is not valid jinja" in message)
