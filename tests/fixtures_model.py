"""Helpers for the tiny-model tests: a raw ORT decode loop (the build fixture is in tests/conftest.py).

The raw loop uses a plain onnxruntime session (growing past tensors, names from genai_config.json)
and none of the harness engine, so the builder is checked on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

BuildFn = Callable[..., Path]


class RawDecoder:
    """Prompt pass + one-token steps on a bare ORT session, feeding back its own present KV."""

    def __init__(self, folder: Path) -> None:
        decoder = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
        self.names = {**decoder["inputs"], **decoder["outputs"]}
        self.layers = decoder["num_hidden_layers"]
        self.shape = (1, decoder["num_key_value_heads"], 0, decoder["head_size"])
        self.session = ort.InferenceSession(str(folder / decoder["filename"]), providers=["CPUExecutionProvider"])
        kv_type = next(i.type for i in self.session.get_inputs() if i.name == self.names["past_key_names"] % 0)
        self.kv_dtype = np.float16 if kv_type == "tensor(float16)" else np.float32
        self.past: dict[str, np.ndarray] = {}
        self.length = 0

    def reset(self) -> None:
        self.past, self.length = {}, 0

    def run(self, ids: list[int]) -> np.ndarray:
        """Logits [len(ids), vocab] as float64, appending ids after what was run before."""
        n = self.names
        feed = {n["input_ids"]: np.array([ids], dtype=np.int64),
                n["attention_mask"]: np.ones((1, self.length + len(ids)), dtype=np.int64)}
        if "position_ids" in n:
            feed[n["position_ids"]] = np.arange(self.length, self.length + len(ids), dtype=np.int64)[None]
        for layer in range(self.layers):
            for past, _ in self._kv_names(layer):
                feed[past] = self.past.get(past, np.zeros(self.shape, dtype=self.kv_dtype))
        outputs = [n["logits"]] + [present for layer in range(self.layers) for _, present in self._kv_names(layer)]
        results = dict(zip(outputs, self.session.run(outputs, feed)))
        for layer in range(self.layers):
            for past, present in self._kv_names(layer):
                self.past[past] = results[present]
        self.length += len(ids)
        return results[n["logits"]][0].astype(np.float64)

    def greedy(self, prompt: list[int], n_new: int) -> list[int]:
        self.reset()
        logits = self.run(prompt)[-1]
        out: list[int] = []
        while len(out) < n_new:
            out.append(int(np.argmax(logits)))
            logits = self.run([out[-1]])[-1]
        return out

    def _kv_names(self, layer: int) -> list[tuple[str, str]]:
        n = self.names
        return [(n["past_key_names"] % layer, n["present_key_names"] % layer),
                (n["past_value_names"] % layer, n["present_value_names"] % layer)]
