"""Intervals, the exact binomial test, pass@k / pass^k, and the validation helpers.

Plain Python on counts. scipy is imported lazily, only by
:func:`clopper_pearson_interval` (beta quantiles), so importing this module
stays cheap.
"""

from __future__ import annotations

import math
from functools import lru_cache
from numbers import Real
from statistics import NormalDist

from llmcheck.config.names import INTERVAL_METHODS, IntervalMethod
from llmcheck.errors import UsageError

__all__ = [
    "INTERVAL_METHODS",
    "IntervalMethod",
    "binomial_test",
    "clopper_pearson_interval",
    "confidence_interval",
    "pass_at_k",
    "pass_hat_k",
    "samples_for_conclusive",
    "wilson_interval",
]

# Names of the interval methods :func:`confidence_interval` accepts: plain data of
# llmcheck.config.names, which the settings table validates with.

_ALTERNATIVES = ("two-sided", "greater", "less")
_SEARCH_LIMIT = 1_000_000
"""Largest sample count any search in this package will report; beyond it, ``None``."""

# --------------------------------------------------------------------------
# validation helpers: every bad value is named, with what would be accepted


def _check_int(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise UsageError(f"{name} must be a number, got {value!r}")
    x = float(value)
    if math.isnan(x) or math.isinf(x):
        raise UsageError(f"{name} must be a finite number, got {value!r}")
    return x


def _check_unit(name: str, value: object, *, open_low: bool, open_high: bool) -> float:
    """Check ``value`` lies in the unit interval with the given open/closed ends."""
    x = _check_real(name, value)
    low_ok = x > 0 if open_low else x >= 0
    high_ok = x < 1 if open_high else x <= 1
    if not (low_ok and high_ok):
        rng = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise UsageError(f"{name} must be in {rng}, got {value!r}")
    return x


def _check_confidence(confidence: object) -> float:
    x = _check_real("confidence", confidence)
    if not 0 < x < 1:
        raise UsageError(
            f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}"
        )
    return x


def _check_counts(successes: object, n: object) -> tuple[int, int]:
    n = _check_int("n", n)
    if isinstance(successes, bool) or not isinstance(successes, int):
        raise UsageError(f"successes must be an integer between 0 and n={n}, got {successes!r}")
    if not 0 <= successes <= n:
        raise UsageError(f"successes must be between 0 and n={n}, got {successes!r}")
    return successes, n


@lru_cache(maxsize=64)
def _z(confidence: float) -> float:
    """Two-sided standard normal quantile for ``confidence``."""
    return NormalDist().inv_cdf(0.5 + 0.5 * confidence)


# --------------------------------------------------------------------------
# intervals


def _wilson(phat: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval for an observed rate ``phat`` over ``n`` samples.

    ``n`` may be any positive real, so that :func:`samples_for_conclusive` can
    ask what the interval would be at the same rate with more samples. The
    arrangement follows Newcombe (1998), as scipy does.
    """
    denom = 2.0 * (n + z * z)
    center = (2.0 * n * phat + z * z) / denom
    delta = z / denom * math.sqrt(4.0 * n * phat * (1.0 - phat) + z * z)
    low = 0.0 if phat <= 0.0 else max(0.0, center - delta)
    high = 1.0 if phat >= 1.0 else min(1.0, center + delta)
    return low, high


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` (closed form).

    The default interval of llmcheck: its coverage stays close to nominal for
    small ``n`` and rates near 0 or 1, where the normal approximation fails.
    ``n == 0`` gives ``(0.0, 1.0)``: nothing is known.
    """
    successes, n = _check_counts(successes, n)
    confidence = _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    return _wilson(successes / n, n, _z(confidence))


def clopper_pearson_interval(
    successes: int, n: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for ``successes`` out of ``n``.

    Guarantees at least nominal coverage for every true rate, at the price of
    being wider than Wilson. Bounds are beta quantiles; ``0/n`` has lower bound
    0 and ``n/n`` upper bound 1.
    """
    successes, n = _check_counts(successes, n)
    confidence = _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    from scipy.special import betaincinv  # lazy: keep `import llmcheck.stats` cheap

    tail = (1.0 - confidence) / 2.0
    k = successes
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, tail))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1.0 - tail))
    return max(0.0, low), min(1.0, high)


def confidence_interval(
    successes: int, n: int, confidence: float = 0.95, method: str = "wilson"
) -> tuple[float, float]:
    """Interval for ``successes`` out of ``n`` by the method called ``method``.

    ``method`` is one of :data:`INTERVAL_METHODS`: ``"wilson"``
    (:func:`wilson_interval`, the default) or ``"clopper-pearson"``
    (:func:`clopper_pearson_interval`).
    """
    if method == "wilson":
        return wilson_interval(successes, n, confidence)
    if method == "clopper-pearson":
        return clopper_pearson_interval(successes, n, confidence)
    raise UsageError(f"unknown interval method {method!r}; accepted: {', '.join(INTERVAL_METHODS)}")


# --------------------------------------------------------------------------
# exact binomial test


def _binom_pmf(n: int, p: float) -> list[float]:
    """All binomial probabilities P(X = i), i = 0..n, computed in log space."""
    if p <= 0.0:
        return [1.0] + [0.0] * n
    if p >= 1.0:
        return [0.0] * n + [1.0]
    log_p, log_q = math.log(p), math.log1p(-p)
    log_nf = math.lgamma(n + 1)
    return [
        math.exp(log_nf - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        for i in range(n + 1)
    ]


def _binom_sf(c: int, n: int, p: float) -> float:
    """P(X >= c) for X ~ Binomial(n, p)."""
    if c <= 0:
        return 1.0
    if c > n:
        return 0.0
    return min(1.0, math.fsum(_binom_pmf(n, p)[c:]))


def binomial_test(successes: int, n: int, p: float, alternative: str = "two-sided") -> float:
    """Exact binomial test p-value of ``successes`` out of ``n`` against rate ``p``.

    ``"greater"`` tests whether the true rate exceeds ``p`` (P(X >= k)),
    ``"less"`` whether it falls short (P(X <= k)). ``"two-sided"`` sums every
    outcome no more likely than the observed one, with the relative tolerance
    ``1 + 1e-7`` that scipy.stats.binomtest uses, so the two agree.
    """
    successes, n = _check_counts(successes, n)
    p = _check_unit("p", p, open_low=False, open_high=False)
    if alternative not in _ALTERNATIVES:
        raise UsageError(
            f"alternative must be one of {', '.join(_ALTERNATIVES)}, got {alternative!r}"
        )
    if n == 0:
        return 1.0
    pmf = _binom_pmf(n, p)
    k = successes
    if alternative == "greater":
        return min(1.0, math.fsum(pmf[k:]))
    if alternative == "less":
        return min(1.0, math.fsum(pmf[: k + 1]))
    if k == p * n:
        return 1.0
    limit = pmf[k] * (1 + 1e-7)
    if k < p * n:
        # the far tail lies above the mode: from ceil(p*n) up to n
        far = [x for x in pmf[math.ceil(p * n) :] if x <= limit]
        pval = math.fsum(pmf[: k + 1]) + math.fsum(far)
    else:
        far = [x for x in pmf[: math.floor(p * n) + 1] if x <= limit]
        pval = math.fsum(far) + math.fsum(pmf[k:])
    return min(1.0, pval)


# --------------------------------------------------------------------------
# pass@k and pass^k


def _check_nck(n: object, c: object, k: object) -> tuple[int, int, int]:
    n = _check_int("n", n, 1)
    if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= n:
        raise UsageError(f"c (number of passing samples) must be between 0 and n={n}, got {c!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise UsageError(f"k must be an integer between 1 and n={n}, got {k!r}")
    return n, c, k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021): chance at least one of k runs passes.

    Estimated from ``c`` passes among ``n`` samples as ``1 - C(n-c, k) / C(n, k)``,
    in the numerically stable product form ``1 - prod(1 - k/i, i = n-c+1..n)``.
    """
    n, c, k = _check_nck(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k (tau-bench): chance that all of k runs pass.

    Estimated from ``c`` passes among ``n`` samples as ``C(c, k) / C(n, k)``, a
    far stricter view of reliability than the pass rate when k is large.
    """
    n, c, k = _check_nck(n, c, k)
    if c < k:
        return 0.0
    return math.prod((c - i) / (n - i) for i in range(k))


# --------------------------------------------------------------------------
# samples needed for a conclusive verdict


def samples_for_conclusive(rate: float, m: float, confidence: float = 0.95) -> int | None:
    """Smallest number of samples at which a Wilson interval around ``rate`` excludes ``m``.

    Answers "how many samples would make this verdict conclusive if the
    observed rate held": for ``rate > m`` the smallest n with Wilson low >= m,
    for ``rate < m`` the smallest n with Wilson high < m (the same conventions
    as the policies). ``None`` when ``rate == m`` (no n suffices) or when more
    than a million samples would be needed.
    """
    rate = _check_unit("rate", rate, open_low=False, open_high=False)
    m = _check_unit("min_pass_rate", m, open_low=False, open_high=False)
    z = _z(_check_confidence(confidence))
    if rate == m:
        return None

    def excluded(n: int) -> bool:
        low, high = _wilson(rate, n, z)
        return low >= m if rate > m else high < m

    # m lies outside the Wilson interval iff n (rate - m)^2 > z^2 m (1 - m)
    # (the score test); start just below that and step to absorb rounding.
    estimate = z * z * m * (1.0 - m) / (rate - m) ** 2
    if estimate > _SEARCH_LIMIT:
        return None
    n = max(1, math.floor(estimate) - 2)
    while not excluded(n):
        n += 1
        if n > _SEARCH_LIMIT:
            return None
    while n > 1 and excluded(n - 1):
        n -= 1
    return n
