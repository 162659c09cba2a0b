"""Next-token choice: greedy, temperature, top-k and top-p on hand-made logits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.model.sampling import Sampler, SamplingParams

# softmax of these at temperature 1: ~[0.64, 0.24, 0.09, 0.03, ...] (ids 3, 1, 4, 0 best first)
LOGITS = np.array([0.0, 2.0, -5.0, 3.0, 1.0, -5.0], dtype=np.float32)


def _draws(params: SamplingParams, n: int = 4000) -> Counter:
    sampler = Sampler(params)
    return Counter(sampler(LOGITS) for _ in range(n))


def test_greedy_is_argmax_even_for_fp16() -> None:
    assert Sampler(SamplingParams())(LOGITS.astype(np.float16)) == 3


def test_sampling_follows_the_softmax() -> None:
    counts = _draws(SamplingParams(greedy=False, seed=1))
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum()
    for token, p in enumerate(probs):
        assert abs(counts[token] / 4000 - p) < 0.03


def test_top_k_keeps_only_the_k_best() -> None:
    assert set(_draws(SamplingParams(greedy=False, top_k=2, seed=2))) == {3, 1}


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    # 0.64 < 0.8 <= 0.64 + 0.24: the two best tokens
    assert set(_draws(SamplingParams(greedy=False, top_p=0.8, seed=3))) == {3, 1}
    assert set(_draws(SamplingParams(greedy=False, top_p=0.5, seed=3))) == {3}


def test_low_temperature_concentrates_high_spreads() -> None:
    cold = _draws(SamplingParams(greedy=False, temperature=0.2, seed=4))
    hot = _draws(SamplingParams(greedy=False, temperature=5.0, seed=4))
    assert cold[3] > 3900 and len(hot) == len(LOGITS)


def test_same_seed_same_tokens() -> None:
    params = SamplingParams(greedy=False, seed=9)
    assert _draws(params, 50) == _draws(params, 50)


@pytest.mark.parametrize("kwargs,message", [
    (dict(greedy=False, temperature=0.0), "temperature must be > 0"),
    (dict(top_k=-1), "top_k must be >= 0"),
    (dict(top_p=0.0), "top_p must be in"),
    (dict(top_p=1.5), "top_p must be in"),
])
def test_bad_parameters_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        SamplingParams(**kwargs)


def test_greedy_never_makes_a_random_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_generator(*args, **kwargs):
        raise AssertionError("a greedy request made a random generator")

    monkeypatch.setattr(np.random, "default_rng", no_generator)
    logits = np.array([0.1, 2.0, -1.0], dtype=np.float32)
    assert Sampler(SamplingParams(greedy=True))(logits) == 1
