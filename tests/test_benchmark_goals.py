"""benchmarks/engine_vs_genai.py judges each ratio goal on the 95 % interval of its median, not on
the median alone: a median on the right side by luck is "inconclusive", too few rounds too."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def goal_verdict():
    return load_benchmark("engine_vs_genai").goal_verdict


def _around(median: float, spread: float, n: int = 40) -> list[float]:
    return list(np.random.default_rng(0).uniform(median - spread, median + spread, n))


@pytest.mark.parametrize(("values", "goal", "verdict"), [
    (_around(1.40, 0.10), ">= 1.2", "met"),
    (_around(1.00, 0.10), ">= 1.2", "missed"),
    (_around(1.22, 0.30), ">= 1.2", "inconclusive"),  # median above the goal, interval across it
    (_around(0.55, 0.05), "<= 0.7", "met"),
    (_around(0.90, 0.10), "<= 0.7", "missed"),
    (_around(0.68, 0.30), "<= 0.7", "inconclusive"),
])
def test_a_goal_is_met_or_missed_only_when_the_whole_interval_says_so(goal_verdict, values, goal, verdict):
    assert goal_verdict(values, goal).split()[0] == verdict


def test_too_few_rounds_for_an_interval_are_inconclusive_however_good_the_median(goal_verdict):
    assert goal_verdict([2.0, 2.1, 2.2, 2.3, 2.4], ">= 1.2") == \
        "inconclusive (5 rounds: too few for a 95 % interval)"
