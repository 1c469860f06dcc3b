"""Reference-value tests of llmcheck.stats: intervals, the exact binomial test, pass@k, pass^k.

Every reference is computed independently of llmcheck, with scipy or by brute
force, and compared to 1e-4 (most agree to ~1e-12).
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

from llmcheck.errors import UsageError
from llmcheck.stats import (
    binomial_test,
    clopper_pearson_interval,
    pass_at_k,
    pass_hat_k,
    samples_for_conclusive,
    wilson_interval,
)

CONFIDENCES = (0.8, 0.9, 0.95, 0.99)
GRID = [(k, n) for n in range(1, 61) for k in range(n + 1)]
TOL = 1e-4


def test_importing_stats_does_not_import_scipy_or_pytest() -> None:
    code = (
        "import sys, llmcheck.stats; "
        "bad = [m for m in ('scipy', 'numpy', 'pytest') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- Wilson ------------------------------------------------------------------


def test_wilson_issue_value() -> None:
    low, high = wilson_interval(17, 20, 0.95)
    assert low == pytest.approx(0.6396, abs=5e-5)
    assert high == pytest.approx(0.9476, abs=5e-5)


@pytest.fixture(scope="module")
def scipy_results() -> dict[tuple[int, int], object]:
    """scipy.stats.binomtest results over the grid, built once (each costs ~0.3 ms)."""
    return {(k, n): scipy.stats.binomtest(k, n) for k, n in GRID}


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_wilson_matches_scipy_on_grid(confidence: float, scipy_results) -> None:
    for (k, n), result in scipy_results.items():
        ref = result.proportion_ci(confidence_level=confidence, method="wilson")
        low, high = wilson_interval(k, n, confidence)
        assert low == pytest.approx(max(0.0, ref.low), abs=TOL), (k, n)
        assert high == pytest.approx(min(1.0, ref.high), abs=TOL), (k, n)
        assert 0.0 <= low <= high <= 1.0


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


# -- Clopper-Pearson -----------------------------------------------------------


def test_clopper_pearson_issue_value() -> None:
    low, high = clopper_pearson_interval(17, 20, 0.95)
    assert low == pytest.approx(0.6211, abs=5e-5)
    assert high == pytest.approx(0.9679, abs=5e-5)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_clopper_pearson_matches_beta_quantiles_on_grid(confidence: float) -> None:
    """The textbook definition, vectorised: Beta(k, n-k+1) and Beta(k+1, n-k) quantiles."""
    k = np.array([g[0] for g in GRID], dtype=float)
    n = np.array([g[1] for g in GRID], dtype=float)
    a = 1 - confidence
    with np.errstate(all="ignore"):
        ref_low = np.where(k == 0, 0.0, scipy.stats.beta.ppf(a / 2, k, n - k + 1))
        ref_high = np.where(k == n, 1.0, scipy.stats.beta.ppf(1 - a / 2, k + 1, n - k))
    for i, (kk, nn) in enumerate(GRID):
        low, high = clopper_pearson_interval(kk, nn, confidence)
        assert low == pytest.approx(ref_low[i], abs=TOL), (kk, nn)
        assert high == pytest.approx(ref_high[i], abs=TOL), (kk, nn)


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_clopper_pearson_matches_scipy_binomtest(confidence: float, scipy_results) -> None:
    """scipy's own "exact" interval, on part of the grid (each call costs ~1 ms)."""
    for n in (*range(1, 13), 17, 20, 37, 60):
        for k in range(n + 1):
            ref = scipy_results[k, n].proportion_ci(confidence_level=confidence, method="exact")
            low, high = clopper_pearson_interval(k, n, confidence)
            assert low == pytest.approx(ref.low, abs=TOL), (k, n)
            assert high == pytest.approx(ref.high, abs=TOL), (k, n)


def test_clopper_pearson_edges() -> None:
    assert clopper_pearson_interval(0, 0) == (0.0, 1.0)
    assert clopper_pearson_interval(0, 7)[0] == 0.0
    assert clopper_pearson_interval(7, 7)[1] == 1.0
    # 0/n: the upper bound solves (1 - p)^n = alpha/2
    assert clopper_pearson_interval(0, 7)[1] == pytest.approx(1 - 0.025 ** (1 / 7), abs=1e-12)


# -- exact binomial test -------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_binomial_test_matches_scipy(alternative: str) -> None:
    for n in [*range(1, 31), 50, 97]:
        for p in (0.1, 1 / 3, 0.5, 0.8, 0.875, 0.9, 0.95):
            for k in range(n + 1):
                ref = scipy.stats.binomtest(k, n, p, alternative=alternative).pvalue
                got = binomial_test(k, n, p, alternative)
                assert got == pytest.approx(ref, abs=TOL, rel=1e-6), (k, n, p)


def test_binomial_test_known_values() -> None:
    # 17/20 against 0.9, one-sided "less": P(X <= 17 | 20, 0.9)
    ref = sum(math.comb(20, i) * 0.9**i * 0.1 ** (20 - i) for i in range(18))
    assert binomial_test(17, 20, 0.9, "less") == pytest.approx(ref, rel=1e-10)
    assert binomial_test(10, 20, 0.5) == pytest.approx(1.0)
    assert binomial_test(0, 5, 0.0) == 1.0
    assert binomial_test(5, 5, 1.0, "greater") == 1.0


# -- pass@k and pass^k ---------------------------------------------------------


def _brute(n: int, c: int, k: int) -> tuple[float, float]:
    """Over every k-subset of n samples (c pass): share with any pass, share with all passing."""
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(outcomes, k))
    return (
        sum(any(s) for s in subsets) / len(subsets),
        sum(all(s) for s in subsets) / len(subsets),
    )


def test_pass_at_k_and_pass_hat_k_against_enumeration() -> None:
    for n in range(1, 11):
        for c in range(n + 1):
            for k in range(1, n + 1):
                any_pass, all_pass = _brute(n, c, k)
                assert pass_at_k(n, c, k) == pytest.approx(any_pass, abs=1e-12)
                assert pass_hat_k(n, c, k) == pytest.approx(all_pass, abs=1e-12)


def test_pass_at_k_and_pass_hat_k_against_comb_formula() -> None:
    for n in (20, 50, 100, 200):
        for c in range(0, n + 1, 7):
            for k in (1, 2, 5, 10, 20):
                naive_at = 1 - math.comb(n - c, k) / math.comb(n, k)
                naive_hat = math.comb(c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(naive_at, abs=1e-10)
                assert pass_hat_k(n, c, k) == pytest.approx(naive_hat, abs=1e-10)


def test_pass_at_k_is_stable_for_large_n() -> None:
    # C(10_000, 100) overflows a float; the product form does not care
    value = pass_at_k(10_000, 10, 100)
    exact = 1 - math.comb(9_990, 100) / math.comb(10_000, 100)  # exact big-integer ratio
    assert value == pytest.approx(exact, rel=1e-9)
    assert pass_hat_k(10_000, 9_990, 100) == pytest.approx(
        math.comb(9_990, 100) / math.comb(10_000, 100), rel=1e-9
    )


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: wilson_interval(5, 3), "5"),
        (lambda: wilson_interval(-1, 3), "-1"),
        (lambda: wilson_interval(1, -2), "-2"),
        (lambda: wilson_interval(1, 3, 1.0), "1.0"),
        (lambda: wilson_interval(1, 3, 0), "0"),
        (lambda: wilson_interval(1.5, 3), "1.5"),
        (lambda: clopper_pearson_interval(4, 3), "4"),
        (lambda: clopper_pearson_interval(1, 3, 95), "95"),
        (lambda: binomial_test(1, 3, 1.2), "1.2"),
        (lambda: binomial_test(1, 3, 0.5, "bigger"), "bigger"),
        (lambda: pass_at_k(5, 6, 1), "6"),
        (lambda: pass_at_k(5, 2, 6), "6"),
        (lambda: pass_at_k(5, 2, 0), "0"),
        (lambda: pass_hat_k(0, 0, 1), "0"),
        (lambda: samples_for_conclusive(0.9, 1.3), "1.3"),
    ],
)
def test_bad_input_raises_usage_error_naming_the_value(call, named: str) -> None:
    with pytest.raises(UsageError) as info:
        call()
    assert named in str(info.value)
    assert isinstance(info.value, ValueError)


def test_error_messages_say_what_is_accepted() -> None:
    with pytest.raises(UsageError, match=r"successes must be between 0 and n=3, got 5"):
        wilson_interval(5, 3)
    with pytest.raises(UsageError, match=r"confidence must be strictly between 0 and 1"):
        clopper_pearson_interval(1, 3, 1.5)
    with pytest.raises(UsageError, match=r"two-sided, greater, less"):
        binomial_test(1, 3, 0.5, "both")


# -- samples_for_conclusive ------------------------------------------------------


def _scipy_wilson(rate: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson bounds at a non-integer count, via scipy's formula module."""
    from scipy.stats._binomtest import _binom_wilson_conf_int

    return _binom_wilson_conf_int(rate * n, n, confidence, "two-sided", False)


@pytest.mark.parametrize(
    ("rate", "m"), [(0.85, 0.9), (0.95, 0.9), (0.5, 0.8), (0.99, 0.5), (0.6, 0.9)]
)
def test_samples_for_conclusive_is_the_smallest_n(rate: float, m: float) -> None:
    n = samples_for_conclusive(rate, m, 0.95)
    assert n is not None

    def excluded(size: int) -> bool:
        low, high = _scipy_wilson(rate, size, 0.95)
        return low >= m if rate > m else high < m

    assert excluded(n)
    assert not any(excluded(size) for size in range(1, n))


def test_samples_for_conclusive_edges() -> None:
    assert samples_for_conclusive(0.9, 0.9) is None
    assert samples_for_conclusive(0.9000001, 0.9) is None  # beyond a million samples
    # 0.85 vs 0.9 needs z^2 m(1-m)/(0.05)^2 ~ 138.3 samples
    assert samples_for_conclusive(0.85, 0.9) == 139


# -- properties ------------------------------------------------------------------

counts = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
confidences = st.floats(min_value=0.5, max_value=0.999)


@given(counts, confidences)
def test_intervals_contain_the_point_estimate(kn: tuple[int, int], confidence: float) -> None:
    k, n = kn
    for low, high in (
        wilson_interval(k, n, confidence),
        clopper_pearson_interval(k, n, confidence),
    ):
        assert 0.0 <= low <= k / n <= high <= 1.0


@given(counts, confidences)
def test_intervals_are_symmetric_under_swapping_pass_and_fail(
    kn: tuple[int, int], confidence: float
) -> None:
    k, n = kn
    for interval in (wilson_interval, clopper_pearson_interval):
        low, high = interval(k, n, confidence)
        mirror_low, mirror_high = interval(n - k, n, confidence)
        assert low == pytest.approx(1 - mirror_high, abs=1e-9)
        assert high == pytest.approx(1 - mirror_low, abs=1e-9)


@given(counts, st.floats(min_value=0.8, max_value=0.99))
def test_higher_confidence_widens_the_interval(kn: tuple[int, int], confidence: float) -> None:
    k, n = kn
    narrow = wilson_interval(k, n, confidence - 0.1)
    wide = wilson_interval(k, n, confidence)
    assert wide[0] <= narrow[0] + 1e-12 and narrow[1] <= wide[1] + 1e-12


@given(
    st.integers(min_value=1, max_value=60).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n), st.integers(1, n))
    )
)
def test_pass_hat_k_is_at_most_pass_at_k(nck: tuple[int, int, int]) -> None:
    n, c, k = nck
    hat, at = pass_hat_k(n, c, k), pass_at_k(n, c, k)
    assert 0.0 <= hat <= at + 1e-12 and at <= 1.0
    assert hat <= (c / n) ** k + 1e-12  # drawing without replacement is harsher
    if k == 1:
        assert hat == pytest.approx(c / n) and at == pytest.approx(c / n)
