"""Quantiles of a per-sample duration: exact distribution-free intervals and verdicts.

A latency requirement "the q-quantile of D is at most L" is the statement F(L) >= q,
where F is D's distribution (the quantile taken as inf{x : F(x) >= q}). Whatever F is,
the number of samples with D <= L is Binomial(n, F(L)), and the r-th smallest value
X_(r) lies at or below the true quantile with probability P(Binomial(n, q) >= r). So the
inference needs no model of D's shape (Hahn & Meeker 1991, ch. 5; Conover 1999, 3.2):

* the **interval** [X_(l), X_(u)] at a confidence c: l the largest rank with
  P(B <= l - 1) <= (1 - c) / 2 and u the smallest with P(B >= u) <= (1 - c) / 2, B ~
  Binomial(n, q). With too few samples there is no such rank on one side: then the
  interval is unbounded there (None; for a duration the lower end is at worst 0).
* the **verdict**: conclusive PASS when the one-sided upper bound X_(u) at 1 - alpha is
  at most L (equivalently, at least u samples are at or under L); conclusive FAIL when
  the one-sided lower bound X_(l) at 1 - beta is above L (fewer than l are); otherwise
  inconclusive, PASS iff the sample quantile X_(ceil(nq)) is at most L. A requirement
  whose true quantile is above L gets a conclusive PASS at most alpha of the time, one
  whose true quantile is at or below L a conclusive FAIL at most beta of the time.
* :func:`quantile_samples_to_conclusive`: the samples that would settle it if the
  observed share at or under L held.

``tests/stats/test_quantiles.py`` checks every function against exact rational
arithmetic, scipy and published tables. scipy (the binomial distribution) is imported
lazily.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

from llmcheck.stats.intervals import _check_int, _check_real, _check_unit

__all__ = [
    "QuantileVerdict",
    "latency_errors",
    "order_statistic_ranks",
    "quantile_fail_chance",
    "quantile_interval",
    "quantile_samples_to_conclusive",
    "quantile_verdict",
    "sample_quantile",
]

_SEARCH_LIMIT = 1_000_000
_TOLERANCE = 1e-12
"""Rounding room when a binomial tail is compared with an error rate."""


def _check_values(values: Sequence[float]) -> list[float]:
    out = []
    for v in values:
        x = _check_real("a duration", v)
        if x < 0:
            raise _usage(f"durations must be >= 0 seconds, got {v!r}")
        out.append(x)
    return sorted(out)


def _usage(message: str) -> Exception:
    from llmcheck.errors import UsageError

    return UsageError(message)


def _rank(n: int, q: float) -> int:
    """ceil(n q), exact for decimal q (0.55 * 100 is 55.000000000000007 in floats)."""
    return max(1, math.ceil(n * Fraction(repr(float(q)))))


def sample_quantile(values: Sequence[float], q: float) -> float:
    """The sample q-quantile X_(ceil(nq)): the smallest value with at least a share q of
    the values at or below it (the inverse of the empirical distribution function,
    Hyndman & Fan's type 1), the order statistic the verdict compares with the limit."""
    q = _check_unit("q", q, open_low=True, open_high=True)
    xs = _check_values(values)
    if not xs:
        raise _usage("sample_quantile needs at least one value, got none")
    return xs[_rank(len(xs), q) - 1]


@lru_cache(maxsize=512)
def _cdf(n: int, p: float) -> tuple[float, ...]:
    """P(B <= j) for j = 0..n, B ~ Binomial(n, p)."""
    import numpy as np
    from scipy.stats import binom

    return tuple(float(x) for x in binom.cdf(np.arange(n + 1), n, p))


@lru_cache(maxsize=512)
def _sf(n: int, p: float) -> tuple[float, ...]:
    """P(B > j) for j = 0..n (computed directly: 1 - cdf loses the small tail)."""
    import numpy as np
    from scipy.stats import binom

    return tuple(float(x) for x in binom.sf(np.arange(n + 1), n, p))


def order_statistic_ranks(n: int, q: float, low_error: float,
                          high_error: float) -> tuple[int, int]:
    """The ranks (l, u), 1-based, of the order statistics that bound the q-quantile of n
    independent values: P(X_(l) > quantile) <= ``low_error`` with l the largest such rank,
    P(X_(u) < quantile) <= ``high_error`` with u the smallest. l = 0 means no rank is
    low enough (no lower bound), u = n + 1 no rank high enough (no upper bound)."""
    n = _check_int("n", n)
    q = _check_unit("q", q, open_low=True, open_high=True)
    low_error = _check_unit("low_error", low_error, open_low=True, open_high=True)
    high_error = _check_unit("high_error", high_error, open_low=True, open_high=True)
    return _ranks(n, q, low_error, high_error)


@lru_cache(maxsize=1024)
def _ranks(n: int, q: float, low_error: float, high_error: float) -> tuple[int, int]:
    if n == 0:
        return 0, 1
    cdf, sf = _cdf(n, q), _sf(n, q)
    # P(X_(l) > quantile) = P(B <= l - 1), rising in l; P(X_(u) < quantile) <= P(B >= u)
    # = sf[u - 1], falling in u: the last rank of one and the first of the other
    low = bisect.bisect_right(cdf, low_error + _TOLERANCE)  # ranks 1..low qualify
    high = 1 + sum(1 for x in sf if x > high_error + _TOLERANCE)
    return min(low, n), high


def quantile_interval(values: Sequence[float], q: float,
                      confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The exact distribution-free two-sided interval [X_(l), X_(u)] for the q-quantile at
    ``confidence`` (each side missing the true quantile at most (1 - confidence) / 2 of
    the time); an end is None where too few values leave no order statistic for it (the
    interval is unbounded on that side)."""
    confidence = _check_unit("confidence", confidence, open_low=True, open_high=True)
    q = _check_unit("q", q, open_low=True, open_high=True)
    xs = _check_values(values)
    tail = (1.0 - confidence) / 2
    low, high = order_statistic_ranks(len(xs), q, tail, tail)
    return (xs[low - 1] if low >= 1 else None, xs[high - 1] if high <= len(xs) else None)


def _decide(k: int, n: int, q: float, alpha: float, beta: float,
            fail_only_conclusive: bool) -> tuple[bool, bool, int, int]:
    """(passed, conclusive, u, l) for k of n values at or under the limit."""
    fail_rank, pass_rank = _ranks(n, q, beta, alpha)
    if k >= pass_rank:
        return True, True, pass_rank, fail_rank
    if k < fail_rank:
        return False, True, pass_rank, fail_rank
    passed = True if fail_only_conclusive else k >= _rank(n, q)
    return passed, False, pass_rank, fail_rank


@dataclass(frozen=True)
class QuantileVerdict:
    """A quantile requirement judged on ``n`` values (see the module's docstring)."""

    n: int
    at_or_under: int
    """Values at or under the limit."""
    estimate: float | None
    low: float | None
    """The interval's lower end (None: unbounded)."""
    high: float | None
    """The interval's upper end (None: unbounded)."""
    passed: bool
    conclusive: bool
    needed_to_pass: int
    """Values at or under the limit a conclusive PASS needs (n + 1: none is possible)."""
    fewest_to_not_fail: int
    """Below this many values at or under the limit, the FAIL is conclusive (0: never)."""
    samples_to_conclusive: int | None


def quantile_verdict(values: Sequence[float], q: float, limit: float, *, alpha: float,
                     beta: float, confidence: float = 0.95,
                     fail_only_conclusive: bool = False) -> QuantileVerdict:
    """Judge "the q-quantile is at most ``limit``" on ``values``: conclusive PASS at
    most ``alpha`` of the time when the true quantile is above the limit, conclusive FAIL
    at most ``beta`` of the time when it is at or below; the interval at ``confidence``.
    ``fail_only_conclusive`` (a session held to --llm-session-alpha): an inconclusive
    result is a PASS, so a requirement that holds fails at most ``beta`` of the time."""
    limit = _check_real("limit", limit)
    if limit <= 0:
        raise _usage(f"limit must be > 0 seconds, got {limit!r}")
    alpha = _check_unit("alpha", alpha, open_low=True, open_high=True)
    beta = _check_unit("beta", beta, open_low=True, open_high=True)
    xs = _check_values(values)
    low, high = quantile_interval(xs, q, confidence)
    n, k = len(xs), sum(x <= limit for x in xs)
    if n == 0:
        return QuantileVerdict(0, 0, None, None, None, False, False, 1, 0, None)
    passed, conclusive, u, fail_rank = _decide(k, n, q, alpha, beta, fail_only_conclusive)
    more = None if conclusive else quantile_samples_to_conclusive(
        k / n, q, alpha=alpha, beta=beta, start=n)
    return QuantileVerdict(n, k, sample_quantile(xs, q), low, high, passed, conclusive,
                           u, fail_rank, more)


def quantile_samples_to_conclusive(share: float, q: float, *, alpha: float, beta: float,
                                   start: int = 1) -> int | None:
    """The smallest total number of samples, from ``start`` on, at which a ``share`` of
    them at or under the limit would settle the verdict (a conclusive PASS for share > q,
    a conclusive FAIL for share < q); None when share == q or beyond a million."""
    share = _check_unit("share", share, open_low=False, open_high=False)
    q = _check_unit("q", q, open_low=True, open_high=True)
    start = max(1, _check_int("start", start))
    if Fraction(repr(share)) == Fraction(repr(q)):
        return None

    def settled(n: int) -> bool:
        fail_rank, pass_rank = _ranks(n, q, beta, alpha)
        k = share * n
        return k >= pass_rank - 1e-9 if share > q else k < fail_rank - 1e-9

    # the normal approximation of the rank, to start near the answer
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (alpha if share > q else beta))
    estimate = z * z * q * (1 - q) / (share - q) ** 2
    if estimate > _SEARCH_LIMIT:
        return None
    n = max(start, math.floor(estimate * 0.8))
    while not settled(n):
        n += max(1, n // 50)
        if n > _SEARCH_LIMIT:
            return None
    while n > start and settled(n - 1):
        n -= 1
    return n


def latency_errors(alpha: float, beta: float,
                   session_share: float | None) -> tuple[float, float, bool]:
    """A test's latency requirements' (alpha, beta, fail_only_conclusive): its own alpha
    and beta, or, in a session held to --llm-session-alpha, beta lowered to the session's
    share for each hypothesis, with only a conclusive FAIL failing (so a requirement that
    holds fails at most that share of the time, whatever n)."""
    if session_share is None:
        return alpha, beta, False
    return alpha, min(beta, session_share), True


def quantile_fail_chance(n: int, q: float, share: float, *, alpha: float, beta: float,
                         fail_only_conclusive: bool = False) -> float:
    """P(FAIL) of :func:`quantile_verdict` on n values of which each is at or under the
    limit with probability ``share`` (F(L)): what a session's false-fail chance adds for
    a requirement met with room to spare."""
    n = _check_int("n", n, 1)
    share = _check_unit("share", share, open_low=False, open_high=False)
    pmf: Any = _pmf(n, share)
    return math.fsum(pmf[k] for k in range(n + 1)
                     if not _decide(k, n, q, alpha, beta, fail_only_conclusive)[0])


@lru_cache(maxsize=256)
def _pmf(n: int, p: float) -> tuple[float, ...]:
    import numpy as np
    from scipy.stats import binom

    return tuple(float(x) for x in binom.pmf(np.arange(n + 1), n, p))
