"""The quantile statistics behind latency requirements, against independent references:
exact rational arithmetic, scipy's beta and binomial distributions, numpy's inverted-CDF
quantile and published tables of distribution-free confidence intervals."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats as sps

from llmcheck.errors import UsageError
from llmcheck.stats import (
    latency_errors,
    order_statistic_ranks,
    quantile_fail_chance,
    quantile_interval,
    quantile_samples_to_conclusive,
    quantile_verdict,
    sample_quantile,
)

CASES = [(1, 0.5), (5, 0.5), (10, 0.5), (20, 0.9), (37, 0.95), (93, 0.95), (93, 0.99),
         (150, 0.5), (200, 0.75)]


def _ranks_by_beta(n: int, q: float, low_error: float, high_error: float) -> tuple[int, int]:
    """The same ranks from scipy's beta distribution: X_(r) <= the q-quantile with
    probability I_q(r, n - r + 1), the regularized incomplete beta function."""
    low = max((r for r in range(1, n + 1)
               if 1 - sps.beta.cdf(q, r, n - r + 1) <= low_error), default=0)
    high = min((r for r in range(1, n + 1) if sps.beta.cdf(q, r, n - r + 1) <= high_error),
               default=n + 1)
    return low, high


@pytest.mark.parametrize(("n", "q"), CASES)
@pytest.mark.parametrize("errors", [(0.025, 0.025), (0.05, 0.01), (0.1, 0.2)])
def test_ranks_match_the_beta_distribution_and_exact_fractions(n, q, errors):
    low, high = order_statistic_ranks(n, q, *errors)
    assert (low, high) == _ranks_by_beta(n, q, *errors)
    # exact: P(B <= low - 1) <= low_error < P(B <= low); P(B >= high) <= high_error
    exact_q = Fraction(repr(q))
    pmf = [math.comb(n, k) * exact_q ** k * (1 - exact_q) ** (n - k) for k in range(n + 1)]
    below = [sum(pmf[:r]) for r in range(n + 2)]  # below[r] = P(B <= r - 1)
    e_low, e_high = (Fraction(repr(e)) for e in errors)
    if low >= 1:
        assert below[low] <= e_low
    if low < n:
        assert below[low + 1] > e_low
    if high <= n:
        assert 1 - below[high] <= e_high
    if high >= 2:
        assert 1 - below[high - 1] > e_high


@pytest.mark.parametrize(("n", "ranks", "coverage"), [
    # Conover, Practical Nonparametric Statistics (3rd ed.), table A3 and example 3.2.1;
    # the distribution-free median intervals of Hahn & Meeker (1991), table A.15
    (10, (2, 9), 0.9785), (20, (6, 15), 0.9586), (30, (10, 21), 0.9572),
    (100, (40, 61), 0.9648)])
def test_median_intervals_match_published_tables(n, ranks, coverage):
    low, high = order_statistic_ranks(n, 0.5, 0.025, 0.025)
    assert (low, high) == ranks
    # coverage P(low <= B <= high - 1), as the tables print it
    got = sps.binom.cdf(high - 1, n, 0.5) - sps.binom.cdf(low - 1, n, 0.5)
    assert got == pytest.approx(coverage, abs=1e-4)


def test_too_few_samples_leave_an_end_unbounded():
    # 0.95^20 = 0.358 > 0.025: even the largest of 20 values is below the p95 too often
    low, high = order_statistic_ranks(20, 0.95, 0.025, 0.025)
    assert high == 21 and low == 17
    assert quantile_interval(list(range(1, 21)), 0.95) == (17, None)
    # the fewest samples that bound the p95 from above at 97.5%: 0.95^n <= 0.025
    n = math.ceil(math.log(0.025) / math.log(0.95))
    assert order_statistic_ranks(n, 0.95, 0.025, 0.025)[1] == n
    assert order_statistic_ranks(n - 1, 0.95, 0.025, 0.025)[1] == n
    assert order_statistic_ranks(0, 0.5, 0.025, 0.025) == (0, 1)
    assert quantile_interval([1.0], 0.5) == (None, None)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9, 0.95, 0.99])
def test_sample_quantile_is_the_inverted_cdf(q):
    rng = random.Random(7)
    for n in (1, 2, 19, 20, 93, 101):
        values = [rng.lognormvariate(0, 1) for _ in range(n)]
        assert sample_quantile(values, q) == pytest.approx(
            float(np.quantile(values, q, method="inverted_cdf")), abs=1e-12)
    # exact at rational products: 0.55 * 100 is 55.000000000000007 in floats
    assert sample_quantile(list(range(1, 101)), 0.55) == 55


def test_interval_ends_are_the_order_statistics_at_those_ranks():
    rng = random.Random(3)
    values = [rng.expovariate(2.0) for _ in range(93)]
    ordered = sorted(values)
    low, high = quantile_interval(values, 0.5, 0.95)
    ranks = _ranks_by_beta(93, 0.5, 0.025, 0.025)
    assert (low, high) == (ordered[ranks[0] - 1], ordered[ranks[1] - 1])
    low90, high90 = quantile_interval(values, 0.5, 0.90)
    assert low <= low90 <= high90 <= high  # narrower at a lower confidence


@pytest.mark.parametrize(("n", "q"), [(20, 0.5), (93, 0.95), (200, 0.9), (60, 0.99)])
def test_verdict_error_rates_are_bounded_exactly(n, q):
    """P(conclusive PASS) when the true quantile is at the limit (F(L) = q) is at most
    alpha, P(conclusive FAIL) there at most beta, summed over every outcome with scipy's
    binomial probabilities; inconclusive verdicts follow the sample quantile."""
    alpha, beta = 0.05, 0.1
    limit = 1.0
    pass_c = fail_c = 0.0
    for k in range(n + 1):
        values = [0.5] * k + [2.0] * (n - k)  # k of n at or under the limit
        v = quantile_verdict(values, q, limit, alpha=alpha, beta=beta)
        weight = sps.binom.pmf(k, n, q)
        pass_c += weight * (v.passed and v.conclusive)
        fail_c += weight * (not v.passed and v.conclusive)
        if not v.conclusive:
            assert v.passed == (sample_quantile(values, q) <= limit)
        assert v.at_or_under == k and v.n == n
    assert pass_c <= alpha + 1e-12 and fail_c <= beta + 1e-12
    upper = order_statistic_ranks(n, q, beta, alpha)[1]
    if upper <= n:  # the design spends what it may: one more rank would exceed alpha
        assert pass_c == pytest.approx(sps.binom.sf(upper - 1, n, q), abs=1e-4)
        assert sps.binom.sf(upper - 2, n, q) > alpha


def test_fail_only_conclusive_passes_what_is_not_proved_to_fail():
    values = [0.5] * 85 + [2.0] * 8  # sample p95 above 1.0, not conclusively
    plain = quantile_verdict(values, 0.95, 1.0, alpha=0.05, beta=0.05)
    held = quantile_verdict(values, 0.95, 1.0, alpha=0.05, beta=0.05,
                            fail_only_conclusive=True)
    assert not plain.passed and not plain.conclusive
    assert held.passed and not held.conclusive
    worse = [0.5] * 70 + [2.0] * 23
    assert not quantile_verdict(worse, 0.95, 1.0, alpha=0.05, beta=0.05,
                                fail_only_conclusive=True).passed


@pytest.mark.parametrize(("share", "only"), [(0.975, False), (0.9, False), (0.975, True),
                                             (0.95, True)])
def test_fail_chance_sums_the_failing_outcomes(share, only):
    n, q = 93, 0.95
    expected = sum(sps.binom.pmf(k, n, share) for k in range(n + 1)
                   if not quantile_verdict([0.5] * k + [2.0] * (n - k), q, 1.0, alpha=0.05,
                                           beta=0.02, fail_only_conclusive=only).passed)
    got = quantile_fail_chance(n, q, share, alpha=0.05, beta=0.02, fail_only_conclusive=only)
    assert got == pytest.approx(expected, abs=1e-4)
    if only:
        assert got <= 0.02 + 1e-12  # a requirement that holds fails at most beta


@pytest.mark.parametrize(("share", "q"), [(0.99, 0.95), (0.9, 0.95), (0.7, 0.5),
                                          (0.3, 0.5), (1.0, 0.9), (0.0, 0.5)])
def test_samples_to_conclusive_is_the_first_n_that_settles(share, q):
    alpha = beta = 0.05
    n = quantile_samples_to_conclusive(share, q, alpha=alpha, beta=beta, start=10)
    assert n is not None and n >= 10

    def settles(m: int) -> bool:
        low, high = _ranks_by_beta(m, q, beta, alpha)
        k = share * m
        return k >= high - 1e-9 if share > q else k < low - 1e-9

    assert settles(n)
    assert n == 10 or not settles(n - 1)
    assert quantile_samples_to_conclusive(0.95, 0.95, alpha=alpha, beta=beta) is None


def test_an_inconclusive_verdict_says_how_many_samples_would_settle_it():
    values = [0.5] * 19 + [2.0]  # 19 of 20 under: p95 not provable at n = 20
    v = quantile_verdict(values, 0.9, 1.0, alpha=0.05, beta=0.05)
    assert v.passed and not v.conclusive
    assert v.samples_to_conclusive == quantile_samples_to_conclusive(
        0.95, 0.9, alpha=0.05, beta=0.05, start=20)
    more = [0.5] * round(0.95 * v.samples_to_conclusive) + [2.0] * (
        v.samples_to_conclusive - round(0.95 * v.samples_to_conclusive))
    assert quantile_verdict(more, 0.9, 1.0, alpha=0.05, beta=0.05).conclusive


def test_session_share_lowers_beta_and_fails_only_conclusively():
    assert latency_errors(0.05, 0.05, None) == (0.05, 0.05, False)
    assert latency_errors(0.05, 0.05, 0.01) == (0.05, 0.01, True)
    assert latency_errors(0.05, 0.005, 0.01) == (0.05, 0.005, True)


@pytest.mark.parametrize(("call", "named"), [
    (lambda: sample_quantile([], 0.5), "at least one value"),
    (lambda: sample_quantile([1.0], 1.0), "q must be in (0, 1)"),
    (lambda: sample_quantile([-1.0], 0.5), "-1.0"),
    (lambda: sample_quantile([float("nan")], 0.5), "nan"),
    (lambda: quantile_interval([1.0], 0.5, confidence=95), "95"),
    (lambda: quantile_verdict([1.0], 0.5, 0, alpha=0.05, beta=0.05), "limit must be > 0"),
    (lambda: quantile_verdict([1.0], 0.5, 1, alpha=1.5, beta=0.05), "alpha"),
    (lambda: order_statistic_ranks(-1, 0.5, 0.1, 0.1), "-1"),
    (lambda: quantile_fail_chance(0, 0.5, 0.5, alpha=0.1, beta=0.1), "n must be"),
])
def test_bad_input_is_a_usage_error_naming_it(call, named):
    with pytest.raises(UsageError) as info:
        call()
    assert named in str(info.value)
