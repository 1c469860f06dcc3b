"""Statistics: intervals, exact tests, pass@k / pass^k, and verdict policies.

Everything here is plain Python on counts, so it serves the pytest plugin, the
CLI and notebooks alike. It never imports pytest, and scipy only lazily inside
the few functions that need a special function (Clopper-Pearson quantiles and
the vectorised search in :func:`fixed_sample_size`): ``import llmcheck.stats``
stays cheap.

A *policy* turns the outcomes of a test's samples into a verdict. Samples are
counted as ``passes`` and ``failures``; a sample that ends in an ``error`` (the
harness could not get an answer) is not counted at all. The runner asks
:meth:`Policy.settled` after every finished sample whether the verdict can
still change, stops launching samples once it cannot, and then asks
:meth:`Policy.decide` for the verdict.
"""

from __future__ import annotations

import functools
import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from numbers import Real
from statistics import NormalDist

from llmcheck.errors import UsageError

__all__ = [
    "Decision",
    "IntervalPolicy",
    "POLICY_NAMES",
    "Policy",
    "SequentialPolicy",
    "ThresholdPolicy",
    "binomial_test",
    "clopper_pearson_interval",
    "fixed_sample_size",
    "make_policy",
    "pass_at_k",
    "pass_hat_k",
    "samples_for_conclusive",
    "simulate_policy",
    "wilson_interval",
]

POLICY_NAMES: tuple[str, ...] = ("threshold", "sequential", "interval")
"""Accepted values of ``--llm-verdict`` / :func:`make_policy`'s ``name``."""

_ALTERNATIVES = ("two-sided", "greater", "less")
_SEARCH_LIMIT = 1_000_000
"""Largest sample count any search here will report; beyond it, ``None``."""


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
# verdict policies


@dataclass(frozen=True)
class Decision:
    """A verdict and how much it can be trusted.

    ``conclusive`` says whether the data actually separate the model from the
    required rate (per policy, see each class); when they do not,
    ``samples_to_conclusive`` estimates how many samples would, if the
    observed rate held.
    """

    passed: bool
    conclusive: bool
    reason: str
    samples_to_conclusive: int | None = None


def _fmt(x: float, ref: float | None = None) -> str:
    """Format a rate with 2 decimals, more if needed to tell it from ``ref``."""
    for digits in range(2, 7):
        text = f"{x:.{digits}f}"
        if ref is None or x == ref or text != f"{ref:.{digits}f}":
            return text
    return f"{x:.6f}"


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


def _as_fraction(x: float) -> Fraction:
    """The rate the user wrote, exactly: 0.9 is 9/10, not the nearest binary float."""
    return x if isinstance(x, Fraction) else Fraction(repr(float(x)))


class Policy(ABC):
    """How the samples of one test become a verdict.

    Subclasses define :meth:`settled` and :meth:`decide` on counts. Every
    remaining sample may pass, fail or end in an error that is not counted,
    and ``settled`` must only say True when none of those futures could change
    the verdict: that is what makes early stopping safe.
    """

    name: str = ""

    def __init__(
        self,
        min_pass_rate: float,
        confidence: float = 0.95,
        max_samples: int | None = None,
    ) -> None:
        self.min_pass_rate = _check_unit(
            "min_pass_rate", min_pass_rate, open_low=False, open_high=False
        )
        self.confidence = _check_confidence(confidence)
        if max_samples is not None:
            max_samples = _check_int("max_samples", max_samples, 1)
        self.max_samples: int | None = max_samples

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(min_pass_rate={self.min_pass_rate}, "
            f"confidence={self.confidence}, max_samples={self.max_samples})"
        )

    @staticmethod
    def _check_state(passes: object, failures: object, remaining: object) -> None:
        _check_int("passes", passes)
        _check_int("failures", failures)
        _check_int("remaining", remaining)

    @abstractmethod
    def settled(self, passes: int, failures: int, remaining: int) -> bool:
        """True once no outcome of the ``remaining`` samples can change the verdict."""

    @abstractmethod
    def decide(self, passes: int, failures: int, remaining: int = 0) -> Decision:
        """The verdict for these counts (the certain one, when ``settled`` is True).

        On a state that is not settled, the verdict of stopping there (as if
        the remaining samples were abandoned), so an interrupted run still
        gets one.
        """

    def operating_characteristic(self, p: float) -> tuple[float, float]:
        """Exact P(pass) and expected number of samples when each passes with probability ``p``.

        Dynamic programming over the (passes, failures) states of a run of
        ``max_samples`` samples without errors, stopping as soon as
        :meth:`settled` says so, exactly as the runner does.
        """
        p = _check_unit("p", p, open_low=False, open_high=False)
        if self.max_samples is None:
            raise UsageError(
                f"{self.name}: the operating characteristic needs max_samples (an integer >= 1)"
            )
        cap = self.max_samples
        layer = [1.0]  # layer[s]: probability of reaching s passes after n samples
        p_pass = 0.0
        expected = 0.0
        for n in range(cap + 1):
            nxt = [0.0] * (n + 2)
            for s, prob in enumerate(layer):
                if prob == 0.0:
                    continue
                f = n - s
                if self.settled(s, f, cap - n):
                    if self.decide(s, f, cap - n).passed:
                        p_pass += prob
                    expected += prob * n
                else:
                    nxt[s + 1] += prob * p
                    nxt[s] += prob * (1.0 - p)
            layer = nxt
        return min(1.0, p_pass), expected


class _RatePolicy(Policy):
    """Shared logic of the policies that compare a monotone statistic with m.

    ``_meets(passes, scored)`` must rise when a pass is added and fall when a
    failure is added; then the worst future is "all remaining fail", the best
    "all remaining pass", and errors only land in between (or at "no scored
    samples", which fails).
    """

    @abstractmethod
    def _meets(self, passes: int, scored: int) -> bool:
        """Whether ``passes`` out of ``scored`` (> 0) samples pass the policy."""

    def _certain(self, passes: int, failures: int, remaining: int) -> bool | None:
        """The verdict if every future gives the same one, else None."""
        scored = passes + failures
        if remaining == 0:
            return scored > 0 and self._meets(passes, scored)
        if scored > 0 and self._meets(passes, scored + remaining):
            return True
        if not self._meets(passes + remaining, scored + remaining):
            return False
        return None

    def settled(self, passes: int, failures: int, remaining: int) -> bool:
        """Exact curtailment: the worst and best futures agree on the verdict."""
        self._check_state(passes, failures, remaining)
        return self._certain(passes, failures, remaining) is not None


class ThresholdPolicy(_RatePolicy):
    """Pass iff the observed pass rate is at least ``min_pass_rate`` (the default).

    Scored samples are passes plus failures; with none the test fails ("no
    scored samples"). Rates are compared exactly (``18/20 >= 0.9`` passes).
    The verdict is *conclusive* when the Wilson interval at ``confidence`` lies
    on one side of m: low >= m for a pass (every plausible rate meets m), high
    < m for a fail (none does); the same conventions as :class:`IntervalPolicy`.
    """

    name = "threshold"

    def __init__(
        self,
        min_pass_rate: float,
        confidence: float = 0.95,
        max_samples: int | None = None,
    ) -> None:
        super().__init__(min_pass_rate, confidence, max_samples)
        self._m = _as_fraction(min_pass_rate)

    def _meets(self, passes: int, scored: int) -> bool:
        return scored > 0 and passes * self._m.denominator >= self._m.numerator * scored

    def decide(self, passes: int, failures: int, remaining: int = 0) -> Decision:
        """Verdict by observed rate, with Wilson conclusiveness and samples needed."""
        self._check_state(passes, failures, remaining)
        scored = passes + failures
        m = self.min_pass_rate
        if scored == 0:
            return Decision(False, False, "no scored samples")
        certain = self._certain(passes, failures, remaining)
        passed = self._meets(passes, scored) if certain is None else certain
        rate = passes / scored
        if remaining and certain is True:
            worst = passes / (scored + remaining)
            reason = (
                f"{passes}/{scored} passed; even if the {remaining} remaining fail, "
                f"{passes}/{scored + remaining} = {_fmt(worst, m)} >= {_fmt(m)} required"
            )
        elif remaining and certain is False:
            best = (passes + remaining) / (scored + remaining)
            reason = (
                f"{failures}/{scored} failed; even if the {remaining} remaining pass, "
                f"{passes + remaining}/{scored + remaining} = {_fmt(best, m)} < {_fmt(m)} required"
            )
        else:
            sign = ">=" if passed else "<"
            reason = f"{passes}/{scored} = {_fmt(rate, m)} {sign} {_fmt(m)} required"
        low, high = wilson_interval(passes, scored, self.confidence)
        conclusive = low >= m if passed else high < m
        needed = None
        if not conclusive and passes * self._m.denominator != self._m.numerator * scored:
            needed = samples_for_conclusive(rate, m, self.confidence)
        return Decision(passed, conclusive, reason, needed)


class IntervalPolicy(_RatePolicy):
    """Pass iff the Wilson lower bound at ``confidence`` is at least ``min_pass_rate``.

    The cautious policy: a pass means the data show the rate is high enough.
    A pass is always conclusive; a fail is conclusive iff the Wilson upper
    bound is below m (otherwise the data just cannot tell yet).
    Curtailment relies on the Wilson lower bound rising with each added pass
    and falling with each added failure (checked in the tests).
    """

    name = "interval"

    @property
    def warning(self) -> str | None:
        """One line when even ``max_samples`` passes out of ``max_samples`` cannot
        clear the bar (the test can only fail), naming the N that could."""
        n = self.max_samples
        m = self.min_pass_rate
        if n is None or wilson_interval(n, n, self.confidence)[0] >= m:
            return None
        needed = samples_for_conclusive(1.0, m, self.confidence) if m < 1 else None
        tail = (f"N={needed} all passing could" if needed
                else "no N can (a required rate of 1 is never proven)")
        return (f"interval: even {n}/{n} passing cannot show a rate >= {_fmt(m)} at "
                f"{self.confidence:.0%} confidence; {tail}")

    def _meets(self, passes: int, scored: int) -> bool:
        return scored > 0 and wilson_interval(passes, scored, self.confidence)[0] >= (
            self.min_pass_rate
        )

    def decide(self, passes: int, failures: int, remaining: int = 0) -> Decision:
        """Verdict by Wilson lower bound; a fail is conclusive only if the upper bound < m."""
        self._check_state(passes, failures, remaining)
        scored = passes + failures
        m = self.min_pass_rate
        if scored == 0:
            return Decision(False, False, "no scored samples")
        certain = self._certain(passes, failures, remaining)
        passed = self._meets(passes, scored) if certain is None else certain
        low, high = wilson_interval(passes, scored, self.confidence)
        pct = f"{self.confidence * 100:g}%"
        if remaining and certain is True:
            worst = wilson_interval(passes, scored + remaining, self.confidence)[0]
            reason = (
                f"Wilson {pct} lower bound {_fmt(worst, m)} >= {_fmt(m)} required even if "
                f"the {remaining} remaining fail ({passes}/{scored} passed)"
            )
        elif remaining and certain is False:
            best = wilson_interval(passes + remaining, scored + remaining, self.confidence)[0]
            reason = (
                f"Wilson {pct} lower bound {_fmt(best, m)} < {_fmt(m)} required even if "
                f"the {remaining} remaining pass ({passes}/{scored} passed)"
            )
        else:
            sign = ">=" if passed else "<"
            reason = (
                f"Wilson {pct} lower bound for {passes}/{scored} is "
                f"{_fmt(low, m)} {sign} {_fmt(m)} required"
            )
        conclusive = passed or high < m
        needed = None
        if not conclusive and passes / scored != m:
            needed = samples_for_conclusive(passes / scored, m, self.confidence)
        return Decision(passed, conclusive, reason, needed)


# --------------------------------------------------------------------------
# sequential probability ratio test


def _fixed_test_errors(n: int, c: int, p0: float, p1: float) -> tuple[float, float]:
    """(P(X >= c | p0), P(X < c | p1)) for the fixed test "pass iff X >= c" on n samples."""
    return _binom_sf(c, n, p0), 1.0 - _binom_sf(c, n, p1)


def _alpha_critical_value(n: int, p0: float, alpha: float) -> int:
    """Smallest c with P(X >= c | n, p0) <= alpha (n + 1 if only "never pass" qualifies)."""
    pmf = _binom_pmf(n, p0)
    c = n + 1
    while c > 0 and math.fsum(pmf[c - 1 :]) <= alpha:
        c -= 1
    return c


@lru_cache(maxsize=128)
def fixed_sample_size(p0: float, p1: float, alpha: float, beta: float) -> tuple[int, int]:
    """Smallest fixed-sample binomial test telling ``p0`` from ``p1``: returns ``(n, c)``.

    The test passes iff at least ``c`` of ``n`` samples pass, with
    P(pass | p0) <= ``alpha`` and P(fail | p1) <= ``beta``, computed exactly.
    It is the yardstick of :class:`SequentialPolicy`, which never runs more
    than ``n`` samples. For each n the best c is the smallest one meeting
    alpha (a smaller c only lowers beta). A vectorised scan (scipy.special)
    finds candidates; each is then confirmed with exact sums.
    """
    p0 = _check_unit("p0", p0, open_low=True, open_high=True)
    p1 = _check_unit("p1", p1, open_low=True, open_high=True)
    if not p0 < p1:
        raise UsageError(f"p0 must be below p1, got p0={p0!r}, p1={p1!r}")
    alpha = _check_unit("alpha", alpha, open_low=True, open_high=True)
    beta = _check_unit("beta", beta, open_low=True, open_high=True)
    if alpha >= 0.5 or beta >= 0.5:
        raise UsageError(f"alpha and beta must be in (0, 0.5), got alpha={alpha}, beta={beta}")
    import numpy as np  # lazy, like scipy
    from scipy.special import bdtr, bdtrc

    slack = 1e-9  # candidates are confirmed exactly below, so let rounding through
    start = 1
    size = 256
    while start <= _SEARCH_LIMIT:
        ns = np.arange(start, min(start + size, _SEARCH_LIMIT + 1), dtype=np.int64)
        lo = np.ones_like(ns)  # P(X >= 1 | p0) may still be > alpha
        hi = ns + 1  # P(X >= n + 1) = 0 <= alpha
        while np.any(hi > lo):  # bisect for the smallest c with P(X >= c | p0) <= alpha
            mid = (lo + hi) // 2
            ok = bdtrc(mid - 1, ns, p0) <= alpha * (1 + slack)
            hi = np.where(ok, mid, hi)
            lo = np.where(ok, lo, mid + 1)
        fail_p1 = bdtr(hi - 1, ns, p1)
        for idx in np.flatnonzero(fail_p1 <= beta * (1 + slack)):
            n = int(ns[idx])
            c = _alpha_critical_value(n, p0, alpha)
            a_hat, b_hat = _fixed_test_errors(n, c, p0, p1)
            if a_hat <= alpha and b_hat <= beta:
                return n, c
        start += size
        size *= 2
    raise UsageError(
        f"telling p0={p0} from p1={p1} at alpha={alpha}, beta={beta} needs more than "
        f"{_SEARCH_LIMIT} samples; use a larger margin"
    )


_PB, _FB, _PT, _FT = 1, 2, 4, 8
"""Outcome bits: pass/fail at an SPRT boundary, pass/fail at truncation (or forced)."""
_PASS_BITS, _FAIL_BITS, _BOUNDARY_BITS = _PB | _PT, _FB | _FT, _PB | _FB
_EPS = 1e-9


class SequentialPolicy(Policy):
    """Truncated, curtailed Wald SPRT of p0 = m - margin against p1 = m + margin.

    After each scored sample the log-likelihood ratio
    ``LLR = passes*log(p1/p0) + failures*log((1-p1)/(1-p0))`` is compared with
    two boundaries: LLR >= A accepts p >= p1 (pass), LLR <= B accepts p <= p0
    (fail); both are *conclusive*. ``alpha`` = P(pass | p0) and ``beta`` =
    P(fail | p1) are the promised error rates.

    Design, so that it never runs more samples than the fixed test and keeps
    its promises exactly (not just by Wald's approximations):

    * Truncation: ``max_samples`` N defaults to n of :func:`fixed_sample_size`.
      Reaching N scored samples without crossing a boundary, the verdict is the
      fixed test's: pass iff passes >= c, its critical value (inconclusive).
    * Forced stop: if the samples run out before N are scored (errors used up
      the budget), the same rule scaled: pass iff passes/scored >= c/N. This
      makes every state where truncation is already decided settled at once.
    * Curtailment: :meth:`settled` is True as soon as every future (each
      remaining sample passing, failing or erring) ends in the same verdict,
      found by a backward pass over the reachable (passes, failures) states.
    * Boundaries start at Wald's A = log((1-beta)/alpha), B = log(beta/(1-alpha))
      and, only if the exact operating characteristic (dynamic programming,
      see :meth:`Policy.operating_characteristic`) then misses alpha or beta,
      are widened step by step until it does not. If widening goes on and on,
      the boundaries are dropped: the curtailed fixed test meets both.

    When ``max_samples`` is below the fixed n, no test can keep both promises;
    :attr:`warning` says so and Wald's boundaries are used as they are.

    For m=0.875, margin=0.075, alpha=beta=0.05 (p0=0.80, p1=0.95): N=50, c=45;
    Wald's A=2.944 gives an exact alpha of 0.063 (truncation and overshoot), so
    A is widened to 3.776 (B stays -2.944): exact alpha 0.0495, beta 0.0497,
    expected samples 21.3 at p=0.80 and 34.2 at p=0.95, never more than 50.
    These targets sit on the frontier of what N=50 allows, so the errors are
    close to 0.05 rather than comfortably below it.
    """

    name = "sequential"

    def __init__(
        self,
        min_pass_rate: float,
        margin: float = 0.05,
        alpha: float = 0.05,
        beta: float = 0.05,
        max_samples: int | None = None,
        confidence: float = 0.95,
    ) -> None:
        super().__init__(min_pass_rate, confidence, max_samples)
        margin = _check_real("margin", margin)
        if margin <= 0:
            raise UsageError(f"margin must be > 0, got {margin!r}")
        m = self.min_pass_rate
        p0, p1 = round(m - margin, 12), round(m + margin, 12)
        if not 0 < p0 < p1 < 1:
            raise UsageError(
                f"sequential: min_pass_rate +/- margin must stay strictly between 0 and 1, "
                f"got {m} +/- {margin} = [{p0}, {p1}]"
            )
        for label, value in (("alpha", alpha), ("beta", beta)):
            x = _check_real(label, value)
            if not 0 < x < 0.5:
                raise UsageError(f"{label} must be in (0, 0.5), got {value!r}")
        self.margin, self.alpha, self.beta = margin, float(alpha), float(beta)
        self.p0, self.p1 = p0, p1
        self.required_samples, required_c = fixed_sample_size(p0, p1, self.alpha, self.beta)
        cap = self.required_samples if max_samples is None else max_samples
        self.max_samples = cap
        if cap == self.required_samples:
            self.critical_value = required_c
        else:
            self.critical_value = self._critical_value_for(cap)
        self._llr_pass = math.log(p1 / p0)
        self._llr_fail = math.log((1.0 - p1) / (1.0 - p0))
        self.upper, self.lower = self._tune_boundaries()
        self._tables: dict[int, list[list[int]]] = {}

    def __repr__(self) -> str:
        return (
            f"SequentialPolicy(min_pass_rate={self.min_pass_rate}, margin={self.margin}, "
            f"alpha={self.alpha}, beta={self.beta}, max_samples={self.max_samples})"
        )

    fixed_sample_size = staticmethod(fixed_sample_size)

    @property
    def warning(self) -> str | None:
        """One line when ``max_samples`` is too small to keep alpha and beta, else None."""
        if self.max_samples >= self.required_samples:
            return None
        return (
            f"sequential: N={self.max_samples} cannot meet alpha={self.alpha:g}, "
            f"beta={self.beta:g} between {self.p0:.2f} and {self.p1:.2f}; "
            f"N={self.required_samples} would"
        )

    def llr(self, passes: int, failures: int) -> float:
        """Log-likelihood ratio of p1 against p0 after these counts."""
        return passes * self._llr_pass + failures * self._llr_fail

    # -- design ---------------------------------------------------------------

    def _critical_value_for(self, n: int) -> int:
        """Critical value at truncation N != the fixed n: alpha first, else most balanced."""
        c = _alpha_critical_value(n, self.p0, self.alpha)
        a_hat, b_hat = _fixed_test_errors(n, c, self.p0, self.p1)
        if b_hat <= self.beta:
            return c

        def worst(c: int) -> float:
            a_hat, b_hat = _fixed_test_errors(n, c, self.p0, self.p1)
            return max(a_hat / self.alpha, b_hat / self.beta)

        return min(range(n + 2), key=worst)

    def _stop_bits(self, s: int, f: int, upper: float, lower: float) -> int:
        """Outcome bit if (s, f) is a stopping state of the uncurtailed test, else 0."""
        llr = self.llr(s, f)
        if llr >= upper - _EPS:
            return _PB
        if llr <= lower + _EPS:
            return _FB
        if s + f >= self.max_samples:
            return _PT if s >= self.critical_value else _FT
        return 0

    def _forced_bits(self, s: int, f: int) -> int:
        """Outcome bit when samples run out at a non-stopping state (scaled fixed test)."""
        n = s + f
        if n == 0:
            return _FT
        return _PT if s * self.max_samples >= self.critical_value * n else _FT

    def _table(self, horizon: int, upper: float, lower: float) -> list[list[int]]:
        """For every state with s + f <= horizon, the set (bits) of reachable verdicts.

        A state's futures: stopping there (a boundary or N), or if not, running
        out of samples there (errors can end any run early), or going on with a
        pass or a failure while the horizon allows.
        """
        table: list[list[int]] = [[] for _ in range(horizon + 1)]
        for n in range(horizon, -1, -1):
            row = [0] * (n + 1)
            for s in range(n + 1):
                f = n - s
                bits = self._stop_bits(s, f, upper, lower)
                if not bits:
                    bits = self._forced_bits(s, f)
                    if n < horizon:
                        bits |= table[n + 1][s + 1] | table[n + 1][s]
                row[s] = bits
            table[n] = row
        return table

    def _exact_oc(self, p: float, upper: float, lower: float) -> tuple[float, float]:
        """P(pass) and expected samples at rate p for the given boundaries (no errors)."""
        cap = self.max_samples
        table = self._table(cap, upper, lower)
        layer = [1.0]
        p_pass = expected = 0.0
        for n in range(cap + 1):
            nxt = [0.0] * (n + 2)
            for s, prob in enumerate(layer):
                bits = table[n][s]
                if not bits & _FAIL_BITS or not bits & _PASS_BITS:
                    if bits & _PASS_BITS:
                        p_pass += prob
                    expected += prob * n
                else:
                    nxt[s + 1] += prob * p
                    nxt[s] += prob * (1.0 - p)
            layer = nxt
        return p_pass, expected

    def _tune_boundaries(self) -> tuple[float, float]:
        """Wald's boundaries, widened until the exact error rates meet alpha and beta."""
        upper = math.log((1.0 - self.beta) / self.alpha)
        lower = math.log(self.beta / (1.0 - self.alpha))
        if self.max_samples < self.required_samples:
            return upper, lower
        step = 0.05 * max(self._llr_pass, -self._llr_fail)
        for _ in range(400):
            a_hat = self._exact_oc(self.p0, upper, lower)[0]
            b_hat = 1.0 - self._exact_oc(self.p1, upper, lower)[0]
            if a_hat <= self.alpha and b_hat <= self.beta:
                return upper, lower
            if a_hat > self.alpha:
                upper += step
            if b_hat > self.beta:
                lower -= step
        return math.inf, -math.inf

    # -- runner protocol --------------------------------------------------------

    def _bits(self, passes: int, failures: int, remaining: int) -> int:
        n = passes + failures
        bits = self._stop_bits(passes, failures, self.upper, self.lower)
        if bits:
            return bits
        horizon = min(self.max_samples, n + remaining)
        if horizon == n:
            return self._forced_bits(passes, failures)
        if horizon not in self._tables:
            self._tables[horizon] = self._table(horizon, self.upper, self.lower)
        return self._tables[horizon][n][passes]

    def settled(self, passes: int, failures: int, remaining: int) -> bool:
        """True at a boundary, at N, or once every future gives the same verdict."""
        self._check_state(passes, failures, remaining)
        bits = self._bits(passes, failures, remaining)
        return not bits & _PASS_BITS or not bits & _FAIL_BITS

    def decide(self, passes: int, failures: int, remaining: int = 0) -> Decision:
        """The SPRT verdict; conclusive iff it comes from a boundary, not truncation.

        After curtailment (``remaining > 0``) the verdict is certain but the
        path to it is not: it is called conclusive only if every future
        reaches it at a boundary. Called on an unsettled state, it gives the
        verdict of stopping right there (the scaled fixed-test rule).
        """
        self._check_state(passes, failures, remaining)
        n = passes + failures
        if n == 0 and remaining == 0:
            return Decision(False, False, "no scored samples")
        bits = self._bits(passes, failures, remaining)
        if bits & _PASS_BITS and bits & _FAIL_BITS:  # not settled: stop here anyway
            bits = self._forced_bits(passes, failures)
            remaining = 0
        passed = bool(bits & _PASS_BITS)
        conclusive = not bits & ~_BOUNDARY_BITS
        here = self._stop_bits(passes, failures, self.upper, self.lower)
        p0, p1 = f"{self.p0:.2f}", f"{self.p1:.2f}"
        accepted = f"p >= {p1}" if passed else f"p <= {p0}"
        if here in (_PB, _FB):
            reason = f"SPRT accepted {accepted} after {n} samples ({passes}/{n} passed)"
        elif conclusive:
            reason = (
                f"SPRT will accept {accepted} whatever the {remaining} remaining samples do "
                f"({passes}/{n} passed)"
            )
        else:
            c, cap = self.critical_value, self.max_samples
            sign = ">=" if passed else "<"
            if here:
                reason = (
                    f"no SPRT boundary reached by N={cap}: {passes}/{n} passed, {sign} {c} needed"
                )
            elif remaining:
                reason = (
                    f"no SPRT boundary reachable; {passes}/{n} passed, and the truncated "
                    f"test ({c}/{cap} needed) {'passes' if passed else 'fails'} whatever "
                    f"the {remaining} remaining samples do"
                )
            elif n == 0:
                reason = "no scored samples"
            else:
                reason = (
                    f"samples ran out before an SPRT boundary: {passes}/{n} = "
                    f"{_fmt(passes / n)} {sign} {c}/{cap} = {_fmt(c / cap)}"
                )
        return Decision(passed, conclusive, reason)


# --------------------------------------------------------------------------
# factory and simulation


def make_policy(
    name: str,
    *,
    min_pass_rate: float,
    confidence: float = 0.95,
    max_samples: int | None = None,
    margin: float = 0.05,
    alpha: float = 0.05,
    beta: float = 0.05,
) -> Policy:
    """Build the verdict policy called ``name`` (one of :data:`POLICY_NAMES`).

    ``margin``, ``alpha`` and ``beta`` only matter to ``"sequential"``; for it
    ``max_samples=None`` means the equivalent fixed test's n. Policies are
    immutable, so equal arguments share one instance: a sequential policy's
    exact boundary tuning runs once per session, not once per test.
    """
    if name == "sequential":
        return _sequential(min_pass_rate, margin, alpha, beta, max_samples, confidence)
    if name == "threshold":
        return ThresholdPolicy(min_pass_rate, confidence, max_samples)
    if name == "interval":
        return IntervalPolicy(min_pass_rate, confidence, max_samples)
    raise UsageError(f"unknown verdict policy {name!r}; accepted: {', '.join(POLICY_NAMES)}")


@functools.lru_cache(maxsize=64)
def _sequential(
    min_pass_rate: float,
    margin: float,
    alpha: float,
    beta: float,
    max_samples: int | None,
    confidence: float,
) -> SequentialPolicy:
    return SequentialPolicy(
        min_pass_rate,
        margin=margin,
        alpha=alpha,
        beta=beta,
        max_samples=max_samples,
        confidence=confidence,
    )


def simulate_policy(
    policy: Policy,
    p: float,
    runs: int,
    seed: int = 0,
    error_rate: float = 0.0,
) -> tuple[float, float, int]:
    """Monte Carlo of the runner protocol: (pass rate, mean samples, max samples).

    Each run launches samples one at a time up to ``policy.max_samples``; a
    sample errs with probability ``error_rate`` (not scored, still spent),
    else passes with probability ``p``; the run stops as soon as
    :meth:`Policy.settled`. Seeded, so figures are reproducible. Independent of
    :meth:`Policy.operating_characteristic`, which it is meant to check.
    """
    if policy.max_samples is None:
        raise UsageError("simulate_policy needs a policy with max_samples set")
    rng = random.Random(seed)
    cap = policy.max_samples
    passed_runs = total = longest = 0
    for _ in range(runs):
        passes = failures = used = 0
        while not policy.settled(passes, failures, cap - used):
            used += 1
            if error_rate and rng.random() < error_rate:
                continue
            if rng.random() < p:
                passes += 1
            else:
                failures += 1
        passed_runs += policy.decide(passes, failures, cap - used).passed
        total += used
        longest = max(longest, used)
    return passed_runs / runs, total / runs, longest
