"""Statistics from raw samples: summaries, percentile intervals, two-run comparison tests, verdicts.

The bottom layer: it imports nothing from the harness, so measuring, judging and reporting share
one set of definitions (docs/ARCHITECTURE.md). Percentiles interpolate linearly between closest
ranks (numpy's default); stddev has ddof=1; runs are combined by joining raw samples. Written with
numpy alone: scipy would add ~140 MB to the install and ~1 s to every `report` for four functions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Literal, Sequence

import numpy as np

# A summary is flagged below this many samples, and a single-stream one when stddev > 10 % of the mean.
MIN_SAMPLES = 5
MAX_RELATIVE_STDDEV = 0.10

CONFIDENCE = 0.95  # of every interval the harness reports
ALPHA = 0.05  # family-wise error rate of the comparison tests (after Holm)
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20240601  # fixed: the same two runs always give the same interval
EXACT_MAX_CELLS = 400  # Mann-Whitney exact null distribution up to n1 * n2 = 400 (e.g. 20 x 20)

VerdictKind = Literal["regression", "improvement", "no change", "inconclusive"]


# --- summaries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Statistics of raw samples. Fields are None where undefined (no samples; stddev of one)."""

    n: int
    p50: float | None
    p90: float | None
    p99: float | None
    mean: float | None
    stddev: float | None
    min: float | None
    max: float | None
    warning: str | None  # why the figure should not be trusted; None when it looks stable

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def finite(values: Iterable[float | None]) -> np.ndarray:
    """The finite values as a float array; None, NaN and inf are dropped."""
    data = np.array([v for v in values if v is not None], dtype=float)
    return data[np.isfinite(data)]


def summarize(values: Iterable[float | None], min_samples: int = MIN_SAMPLES, *,
              single_stream: bool = True) -> Summary:
    """n, p50, p90, p99, mean, stddev (ddof=1), min, max of the finite values, with a stability warning.

    ``single_stream`` False (concurrent or open-loop cases): spread is queueing, which is expected,
    so only too few samples is warned about.
    """
    data = finite(values)
    n = int(data.size)
    if n == 0:
        return Summary(0, None, None, None, None, None, None, None, "no samples")
    p50, p90, p99 = (float(p) for p in np.percentile(data, [50, 90, 99], method="linear"))
    mean = float(data.mean())
    stddev = float(data.std(ddof=1)) if n > 1 else None
    return Summary(n, p50, p90, p99, mean, stddev, float(data.min()), float(data.max()),
                   instability(n, mean, stddev, min_samples, single_stream=single_stream))


def instability(n: int, mean: float, stddev: float | None, min_samples: int = MIN_SAMPLES, *,
                single_stream: bool = True) -> str | None:
    """Why a measurement is unstable, naming the likely cause; None when it looks stable."""
    if n < min_samples:
        return f"only {n} sample{'' if n == 1 else 's'} (want >= {min_samples})"
    if single_stream and stddev is not None and mean != 0 and stddev > MAX_RELATIVE_STDDEV * abs(mean):
        return (f"stddev is {stddev / abs(mean):.0%} of the mean (limit {MAX_RELATIVE_STDDEV:.0%}): "
                "likely background load on the machine (other processes, frequency scaling)")
    return None


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0-100) of the finite values; None without samples."""
    data = finite(values)
    return float(np.percentile(data, q, method="linear")) if data.size else None


# --- intervals ----------------------------------------------------------------------------------


def _binomial_cdf(n: int, p: float) -> np.ndarray:
    """P(B <= k) for k = 0..n, B ~ Binomial(n, p), computed in log space (stable for large n)."""
    k = np.arange(n + 1)
    log_pmf = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
               + k * math.log(p) + (n - k) * math.log1p(-p))
    return np.cumsum(np.exp(log_pmf))


def percentile_interval(values: Iterable[float | None], q: float,
                        confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the q-th percentile (0 < q < 100) from order statistics.

    With the samples sorted x(1) <= ... <= x(n), [x(l), x(u)] covers the true percentile with
    probability P(l <= B < u), B ~ Binomial(n, q/100). The narrowest equal-tailed pair reaching
    ``confidence`` is chosen. Returns None when n is too small for any pair to reach it (e.g. a
    median needs 6 samples at 95 %): the caller must then say "inconclusive", never pass.
    """
    if not 0 < q < 100 or not 0 < confidence < 1:
        raise ValueError(f"q must be in (0, 100) and confidence in (0, 1), got {q}, {confidence}")
    data = np.sort(finite(values))
    n = int(data.size)
    if n == 0:
        return None
    cdf = _binomial_cdf(n, q / 100.0)
    tail = (1.0 - confidence) / 2.0
    # lower rank l (1-based): largest l with P(B <= l - 1) <= tail; upper rank u: smallest u with P(B >= u) <= tail
    lower_ok = np.nonzero(cdf <= tail)[0]  # indices k = l - 1
    upper_ok = np.nonzero(1.0 - cdf <= tail + 1e-12)[0]  # P(B > k) = P(B >= k + 1) <= tail -> u = k + 1
    if lower_ok.size == 0 or upper_ok.size == 0:
        return None
    lower_rank, upper_rank = int(lower_ok[-1]) + 1, int(upper_ok[0]) + 1
    if upper_rank > n:
        return None
    return float(data[lower_rank - 1]), float(data[upper_rank - 1])


@dataclass(frozen=True)
class RatioInterval:
    """median(current) / median(baseline) with its bootstrap confidence interval."""

    ratio: float
    low: float
    high: float
    confidence: float


def ratio_interval(baseline: Sequence[float], current: Sequence[float], confidence: float = CONFIDENCE,
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> RatioInterval | None:
    """Ratio of medians with a percentile bootstrap interval; None when a median is not positive.

    Each sample is resampled with replacement ``resamples`` times (one numpy array operation each),
    the ratio of the resampled medians is taken, and its (1-c)/2 and (1+c)/2 quantiles bound the
    interval. The seed is fixed, so the same two runs always give the same interval.
    """
    base, now = finite(baseline), finite(current)
    if base.size == 0 or now.size == 0:
        return None
    ratio_point = _median_ratio(base, now)
    if ratio_point is None:
        return None
    rng = np.random.default_rng(seed)
    base_medians = np.median(base[rng.integers(0, base.size, size=(resamples, base.size))], axis=1)
    now_medians = np.median(now[rng.integers(0, now.size, size=(resamples, now.size))], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = now_medians / base_medians
    ratios = ratios[np.isfinite(ratios) & (ratios > 0)]
    if ratios.size < resamples // 2:
        return None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return RatioInterval(ratio_point, float(low), float(high), confidence)


def _median_ratio(base: np.ndarray, now: np.ndarray) -> float | None:
    base_median, now_median = float(np.median(base)), float(np.median(now))
    if base_median <= 0 or now_median <= 0:
        return None
    return now_median / base_median


# --- tests --------------------------------------------------------------------------------------


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the Mann-Whitney U test (is one sample stochastically larger?).

    Exact null distribution when there are no ties and n1 * n2 <= EXACT_MAX_CELLS; otherwise the
    normal approximation with the tie correction of the variance and a continuity correction of 0.5.
    None when a sample is empty.
    """
    x, y = finite(a), finite(b)
    n1, n2 = int(x.size), int(y.size)
    if n1 == 0 or n2 == 0:
        return None
    # Midranks: a group of tied values shares the mean of its ranks (end - (count - 1) / 2).
    _, inverse, counts = np.unique(np.concatenate([x, y]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    ties = bool((counts > 1).any())
    if not ties and n1 * n2 <= EXACT_MAX_CELLS:
        return _exact_p(u1, n1, n2)
    return _normal_p(u1, n1, n2, counts)


def _u_distribution(n1: int, n2: int) -> np.ndarray:
    """Counts of each U value 0..n1*n2 under the null (all orderings equally likely), by recursion on n1."""
    # f(m, n) over u: f(m, n)[u] = f(m - 1, n)[u - n] + f(m, n - 1)[u]; build up column by column.
    table = [np.ones(1)] * (n2 + 1)  # m = 0: one way, U = 0, for every n
    for m in range(1, n1 + 1):
        row = [np.ones(1)]  # n = 0: U = 0
        for n in range(1, n2 + 1):
            counts = np.zeros(m * n + 1)
            counts[n:n + table[n].size] += table[n]  # the largest value is from sample 1: adds n to U
            counts[:row[n - 1].size] += row[n - 1]  # the largest value is from sample 2
            row.append(counts)
        table = row
    return table[n2]


def _exact_p(u1: float, n1: int, n2: int) -> float:
    counts = _u_distribution(n1, n2)
    total = counts.sum()
    u = min(u1, n1 * n2 - u1)  # the distribution is symmetric: two-sided = 2 x the smaller tail
    tail = counts[: int(math.floor(u)) + 1].sum() / total
    return float(min(1.0, 2.0 * tail))


def _normal_p(u1: float, n1: int, n2: int, tie_counts: np.ndarray) -> float:
    n = n1 + n2
    mean = n1 * n2 / 2.0
    tie_term = float((tie_counts ** 3 - tie_counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0  # every value equal: no evidence of a difference
    z = (abs(u1 - mean) - 0.5) / math.sqrt(variance)
    return float(min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0))))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order.

    Sorted ascending, the i-th smallest (1-based) is multiplied by (m - i + 1), then made monotone
    with a running maximum and capped at 1. Controls the family-wise error rate for any dependence.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * p_values[index]))
        adjusted[index] = running
    return adjusted


# --- verdicts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one case, baseline against current: effect, interval, test and verdict.

    ``worse``, ``worse_low`` and ``worse_high`` are the ratio turned so that > 1 always means worse
    (current / baseline where lower is better, baseline / current where higher is better).
    """

    verdict: VerdictKind
    n_baseline: int
    n_current: int
    baseline_median: float | None
    current_median: float | None
    ratio: float | None  # median(current) / median(baseline)
    ratio_low: float | None
    ratio_high: float | None
    worse: float | None
    worse_low: float | None
    worse_high: float | None
    confidence: float | None  # of the ratio's interval
    p_value: float | None
    p_adjusted: float | None
    samples_needed: int | None  # per run, for an inconclusive verdict; None where more would not help
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SampleTest:
    """What two samples say before the family's adjustment: medians, ratio interval, raw p-value."""

    n_baseline: int
    n_current: int
    baseline_median: float | None
    current_median: float | None
    interval: RatioInterval | None
    p_value: float | None
    problem: str | None  # why nothing could be tested (too few samples, a median <= 0)


def compare_samples(baseline: Sequence[float | None], current: Sequence[float | None],
                    min_samples: int = MIN_SAMPLES, confidence: float = CONFIDENCE) -> SampleTest:
    """Medians, the ratio-of-medians interval and the rank test's raw p-value of two raw samples."""
    base, now = finite(baseline), finite(current)
    medians = (float(np.median(base)) if base.size else None, float(np.median(now)) if now.size else None)
    if min(base.size, now.size) < min_samples:
        return SampleTest(int(base.size), int(now.size), *medians, None, None,
                          f"too few samples ({base.size} vs {now.size}, want >= {min_samples} in each run)")
    interval = ratio_interval(base, now, confidence)
    if interval is None:
        return SampleTest(int(base.size), int(now.size), *medians, None, None,
                          "a median is zero or negative: no ratio to test")
    return SampleTest(int(base.size), int(now.size), *medians, interval, mann_whitney(base, now), None)


def judge_family(pairs: Sequence[tuple[Sequence[float | None], Sequence[float | None]]], better: Sequence[str],
                 limit_pct: float, floors: Sequence[float | None] | None = None, alpha: float = ALPHA,
                 min_samples: int = MIN_SAMPLES) -> list[MetricComparison]:
    """Verdicts for (baseline, current) sample pairs, judged as one family of m tested metrics.

    ``floors`` (per pair, a ratio >= 1 or None): the smallest change that counts for that metric, so
    its limit is 1 + PCT/100 or the floor, whichever is larger (the caller turns e.g. "1 ms" into one).

    Both halves of a verdict hold for the family: the p-values are Holm-adjusted over the m metrics
    with enough samples, and the intervals are simultaneous (Bonferroni: each at 1 - alpha/m), so a
    regression anywhere in an A/A comparison has probability <= alpha, not m times that.
    """
    check_limit(limit_pct)
    m = sum(1 for a, b in pairs if min(finite(a).size, finite(b).size) >= min_samples)
    tests = [compare_samples(a, b, min_samples, 1.0 - alpha / max(m, 1)) for a, b in pairs]
    tested = [index for index, test in enumerate(tests) if test.problem is None and test.p_value is not None]
    adjusted = dict(zip(tested, holm([tests[i].p_value for i in tested])))  # type: ignore[misc]
    floors = list(floors) if floors is not None else [None] * len(tests)
    return [verdict(test, direction, adjusted.get(index), limit_pct, alpha, min_samples, floor)
            for index, (test, direction, floor) in enumerate(zip(tests, better, floors))]


def check_limit(limit_pct: float) -> None:
    """A limit must be a finite percentage >= 0; anything else is the caller's input error."""
    if not isinstance(limit_pct, (int, float)) or not math.isfinite(limit_pct) or limit_pct < 0:
        raise ValueError(f"the limit must be a finite percentage >= 0, got {limit_pct!r}")


def verdict(test: SampleTest, better: str, p_adjusted: float | None, limit_pct: float, alpha: float = ALPHA,
            min_samples: int = MIN_SAMPLES, floor: float | None = None) -> MetricComparison:
    """The verdict of one metric.

    With L = 1 + limit/100 (or ``floor``, if larger) and the interval of the "worse" ratio [lo, hi]:
    - regression:   lo > L (the whole interval is worse than the limit) and p_adjusted < alpha;
    - improvement:  hi < 1/L (the whole interval better by more than the limit) and p_adjusted < alpha;
    - no change:    1/L <= lo and hi <= L (whatever changed, it is smaller than the limit);
    - inconclusive: anything else (the interval straddles a limit, or the test is not significant),
      with the samples per run that would narrow the interval enough (width ~ 1/sqrt(n)).
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    base = dict(n_baseline=test.n_baseline, n_current=test.n_current,
                baseline_median=test.baseline_median, current_median=test.current_median)
    if test.interval is None:
        too_few = min(test.n_baseline, test.n_current) < min_samples
        return MetricComparison("inconclusive", **base, ratio=None, ratio_low=None, ratio_high=None, worse=None,
                                worse_low=None, worse_high=None, confidence=None, p_value=None, p_adjusted=None,
                                samples_needed=min_samples if too_few else None, reason=test.problem or "not tested")
    ratio = test.interval
    worse, low, high = ((ratio.ratio, ratio.low, ratio.high) if better == "lower"
                        else (1 / ratio.ratio, 1 / ratio.high, 1 / ratio.low))
    limit = max(1.0 + limit_pct / 100.0, floor or 1.0)
    kind, needed, reason = _decide(worse, low, high, p_adjusted, limit, alpha, min(test.n_baseline, test.n_current))
    return MetricComparison(kind, **base, ratio=ratio.ratio, ratio_low=ratio.low, ratio_high=ratio.high,
                            worse=worse, worse_low=low, worse_high=high, confidence=ratio.confidence,
                            p_value=test.p_value, p_adjusted=p_adjusted, samples_needed=needed, reason=reason)


def _decide(worse: float, low: float, high: float, p_adjusted: float | None, limit: float,
            alpha: float, n: int) -> tuple[VerdictKind, int | None, str]:
    significant = p_adjusted is not None and p_adjusted < alpha
    p_text = "n/a" if p_adjusted is None else f"{p_adjusted:.3g}"
    bounds = f"x{1.0 / limit:.3g}..x{limit:.3g}"
    if low > limit and significant:
        return "regression", None, f"worse: the whole interval is above x{limit:.3g} (p adj {p_text})"
    if high < 1.0 / limit and significant:
        return "improvement", None, f"better: the whole interval is below x{1.0 / limit:.3g} (p adj {p_text})"
    if low >= 1.0 / limit and high <= limit:
        return "no change", None, f"the whole interval is within {bounds}"
    if low > limit or high < 1.0 / limit:
        return "inconclusive", None, f"beyond {bounds} but the rank test is not significant (p adj {p_text})"
    needed = samples_to_settle(worse, low, high, limit, n)
    more = f"~{needed} samples per run would settle it" if needed else "the change is about the limit itself"
    return "inconclusive", needed, f"the interval straddles the limits {bounds}: {more}"


def samples_to_settle(point: float, low: float, high: float, limit: float, n: int) -> int | None:
    """Samples per run for the interval to clear the limit it straddles, assuming width ~ 1/sqrt(n).

    Worked in log space, where the ratio's interval is about symmetric. None when the point estimate
    sits (within 1 %) on the limit: no sample count settles that quickly.
    """
    centre = math.log(point)
    half_width = (math.log(high) - math.log(low)) / 2.0
    straddled = [b for b in (math.log(limit), -math.log(limit)) if math.log(low) <= b <= math.log(high)]
    distance = min((abs(centre - b) for b in straddled), default=half_width)
    if distance < 0.01:
        return None
    return max(n + 1, math.ceil(n * (half_width / distance) ** 2))
