"""Token counts made independently of the target: from the model folder's own files only.

Prompt: the folder's chat template rendered with jinja2, as Hugging Face renders it (the template is
read where Hugging Face writes it: ``chat_template.jinja``, which transformers 5 and the
onnxruntime-genai model builder save beside the tokenizer, else ``chat_template.json``, else the
``chat_template`` key of tokenizer_config.json), then tokenized by a separate `tokenizers` instance; ``<s>`` is counted when the config's
``add_bos_token`` says so (or, without that key, when tokenizer.json's post-processor adds it) and
the rendered text does not already start with it.

Completion: the output text re-tokenized, plus the special tokens (EOS) the text cannot show. The
boundary caveat: a model may emit a split the tokenizer would not produce itself (always on the
embedded tiny model, whose random weights pick any piece; now and then on real models, e.g. at the
first token's leading space). Then re-tokenizing counts other pieces, so when the streamed ids are
known and decode, with this tokenizer, to exactly the output text, they are the count, and the
note says so. Without ids the re-tokenized count stands alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from harness.errors import HarnessError


def _token_text(value: Any) -> str | None:
    """tokenizer_config.json writes special tokens as a string or as {"content": ...}."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _template(config: dict[str, Any], folder: Path) -> str | None:
    """The chat template; a file of its own wins over tokenizer_config.json's key, as in transformers."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        try:
            return _usable(jinja.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise HarnessError(f"{jinja} is not UTF-8 text ({error.reason}): re-copy it from the model") from None
    for source in (_json_object(folder / "chat_template.json"), config):
        if source is not None and "chat_template" in source:
            return _usable(source["chat_template"])
    return None


def _json_object(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise HarnessError(f"{path} is not valid JSON ({error}): fix or remove it") from None
    return value if isinstance(value, dict) else None


def _usable(template: Any) -> str | None:
    """A template string, or the "default" one of a named list."""
    if isinstance(template, list):
        named = {entry.get("name"): entry.get("template") for entry in template if isinstance(entry, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template.strip() else None


class IndependentCounter:
    """Counts prompt and completion tokens from the folder's tokenizer files alone."""

    def __init__(self, model_dir: str | Path) -> None:
        from tokenizers import Tokenizer

        folder = Path(model_dir)
        config_path = folder / "tokenizer_config.json"
        if not config_path.is_file():
            raise HarnessError(f"{config_path} is missing: no chat template to count prompt tokens independently")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        template = _template(config, folder)
        # Without a template prompts cannot be counted; outputs can still be checked against their ids.
        self.missing_template = "" if template is not None else (
            f"{folder} has no chat template (chat_template.jinja, or chat_template in tokenizer_config.json): "
            "prompt tokens cannot be counted independently")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.bos_token = _token_text(config.get("bos_token"))
        self.eos_token = _token_text(config.get("eos_token"))
        self.add_bos = self._adds_bos(config, folder)
        self.special_ids = {int(i) for i, token in self.tokenizer.get_added_tokens_decoder().items() if token.special}
        self._template = self._compile(template) if template is not None else None

    def _adds_bos(self, config: dict[str, Any], folder: Path) -> bool:
        if "add_bos_token" in config:
            return bool(config["add_bos_token"])
        processor = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("post_processor") or {}
        return self.bos_token is not None and self.bos_token in json.dumps(processor.get("single", []))

    @staticmethod
    def _compile(template: str) -> Any:
        from jinja2.exceptions import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = raise_exception
        try:
            return environment.from_string(template)
        except TemplateError as error:
            raise HarnessError(f"the folder's chat template is not valid jinja ({error}): fix or re-copy it") from None

    def render(self, messages: Sequence[tuple[str, str]]) -> str:
        if self._template is None:
            raise HarnessError(self.missing_template)
        return self._template.render(messages=[{"role": role, "content": content} for role, content in messages],
                                     bos_token=self.bos_token or "", eos_token=self.eos_token or "",
                                     add_generation_prompt=True)

    def prompt_tokens(self, messages: Sequence[tuple[str, str]]) -> int:
        text = self.render(messages)
        count = len(self.tokenizer.encode(text, add_special_tokens=False).ids)
        starts_with_bos = bool(self.bos_token) and text.startswith(self.bos_token or "")
        return count + (1 if self.add_bos and not starts_with_bos else 0)

    def decodes_to(self, text: str, ids: Sequence[int]) -> bool:
        """The ids, decoded by this tokenizer (special tokens dropped), give exactly ``text``."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True) == text

    def completion_tokens(self, text: str, ids: Sequence[int] | None) -> tuple[int, str]:
        """(count, how it was made) for a generated text and, where known, the streamed ids."""
        retokenized = len(self.tokenizer.encode(text, add_special_tokens=False).ids)
        if ids is None:
            return retokenized, "re-tokenized output text"
        specials = sum(1 for token in ids if token in self.special_ids)
        if retokenized + specials == len(ids):
            return retokenized + specials, "re-tokenized output text + special tokens"
        if self.decodes_to(text, ids):
            return len(ids), "streamed ids that decode to the output text (a split the tokenizer would not make)"
        return retokenized + specials, "re-tokenized output text + special tokens"
