"""The tiny model's tokenizer: Llama/Phi-3 style BPE with byte fallback and Phi-3's special ids.

Ids: ``<unk>``=0, ``<s>``=1, ``</s>``=2, ``<0x00>``..``<0xFF>`` = 3..258, then the pieces and merges
the `tokenizers` BPE trainer learns from an embedded English corpus (tiny_corpus.py), then
deterministic pseudo-words (``▁`` + consonant-vowel syllables) filling every id up to 31999, so any
id the random model generates decodes to a word although no merge reaches it. 32000..32010 are
Phi-3's added special tokens at their real ids. Text outside the vocabulary (emoji, accents, CJK)
encodes through the byte tokens.

Format: ``tokenizer.json`` with the SentencePiece-legacy normalizer (Prepend ``▁``, spaces -> ``▁``),
decoder Replace/ByteFallback/Fuse/Strip and a post-processor adding ``<s>``;
``tokenizer_config.json`` with the Phi-3 chat template. The trainer output was checked to be
identical across processes; the JSON is written by hand so field order and spacing never drift.
"""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
from typing import Any, Iterator

from harness.model.tiny.corpus import CORPUS

SPACE = "\u2581"  # ▁, SentencePiece's word-boundary mark
BASE_TOKENS = ("<unk>", "<s>", "</s>")
BYTE_TOKEN_COUNT = 256
ADDED_START = 32000
ADDED_TOKENS = (
    "<|endoftext|>",  # 32000
    "<|assistant|>",  # 32001
    "<|placeholder1|>",
    "<|placeholder2|>",
    "<|placeholder3|>",
    "<|placeholder4|>",
    "<|system|>",  # 32006
    "<|end|>",  # 32007
    "<|placeholder5|>",
    "<|placeholder6|>",
    "<|user|>",  # 32010
)
TRAINED_VOCAB_SIZE = 1000  # an upper bound: the small corpus yields fewer merges at min_frequency 2
MIN_FREQUENCY = 2
CONSONANTS = "bdfghklmnprstvz"
VOWELS = "aeiou"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)


def write_tokenizer(folder: Path) -> None:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` into ``folder``."""
    (Path(folder) / "tokenizer.json").write_text(tokenizer_json(), encoding="utf-8", newline="\n")
    config = json.dumps(tokenizer_config(), indent=2, ensure_ascii=False) + "\n"
    (Path(folder) / "tokenizer_config.json").write_text(config, encoding="utf-8", newline="\n")


@functools.lru_cache(maxsize=1)
def tokenizer_json() -> str:
    vocab, merges = _vocab_and_merges()
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [_added_token(i, token) for i, token in _special_tokens()],
        # SentencePiece-legacy form (as Phi-3's own tokenizer.json): "▁" before every piece between
        # special tokens, spaces -> "▁". A Metaspace pre-tokenizer with prepend_scheme "first"
        # would not put "▁" after <|user|> etc., and onnxruntime-genai's tokenizer (which always
        # does) would then encode chat prompts differently from `tokenizers`; this form agrees.
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SPACE},
                {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": _post_processor(),
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{left} {right}" for left, right in merges],
        },
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def tokenizer_config() -> dict[str, Any]:
    return {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {str(i): _added_token(i, token, with_id=False) for i, token in _special_tokens()},
        "bos_token": "<s>",
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "legacy": False,
        "model_max_length": 4096,
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
        "use_default_system_prompt": False,
    }


def _special_tokens() -> list[tuple[int, str]]:
    return list(enumerate(BASE_TOKENS)) + [(ADDED_START + i, t) for i, t in enumerate(ADDED_TOKENS)]


def _added_token(token_id: int, content: str, with_id: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": token_id} if with_id else {}
    entry.update(content=content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
    return entry


def _post_processor() -> dict[str, Any]:
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    return {
        "type": "TemplateProcessing",
        "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [
            bos,
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": "<s>", "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
    }


def _vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    trained_tokens, merges = _train_bpe()
    tokens = list(BASE_TOKENS) + [f"<0x{b:02X}>" for b in range(BYTE_TOKEN_COUNT)]
    seen = set(tokens)
    for token in trained_tokens:
        if token not in seen:
            tokens.append(token)
            seen.add(token)
    filler = _pseudo_words()
    while len(tokens) < ADDED_START:
        word = next(filler)
        if word not in seen:
            tokens.append(word)
            seen.add(word)
    return {token: i for i, token in enumerate(tokens)}, merges


def _train_bpe() -> tuple[list[str], list[tuple[str, str]]]:
    """Pieces (in the trainer's id order) and merges learned from the corpus, word by word."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=TRAINED_VOCAB_SIZE, min_frequency=MIN_FREQUENCY, show_progress=False, special_tokens=[]
    )
    tokenizer.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    pieces = sorted(model["vocab"], key=model["vocab"].__getitem__)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return pieces, merges


def _pseudo_words() -> Iterator[str]:
    """``▁`` + 2 syllables (all, in order), then 3 syllables in a fixed scrambled order."""
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    for pair in itertools.product(syllables, repeat=2):
        yield SPACE + "".join(pair)
    n = len(syllables)
    total = n**3
    step = 7919  # prime, coprime with 75**3: visits every 3-syllable word once, scrambled
    for i in range(total):
        j = (i * step) % total
        yield SPACE + syllables[j // (n * n)] + syllables[(j // n) % n] + syllables[j % n]
