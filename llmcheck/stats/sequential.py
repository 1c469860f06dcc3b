"""The ``sequential`` verdict policy: a truncated, curtailed Wald SPRT.

:class:`SequentialPolicy` and its yardstick :func:`fixed_sample_size` (the
smallest fixed-sample test with the same error rates), with the exact
operating characteristic used to tune its boundaries. numpy and scipy are
imported lazily, only by :func:`fixed_sample_size`.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from llmcheck.errors import UsageError
from llmcheck.stats.intervals import (
    _SEARCH_LIMIT,
    _binom_pmf,
    _binom_sf,
    _check_real,
    _check_unit,
)
from llmcheck.stats.policies import Decision, Policy, _fmt, stopping_run_oc
from llmcheck.stats.settle import samples_to_conclusive

__all__ = [
    "SequentialPolicy",
    "default_runs",
    "fixed_sample_size",
    "indifference_zone",
    "passing_rate",
]


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


def indifference_zone(min_pass_rate: float, margin: float) -> tuple[float, float]:
    """``(p0, p1)``: the rates a test must tell apart, ``m - margin`` and ``m + margin``.

    A side that would reach 0 or 1 is narrowed to half the distance from m to it, so
    a required rate of 0.99 with margin 0.05 tells 0.94 from 0.995. A required rate
    of exactly 0 or 1 has no room on one side and is a usage error.
    """
    m = _check_unit("min_pass_rate", min_pass_rate, open_low=False, open_high=False)
    margin = _check_real("margin", margin)
    if margin <= 0:
        raise UsageError(f"margin must be > 0, got {margin!r}")
    if not 0 < m < 1:
        raise UsageError(
            f"a required rate of {m:g} leaves no rates on one side to tell it from; the "
            "sequential policy and the default number of runs need 0 < min_pass_rate < 1 "
            f"(for 'every sample must pass', set runs=N and verdict='threshold')")
    p0 = round(m - margin, 12) if m - margin > 0 else round(m / 2, 12)
    p1 = round(m + margin, 12) if m + margin < 1 else round((1 + m) / 2, 12)
    return p0, p1


def passing_rate(min_pass_rate: float, margin: float) -> float:
    """The rate at which a test should pass: the top of the :func:`indifference_zone`,
    or ``min_pass_rate + margin`` capped at 1 where there is no zone (0 and 1)."""
    if 0 < min_pass_rate < 1:
        return indifference_zone(min_pass_rate, margin)[1]
    return min(min_pass_rate + margin, 1.0)


def default_runs(min_pass_rate: float, margin: float, alpha: float, beta: float) -> int:
    """The number of samples a test runs when nobody sets it, under every policy: the
    smallest fixed test that tells the :func:`indifference_zone` apart with error
    rates ``alpha`` and ``beta`` (the sequential policy's truncation N). A required
    rate of 1 (no zone) gets the zero-failure test that passes a model at
    ``1 - margin`` at most ``alpha`` of the time (and 0, by symmetry, as many)."""
    if min_pass_rate in (0, 1):
        return max(1, math.ceil(math.log(alpha) / math.log1p(-margin)))
    return fixed_sample_size(*indifference_zone(min_pass_rate, margin), alpha, beta)[0]


# How a run of the SPRT can end, one bit each. A state's *outcome set* is the
# bitwise OR of the outcomes still reachable from it (0: the empty set), so
# "settled" reads "the set holds no pass or no fail".
_PASS_AT_BOUNDARY = 1  # the LLR reached the upper boundary: accept p >= p1
_FAIL_AT_BOUNDARY = 2  # the LLR reached the lower boundary: accept p <= p0
_PASS_BY_FIXED_TEST = 4  # no boundary; at N, or when samples ran out, the fixed test passes
_FAIL_BY_FIXED_TEST = 8  # ... and fails
_ANY_PASS = _PASS_AT_BOUNDARY | _PASS_BY_FIXED_TEST
_ANY_FAIL = _FAIL_AT_BOUNDARY | _FAIL_BY_FIXED_TEST
_ANY_BOUNDARY = _PASS_AT_BOUNDARY | _FAIL_AT_BOUNDARY
_EPS = 1e-9  # slack when comparing an LLR with a boundary, for float rounding


class SequentialPolicy(Policy):
    """Truncated, curtailed Wald SPRT of p0 = m - margin against p1 = m + margin.

    (Near 0 or 1 the zone is narrowed: see :func:`indifference_zone`.)

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
        p0, p1 = indifference_zone(self.min_pass_rate, margin)
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
        self._outcome_tables: dict[int, list[list[int]]] = {}  # by horizon

    def __repr__(self) -> str:
        return (
            f"SequentialPolicy(min_pass_rate={self.min_pass_rate}, margin={self.margin}, "
            f"alpha={self.alpha}, beta={self.beta}, max_samples={self.max_samples})"
        )

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

    def design(self) -> dict[str, Any]:
        """p0 and p1, the SPRT boundaries on the log-likelihood ratio (``upper``
        passes, ``lower`` fails; None when dropped), the truncation ``max_samples``
        and its fixed test's ``critical_value`` (passes needed at N)."""

        def finite(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {"max_samples": self.max_samples, "p0": self.p0, "p1": self.p1,
                "upper": finite(self.upper), "lower": finite(self.lower),
                "critical_value": self.critical_value}

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

    def _stop_outcome(self, s: int, f: int, upper: float, lower: float) -> int:
        """The outcome if (s, f) is a stopping state of the uncurtailed test, else 0."""
        llr = self.llr(s, f)
        if llr >= upper - _EPS:
            return _PASS_AT_BOUNDARY
        if llr <= lower + _EPS:
            return _FAIL_AT_BOUNDARY
        if s + f >= self.max_samples:
            return _PASS_BY_FIXED_TEST if s >= self.critical_value else _FAIL_BY_FIXED_TEST
        return 0

    def _forced_outcome(self, s: int, f: int) -> int:
        """The outcome when samples run out at a non-stopping state (scaled fixed test)."""
        n = s + f
        if n == 0:
            return _FAIL_BY_FIXED_TEST
        if s * self.max_samples >= self.critical_value * n:
            return _PASS_BY_FIXED_TEST
        return _FAIL_BY_FIXED_TEST

    def _outcome_table(self, horizon: int, upper: float, lower: float) -> list[list[int]]:
        """For every state with s + f <= horizon, its outcome set: ``table[s + f][s]``.

        A state's futures: stopping there (a boundary or N), or if not, running
        out of samples there (errors can end any run early), or going on with a
        pass or a failure while the horizon allows.
        """
        table: list[list[int]] = [[] for _ in range(horizon + 1)]
        for n in range(horizon, -1, -1):
            row = [0] * (n + 1)
            for s in range(n + 1):
                f = n - s
                outcomes = self._stop_outcome(s, f, upper, lower)
                if not outcomes:
                    outcomes = self._forced_outcome(s, f)
                    if n < horizon:
                        outcomes |= table[n + 1][s + 1] | table[n + 1][s]
                row[s] = outcomes
            table[n] = row
        return table

    def _exact_oc(self, p: float, upper: float, lower: float) -> tuple[float, float]:
        """P(pass) and expected samples at rate p for the given boundaries (no errors)."""
        cap = self.max_samples
        table = self._outcome_table(cap, upper, lower)

        def verdict_at(s: int, n: int) -> bool | None:
            outcomes = table[n][s]
            if outcomes & _ANY_FAIL and outcomes & _ANY_PASS:
                return None
            return bool(outcomes & _ANY_PASS)

        return stopping_run_oc(cap, p, verdict_at)

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

    def _reachable_outcomes(self, passes: int, failures: int, remaining: int) -> int:
        """The outcome set of this state when ``remaining`` samples (each may err) are left."""
        n = passes + failures
        stop_outcome = self._stop_outcome(passes, failures, self.upper, self.lower)
        if stop_outcome:
            return stop_outcome
        horizon = min(self.max_samples, n + remaining)
        if horizon == n:
            return self._forced_outcome(passes, failures)
        if horizon not in self._outcome_tables:
            self._outcome_tables[horizon] = self._outcome_table(horizon, self.upper, self.lower)
        return self._outcome_tables[horizon][n][passes]

    def settled(self, passes: int, failures: int, remaining: int) -> bool:
        """True at a boundary, at N, or once every future gives the same verdict."""
        self._check_state(passes, failures, remaining)
        outcomes = self._reachable_outcomes(passes, failures, remaining)
        return not outcomes & _ANY_PASS or not outcomes & _ANY_FAIL

    def decide(self, passes: int, failures: int, remaining: int = 0) -> Decision:
        """The SPRT verdict; conclusive at a boundary, or when curtailed (see below).

        A curtailed verdict (``remaining > 0``, settled before N) is the full run's
        verdict on every path: curtailment only skips samples that cannot change it.
        So the curtailed test has the full design's operating characteristic, and a
        curtailed PASS at p0 is a subset of the design's passes there (at most
        ``alpha``; a FAIL at p1 at most ``beta``). It is called conclusive where those
        error rates hold (the design keeps alpha and beta: no :attr:`warning`) and the
        full run could still reach the verdict's boundary; a verdict every future
        reaches only by the truncated test at N is no stronger than that test's, and
        stays inconclusive like a run that reached N. Called on an unsettled state,
        it gives the verdict of stopping right there (the scaled fixed-test rule).
        """
        self._check_state(passes, failures, remaining)
        if passes + failures == 0 and remaining == 0:
            return Decision(False, False, "no scored samples")
        outcomes = self._reachable_outcomes(passes, failures, remaining)
        if outcomes & _ANY_PASS and outcomes & _ANY_FAIL:  # not settled: stop here anyway
            outcomes = self._forced_outcome(passes, failures)
            remaining = 0
        passed = bool(outcomes & _ANY_PASS)
        stop_outcome = self._stop_outcome(passes, failures, self.upper, self.lower)
        boundary = _PASS_AT_BOUNDARY if passed else _FAIL_AT_BOUNDARY
        curtailed = remaining > 0 and not stop_outcome
        conclusive = bool(stop_outcome & _ANY_BOUNDARY) or (
            curtailed and self.warning is None and bool(outcomes & boundary))
        reason = self._reason(passes, failures, remaining, passed, conclusive,
                              reachable=bool(outcomes & boundary))
        needed = None if conclusive else samples_to_conclusive(self, passes, failures)
        return Decision(passed, conclusive, reason, needed)

    def _reason(self, passes: int, failures: int, remaining: int, passed: bool,
                conclusive: bool, *, reachable: bool) -> str:
        """How :meth:`decide` got its verdict: at a boundary, curtailed, or by the fixed
        test (``reachable``: the full run could still reach the verdict's boundary)."""
        n = passes + failures
        stop_outcome = self._stop_outcome(passes, failures, self.upper, self.lower)
        # What the boundary does promise: not that p >= p1, but that a model at p0 or
        # below passes (or one at p1 or above fails) at most alpha (beta) of the time.
        side = "pass" if passed else "fail"
        promise = (f"a model at {self.p0:.2f} or below passes this test at most "
                   f"{self.alpha:g} of the time" if passed else
                   f"a model at {self.p1:.2f} or above fails this test at most "
                   f"{self.beta:g} of the time")
        if stop_outcome & _ANY_BOUNDARY:
            return (f"the SPRT's {side} boundary was crossed after {n} samples "
                    f"({passes}/{n} passed): {promise}")
        if remaining and not stop_outcome:
            c, cap = self.critical_value, self.max_samples
            samples = "sample" if remaining == 1 else "samples"
            head = (f"the remaining {remaining} {samples} could not change the outcome: "
                    f"{passes}/{n} passed, and however they went the run would "
                    f"{side}")
            at_n = f"at N={cap} with {'at least' if passed else 'fewer than'} {c} passes"
            if conclusive:
                return (f"{head} (at the SPRT's {side} boundary, or {at_n}), as the full "
                        f"run would: {promise}")
            if reachable:  # the design is too small to keep alpha and beta
                return (f"{head} (at the SPRT's {side} boundary, or {at_n}); not "
                        f"conclusive: N={cap} is too small to keep alpha and beta")
            return (f"{head} {at_n}, never at an SPRT boundary: as inconclusive as the "
                    "full run")
        # not at a boundary, so a stop outcome here can only be truncation at N
        at_truncation = bool(stop_outcome)
        return self._fixed_test_reason(passes, failures, remaining, passed, at_truncation)

    def _fixed_test_reason(
        self, passes: int, failures: int, remaining: int, passed: bool, at_truncation: bool
    ) -> str:
        """The reason for a verdict of the fixed-test rule: at N, or scaled (samples ran
        out)."""
        n = passes + failures
        c, cap = self.critical_value, self.max_samples
        sign = ">=" if passed else "<"
        if at_truncation:
            return f"no SPRT boundary reached by N={cap}: {passes}/{n} passed, {sign} {c} needed"
        if n == 0:
            return "no scored samples"
        return (
            f"samples ran out before an SPRT boundary: {passes}/{n} = "
            f"{_fmt(passes / n)} {sign} {c}/{cap} = {_fmt(c / cap)}"
        )
