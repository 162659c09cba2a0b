"""onnxruntime-genai on the same model folder: a second engine to compare against.

Prompts are tokenized by our tokenizer and handed over as ids, so both engines see identical input
(genai's own tokenizer does not prepend ``<s>``). Tokens are stamped as genai returns them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

from harness.errors import HarnessError
from harness.model.folder import load_model_folder
from harness.model.tokenizer import Phi3Tokenizer
from harness.providers.spec import SPECS
from harness.targets.base import Request, StreamItem, TokenEvent, Usage

# genai's provider names for our short names, from the provider records (cpu has none:
# clear_providers() means CPU)
GENAI_PROVIDERS = {name: spec.genai_name for name, spec in SPECS.items() if spec.genai_name}


def import_genai() -> Any:
    try:
        import onnxruntime_genai
    except ImportError:
        raise HarnessError(
            "onnxruntime-genai is not installed: pip install 'phi3-harness[cpu,genai]'"
        ) from None
    return onnxruntime_genai


class GenaiTarget:
    name = "genai"

    def __init__(self, model_dir: Path | str, provider: str = "cpu") -> None:
        og = import_genai()
        folder = load_model_folder(model_dir)
        config = og.Config(str(folder.path))
        # The folder's config may ask for dml/cuda; a build without them refuses unless cleared.
        config.clear_providers()
        if provider != "cpu":
            if provider not in GENAI_PROVIDERS:
                raise HarnessError(f"onnxruntime-genai has no provider {provider!r}: use cpu, {', '.join(GENAI_PROVIDERS)}")
            config.append_provider(GENAI_PROVIDERS[provider])
        started = time.perf_counter()
        try:
            self._model = og.Model(config)
        except Exception as error:
            raise HarnessError(f"onnxruntime-genai cannot load {folder.path} on {provider}: {str(error).splitlines()[0]}") from None
        self.load_seconds = time.perf_counter() - started
        self._og = og
        self.provider = provider
        self.tokenizer = Phi3Tokenizer(folder.tokenizer_path, folder.config.bos_token_id)
        self._eos = frozenset(folder.config.eos_token_ids)

    def prompt_ids(self, request: Request) -> list[int]:
        if request.prompt_ids is not None:
            return list(request.prompt_ids)
        return self.tokenizer.encode_chat(request.messages, add_bos=True)

    def stream(self, request: Request) -> Iterator[StreamItem]:
        prompt_ids = self.prompt_ids(request)
        params = self._og.GeneratorParams(self._model)
        options: dict[str, Any] = {"max_length": len(prompt_ids) + request.max_new_tokens, "do_sample": not request.greedy}
        if not request.greedy:
            options.update(temperature=request.temperature, top_k=request.top_k or 0, top_p=request.top_p)
            if request.seed is not None:
                options["random_seed"] = request.seed
        params.set_search_options(**options)
        generator = self._og.Generator(self._model, params)
        generator.append_tokens(prompt_ids)  # the prefill runs here
        decoder = self.tokenizer.stream_decoder()
        generated: list[int] = []
        while not generator.is_done():
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            t_ns = time.perf_counter_ns()
            generated.append(token)
            text = "" if token in self._eos else decoder.add(token)
            if generator.is_done():
                text += decoder.flush()
            yield TokenEvent(token, text, t_ns)
        finish = "stop" if generated and generated[-1] in self._eos else "length"
        yield Usage(len(prompt_ids), len(generated), finish, tuple(prompt_ids))

    def close(self) -> None:
        self._model = None
