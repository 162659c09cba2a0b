"""harness.stats against hand-computed values (and, where noted, values cross-checked with scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats import (
    MetricComparison,
    RatioInterval,
    SampleTest,
    compare_samples,
    check_limit,
    holm,
    judge_family,
    mann_whitney,
    percentile,
    percentile_interval,
    ratio_interval,
    samples_to_settle,
    summarize,
    verdict,
)


def test_summary_uses_linear_interpolation_and_sample_stddev() -> None:
    summary = summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert summary.n == 10
    assert summary.p50 == pytest.approx(5.5)
    assert summary.p90 == pytest.approx(9.1)  # rank 0.9 * 9 = 8.1 -> 9 + 0.1 * (10 - 9)
    assert summary.p99 == pytest.approx(9.91)  # rank 8.91
    assert summary.mean == pytest.approx(5.5)
    assert summary.stddev == pytest.approx(math.sqrt(82.5 / 9))
    assert (summary.min, summary.max) == (1.0, 10.0)
    assert "stddev is 55% of the mean" in summary.warning


def test_summary_of_steady_samples_has_no_warning() -> None:
    summary = summarize([1.0, 1.02, 0.98, 1.0, 1.0])
    assert summary.warning is None and summary.p50 == 1.0


def test_summary_warns_on_too_few_samples_and_ignores_missing_values() -> None:
    summary = summarize([2.0, None, float("nan"), 2.0, 2.0])
    assert summary.n == 3 and summary.p99 == 2.0
    assert summary.warning == "only 3 samples (want >= 5)"
    assert summarize([4.0]).stddev is None


def test_empty_summary_is_all_none() -> None:
    summary = summarize([])
    assert summary.n == 0 and summary.p50 is None and summary.mean is None and summary.warning == "no samples"


def test_spread_of_concurrent_samples_is_not_called_unstable_but_few_samples_still_are() -> None:
    spread = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert "background load" in summarize(spread).warning  # single stream: the likely cause is named
    assert summarize(spread, single_stream=False).warning is None  # queueing spread is expected
    assert summarize([1.0, 9.0], single_stream=False).warning == "only 2 samples (want >= 5)"


def test_percentile_of_raw_samples_interpolates_and_skips_missing() -> None:
    assert percentile([4.0, None, 1.0, 3.0, 2.0], 25) == pytest.approx(1.75)  # rank 0.75 between 1 and 2
    assert percentile([], 50) is None


def test_median_interval_needs_six_samples_at_95_percent() -> None:
    # All n samples on one side of the median has probability 2 / 2**n: 0.0625 for n = 5, 0.03125 for 6.
    assert percentile_interval([1, 2, 3, 4, 5], 50) is None
    assert percentile_interval([6, 1, 5, 2, 4, 3], 50) == (1.0, 6.0)


def test_median_interval_of_nine_samples_is_second_to_eighth_order_statistic() -> None:
    # Binomial(9, 0.5): P(B <= 1) = 10/512 = 0.0195 <= 0.025 < P(B <= 2) = 46/512; symmetric above.
    assert percentile_interval(range(10, 19), 50) == (11.0, 17.0)


def test_p90_interval_says_inconclusive_below_its_sample_count() -> None:
    # The upper bound of p90 needs P(all n below it) = 0.9**n <= 0.025: n >= 36.
    assert percentile_interval(range(35), 90) is None
    low, high = percentile_interval(range(36), 90)
    assert high == 35.0 and low < 31.5 < high


def test_mann_whitney_exact_for_small_samples_without_ties() -> None:
    # U = 0: one ordering of 20 (C(6, 3)) is that extreme on each side -> p = 2 / 20.
    assert mann_whitney([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    # Ranks of a are 1, 3, 5, 7: U1 = 16 - 10 = 6. Of the 70 orderings, 1+1+2+3+5+5+7 = 24 give U <= 6.
    assert mann_whitney([1, 3, 5, 7], [2, 4, 6, 8]) == pytest.approx(48 / 70)


def test_mann_whitney_with_ties_uses_the_tie_corrected_normal_approximation() -> None:
    a, b = [1, 2, 2, 3, 4, 5, 5, 5], [2, 3, 3, 6, 7, 7, 8]
    # Midranks of a: 1, 3, 3, 6, 8, 10, 10, 10 -> 51, U1 = 51 - 36 = 15, mean 8 * 7 / 2 = 28.
    # Ties: three groups of 3 and one of 2 -> sum(t^3 - t) = 78, over N(N - 1) = 210.
    variance = 8 * 7 / 12 * (16 - 78 / 210)
    z = (abs(15 - 28) - 0.5) / math.sqrt(variance)
    assert mann_whitney(a, b) == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert mann_whitney(a, b) == pytest.approx(0.14328, abs=1e-5)  # scipy mannwhitneyu asymptotic


def test_mann_whitney_of_identical_constant_samples_is_one_and_of_empty_is_none() -> None:
    assert mann_whitney([2.0] * 6, [2.0] * 6) == 1.0
    assert mann_whitney([], [1.0]) is None


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    # sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_ratio_interval_is_seeded_and_brackets_the_ratio_of_medians() -> None:
    base = [10.0, 11.0, 9.0, 10.5, 9.5, 10.2]
    now = [20.0, 22.0, 18.0, 21.0, 19.0, 20.4]
    first, again = ratio_interval(base, now), ratio_interval(base, now)
    assert first == again
    assert first.ratio == pytest.approx(20.2 / 10.1)
    # Every resampled median lies within the sample's range: 18/11 <= ratio <= 22/9.
    assert 18 / 11 <= first.low <= first.ratio <= first.high <= 22 / 9
    assert ratio_interval([2.0] * 5, [3.0] * 5) == RatioInterval(1.5, 1.5, 1.5, 0.95)
    assert ratio_interval([0.0] * 5, [1.0] * 5) is None


def _test(ratio: float, low: float, high: float, p: float = 0.001, n: int = 20) -> SampleTest:
    return SampleTest(n, n, 1.0, ratio, RatioInterval(ratio, low, high, 0.95), p, None)


@pytest.mark.parametrize(
    ("better", "ratio", "low", "high", "p", "kind"),
    [
        ("lower", 1.5, 1.3, 1.7, 0.001, "regression"),  # whole interval beyond x1.10
        ("lower", 1.5, 1.3, 1.7, 0.2, "inconclusive"),  # beyond, but the adjusted test says no
        ("lower", 1.12, 1.05, 1.2, 0.001, "inconclusive"),  # significant, straddles the limit
        ("lower", 1.02, 0.97, 1.06, 0.3, "no change"),  # inside ±10 %
        ("lower", 0.6, 0.5, 0.7, 0.001, "improvement"),
        ("higher", 0.6, 0.5, 0.7, 0.001, "regression"),  # tok/s fell: worse ratio 1/0.6
        ("higher", 1.5, 1.3, 1.7, 0.001, "improvement"),
    ],
)
def test_each_verdict_kind(better, ratio, low, high, p, kind) -> None:
    assert verdict(_test(ratio, low, high), better, p, limit_pct=10).verdict == kind


def test_improvement_limit_is_symmetric_in_ratio() -> None:
    # 10 % limit: worse above x1.1, better below x1/1.1 = 0.909 (not 0.9).
    assert verdict(_test(0.88, 0.85, 0.905), "lower", 0.001, 10).verdict == "improvement"
    assert verdict(_test(0.9, 0.85, 0.92), "lower", 0.001, 10).verdict == "inconclusive"


def test_too_few_samples_is_inconclusive_and_says_how_many() -> None:
    test = compare_samples([1.0, 1.1, 1.2], [2.0, 2.1, 2.2, 2.3, 2.4])
    result = verdict(test, "lower", None, 10)
    assert result.verdict == "inconclusive" and result.samples_needed == 5
    assert result.reason == "too few samples (3 vs 5, want >= 5 in each run)"


def test_samples_to_settle_scales_with_the_square_of_the_width() -> None:
    # log interval half-width ln(1.111/0.9)/2 = 0.1053, distance to ln 1.05 = 0.0488: n x 4.66
    needed = samples_to_settle(1.0, 0.9, 1.0 / 0.9, 1.05, 10)
    assert needed == math.ceil(10 * (math.log(1 / 0.81) / 2 / math.log(1.05)) ** 2) == 47
    assert samples_to_settle(1.1, 1.0, 1.21, 1.1, 10) is None  # right on the limit


def test_family_is_holm_adjusted_with_simultaneous_intervals_over_tested_metrics_only() -> None:
    rng = np.random.default_rng(0)
    base = list(rng.normal(10, 0.1, 12))
    slow = [v * 1.5 for v in rng.normal(10, 0.1, 12)]
    pairs = [(base, slow), (base, base), (base[:2], slow[:2])]
    results = judge_family(pairs, ["lower", "lower", "lower"], limit_pct=10)
    assert [r.verdict for r in results] == ["regression", "no change", "inconclusive"]
    assert results[0].p_adjusted == pytest.approx(min(1.0, 2 * results[0].p_value))  # 2 tested, not 3
    assert results[0].confidence == pytest.approx(1 - 0.05 / 2)  # Bonferroni over the 2 tested
    assert results[2].p_adjusted is None and results[2].confidence is None
    assert isinstance(results[0], MetricComparison) and results[0].worse_low > 1.1


def test_simultaneous_intervals_are_wider_than_single_ones() -> None:
    rng = np.random.default_rng(1)
    base, now = list(rng.lognormal(0, 0.2, 15)), list(rng.lognormal(0.1, 0.2, 15))
    single = ratio_interval(base, now, 0.95)
    family = judge_family([(base, now)] * 10, ["lower"] * 10, limit_pct=10)[0]
    assert family.ratio_low < single.low and family.ratio_high > single.high


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_limits_that_are_not_finite_non_negative_percentages_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="finite percentage >= 0"):
        check_limit(bad)


def test_a_floor_raises_the_limit_of_one_metric_only() -> None:
    # x1.27 with a tight interval: a regression at 10 %, but not where a change must be > x2 to count
    test = _test(1.27, 1.11, 1.55)
    assert verdict(test, "lower", 0.001, 10).verdict == "regression"
    assert verdict(test, "lower", 0.001, 10, floor=2.0).verdict == "no change"
    assert verdict(test, "lower", 0.001, 10, floor=1.05).verdict == "regression"  # the larger limit wins
    rng = np.random.default_rng(2)
    base = list(rng.normal(1.0, 0.01, 10))
    pairs = [(base, [v * 1.3 for v in base])] * 2
    results = judge_family(pairs, ["lower", "lower"], limit_pct=10, floors=[None, 2.0])
    assert [r.verdict for r in results] == ["regression", "no change"]
