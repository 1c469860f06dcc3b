"""One-sided exact comparison of two pass proportions, and what it can detect.

The statistics of the pre-merge gate (:mod:`llmcheck.gate.compare`), as pure functions
of plain counts: a BASE sample of ``n_base`` runs and a HEAD sample of ``n_head``.

- :func:`p_value`: a one-sided exact test that HEAD's pass rate is lower than BASE's,
  on the 2x2 table whose *columns* are the samples, ``[[base_pass, head_pass],
  [base_fail, head_fail]]``, with scipy's ``alternative="greater"`` (the odds of
  passing are greater in the first column, BASE). Boschloo's test by default
  (:func:`scipy.stats.boschloo_exact`: its statistic is the one-sided Fisher
  p-value, its p-value the supremum of that statistic's tail over the common pass
  rate; uniformly more powerful than Fisher's), Fisher's by option
  (:func:`scipy.stats.fisher_exact`). For 18/20 against 12/20: Fisher 0.0324,
  Boschloo 0.0193. (For large samples Boschloo's p-value comes from this module's own
  enumeration of the same test, see :data:`SCIPY_BOSCHLOO_MAX_OUTCOMES`, and beyond
  :data:`EXACT_POWER_MAX_TABLES` outcomes Fisher's stands in for it.)
- :func:`holm`, :func:`benjamini_hochberg`, :func:`adjust`: p-values adjusted for the
  number of tests compared: Holm's step-down (controls the chance of flagging any
  unchanged test) by default, Benjamini-Hochberg's step-up (controls the expected
  share of false flags among the flags) by option.
- :func:`power` and :func:`min_detectable_drop`: the chance that a drop is flagged
  (p below the level *and* an observed drop of at least ``margin``, the effect-size
  floor), and the smallest drop flagged :data:`TARGET_POWER` of the time. Exact (by
  enumerating both binomials) up to :data:`EXACT_POWER_MAX_TABLES` outcomes, a normal
  approximation above. 20 samples against 20 flag a fall from 0.95 to 0.80 less than
  a third of the time (Boschloo 0.30, Fisher 0.21).

No records and no pytest: counts in, numbers out. scipy and numpy are imported inside
the functions that need them, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from llmcheck.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

TestName = Literal["boschloo", "fisher"]
TEST_NAMES: tuple[str, ...] = ("boschloo", "fisher")
Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh")

DEFAULT_ALPHA = 0.05
DEFAULT_MARGIN = 0.05
TARGET_POWER = 0.8
EXACT_POWER_MAX_TABLES = 1_000_000
"""Above this many outcomes ``(n_base + 1) * (n_head + 1)`` (e.g. 9,900 against 100
samples) the minimum detectable drop comes from the normal approximation and Fisher's
p-value stands in for Boschloo's: the enumeration's tables (8 bytes an outcome, a few
of them) and its time (about two seconds at this size) would grow without bound."""
SCIPY_BOSCHLOO_MAX_OUTCOMES = 10_000
"""Up to this many outcomes ``(n_base + 1) * (n_head + 1)`` (93 against 93 samples)
Boschloo's p-value is ``scipy.stats.boschloo_exact``'s. Above, scipy takes a tenth of a
second to seconds per test (0.15 s at 465 against 93 samples, 0.5 s at 930, 1.5 s at
1,860: it enumerates every table on each call, and its ``n`` sampling points do not
change that), so a 30-test comparison with a 5-run baseline took 4.5 s; the p-value
then comes from the enumeration the power figures need anyway, one per pair of sample
sizes (the same test: equal to scipy's within 1e-6 in llmcheck's tests), and the
same comparison takes 0.2 s (``python benchmarks/gate_power.py``)."""
_GRID = 512  # nuisance pass rates at which Boschloo's supremum is sought, then refined
_TIES = 1 + 1e-13  # scipy's tolerance for Fisher statistics equal to the observed one


# -- p-values --------------------------------------------------------------------------

def _check_counts(*counts: int) -> None:
    for c in counts:
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            raise UsageError(f"counts must be integers >= 0, got {c!r}")


def check_test(test: str) -> TestName:
    if test not in TEST_NAMES:
        raise UsageError(f"unknown test {test!r}: expected one of {', '.join(TEST_NAMES)}")
    return test  # type: ignore[return-value]


def check_correction(correction: str) -> Correction:
    if correction not in CORRECTIONS:
        raise UsageError(f"unknown correction {correction!r}: expected one of "
                         f"{', '.join(CORRECTIONS)}")
    return correction  # type: ignore[return-value]


def boschloo_applies(n_base: int, n_head: int) -> bool:
    """Whether Boschloo's test is computed at these sample sizes: up to
    :data:`EXACT_POWER_MAX_TABLES` outcomes. Above, Fisher's p-value stands in for it:
    exact and valid (never below Boschloo's), and at such sizes barely larger."""
    return (n_base + 1) * (n_head + 1) <= EXACT_POWER_MAX_TABLES


def p_value(base_pass: int, base_fail: int, head_pass: int, head_fail: int,
            test: str = "boschloo") -> float:
    """One-sided exact p-value that HEAD's pass rate is lower than BASE's.

    The table has one column per sample, BASE first: ``[[base_pass, head_pass],
    [base_fail, head_fail]]``, and ``alternative="greater"`` asks whether the first
    column passes more often. A side with no scored sample gives 1.0. Boschloo's test
    beyond :func:`boschloo_applies` gives Fisher's p-value."""
    _check_counts(base_pass, base_fail, head_pass, head_fail)
    check_test(test)
    if base_pass + base_fail == 0 or head_pass + head_fail == 0:
        return 1.0
    return _p_value(base_pass, base_fail, head_pass, head_fail, test)


@functools.lru_cache(maxsize=4096)
def _p_value(base_pass: int, base_fail: int, head_pass: int, head_fail: int,
             test: str) -> float:
    """Cached: the same counts recur (a test that passed every sample on both sides)."""
    import warnings

    from scipy import stats

    n_b, n_h = base_pass + base_fail, head_pass + head_fail
    if test == "boschloo" and not boschloo_applies(n_b, n_h):
        test = "fisher"
    if test == "boschloo" and (n_b + 1) * (n_h + 1) > SCIPY_BOSCHLOO_MAX_OUTCOMES:
        return _outcomes(n_b, n_h).boschloo_p(base_pass, head_pass)
    table = [[base_pass, head_pass], [base_fail, head_fail]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 inside scipy on edge tables
        if test == "fisher":
            p = float(stats.fisher_exact(table, alternative="greater").pvalue)
        else:
            p = float(stats.boschloo_exact(table, alternative="greater").pvalue)
    if math.isnan(p):  # pragma: no cover - scipy returns 1.0 on the degenerate tables
        return 1.0
    return min(1.0, max(0.0, p))


# -- corrections -----------------------------------------------------------------------

def _checked(pvalues: Iterable[float]) -> list[float]:
    ps = [float(p) for p in pvalues]
    for p in ps:
        if not 0.0 <= p <= 1.0:
            raise UsageError(f"p-values must lie in [0, 1], got {p!r}")
    return ps


def holm(pvalues: Iterable[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order: the i-th smallest of
    m becomes max over j <= i of min(1, (m - j + 1) p_(j)). Flagging those below
    alpha flags any true null with probability at most alpha, under any dependence."""
    ps = _checked(pvalues)
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def benjamini_hochberg(pvalues: Iterable[float]) -> list[float]:
    """Benjamini-Hochberg's step-up adjusted p-values, in the input's order: the i-th
    smallest of m becomes min over j >= i of min(1, m p_(j) / j). Flagging those below
    alpha keeps the expected share of false flags among the flags at most alpha
    (independent or positively dependent tests)."""
    ps = _checked(pvalues)
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    out = [0.0] * m
    running = 1.0
    for rank in range(m - 1, -1, -1):
        i = order[rank]
        running = min(running, min(1.0, m * ps[i] / (rank + 1)))
        out[i] = running
    return out


def adjust(pvalues: Iterable[float], correction: str = "holm") -> list[float]:
    check_correction(correction)
    return holm(pvalues) if correction == "holm" else benjamini_hochberg(pvalues)


# -- power -----------------------------------------------------------------------------

class _Outcomes:
    """Every outcome ``(x_b, x_h)`` of two binomial samples of sizes ``n_b`` and ``n_h``
    with the one-sided Fisher p-value of each (``fisher[x_b, x_h]``), the statistic
    of both tests. It rises with ``x_h`` and falls with ``x_b``, so every rejection
    region below is, per ``x_b``, the head counts up to a limit ``c[x_b]``."""

    def __init__(self, n_b: int, n_h: int) -> None:
        import numpy as np
        from scipy.special import gammaln

        self.n_b, self.n_h = n_b, n_h
        n = n_b + n_h
        lf = gammaln(np.arange(n + 1) + 1.0)
        k = np.arange(n_b + 1)[:, None]        # base passes
        j = np.arange(n_h + 1)[None, :]        # head passes
        s = k + j                              # total passes
        # P(X_b = k | S = k + j): the hypergeometric law of the base passes given the total
        pmf = np.exp((lf[n_b] - lf[k] - lf[n_b - k]) + (lf[n_h] - lf[j] - lf[n_h - j])
                     - (lf[n] - lf[s] - lf[n - s]))
        # P(X_b >= x_b | S = x_b + x_h), scipy's fisher_exact "greater": the sum along
        # the anti-diagonal from (x_b, x_h) down to more base passes, fewer head passes
        upper = pmf
        for row in range(n_b - 1, -1, -1):
            upper[row, 1:] += upper[row + 1, :-1]
        self.fisher = np.minimum(upper, 1.0)
        self._grid: Any = None

    def drop_limit(self, margin: float) -> np.ndarray:
        """Per ``x_b``, the largest ``x_h`` whose observed drop is at least ``margin``."""
        import numpy as np

        xb = np.arange(self.n_b + 1)
        # x_b/n_b - x_h/n_h >= margin  <=>  x_h <= n_h (x_b/n_b - margin); a hair of
        # slack so that a drop of exactly the margin counts, as it does in
        # llmcheck.gate.compare.compare()
        limit = np.floor(self.n_h * (xb / self.n_b - margin) + 1e-9).astype(int)
        return np.clip(limit, -1, self.n_h)

    def limits(self, region: np.ndarray) -> np.ndarray:
        """``c[x_b]`` of a boolean region that is a lower set in ``x_h`` per row."""
        return region.sum(axis=1) - 1

    def sup_mass(self, c: np.ndarray) -> float:
        """Boschloo: the largest chance, over the common pass rate, of an outcome in
        the region ``x_h <= c[x_b]`` (on a grid, then refined around its best point)."""
        import numpy as np
        from scipy import optimize, stats

        if self._grid is None:
            pi = np.linspace(0.0, 1.0, _GRID + 1)[1:-1]
            self._grid = (pi, stats.binom.pmf(np.arange(self.n_b + 1)[:, None], self.n_b, pi),
                          stats.binom.cdf(np.arange(self.n_h + 1)[:, None], self.n_h, pi))
        pi, pmf_b, cdf_h = self._grid
        inside = c >= 0
        if not inside.any():
            return 0.0
        rows = np.nonzero(inside)[0]
        mass = (pmf_b[rows] * cdf_h[c[rows]]).sum(axis=0)
        best = int(np.argmax(mass))

        def minus_mass(p: float) -> float:
            return -float((stats.binom.pmf(rows, self.n_b, p)
                           * stats.binom.cdf(c[rows], self.n_h, p)).sum())

        lo, hi = pi[max(best - 1, 0)], pi[min(best + 1, len(pi) - 1)]
        if best == 0:
            lo = 0.0
        if best == len(pi) - 1:
            hi = 1.0
        found = optimize.minimize_scalar(minus_mass, bounds=(lo, hi), method="bounded",
                                         options={"xatol": 1e-10})
        return max(float(mass[best]), -float(found.fun))

    def boschloo_p(self, x_b: int, x_h: int) -> float:
        """Boschloo's p-value of one outcome (``scipy.stats.boschloo_exact``'s)."""
        c = self.limits(self.fisher <= self.fisher[x_b, x_h] * _TIES)
        return min(1.0, self.sup_mass(c))

    def region(self, test: str, level: float, margin: float) -> np.ndarray:
        """``c[x_b]``: the outcomes the gate flags, p < level and drop >= margin."""
        import numpy as np

        if test == "fisher":
            c = self.limits(self.fisher < level)
        else:
            # {Boschloo p < level} = {fisher <= t*}, t* the largest Fisher value whose
            # tail's supremum stays below level (the supremum grows with t)
            values = np.unique(self.fisher)
            lo, hi = -1, len(values) - 1  # values[lo] rejects (-1: none), values[hi+1] not
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.sup_mass(self.limits(self.fisher <= values[mid] * _TIES)) < level:
                    lo = mid
                else:
                    hi = mid - 1
            if lo < 0:
                c = np.full(self.n_b + 1, -1)
            else:
                c = self.limits(self.fisher <= values[lo] * _TIES)
        return np.minimum(c, self.drop_limit(margin))


@functools.lru_cache(maxsize=32)
def _outcomes(n_b: int, n_h: int) -> _Outcomes:
    return _Outcomes(n_b, n_h)


@functools.lru_cache(maxsize=256)
def _region(n_b: int, n_h: int, test: str, level: float, margin: float) -> Any:
    return _outcomes(n_b, n_h).region(test, level, margin)


def exact_power_applies(n_base: int, n_head: int) -> bool:
    return (n_base + 1) * (n_head + 1) <= EXACT_POWER_MAX_TABLES


def power(n_base: int, n_head: int, base_rate: float, head_rate: float, *,
          test: str = "boschloo", level: float = DEFAULT_ALPHA,
          margin: float = DEFAULT_MARGIN, exact: bool | None = None) -> float:
    """The chance that the gate flags a test whose true rate fell from ``base_rate``
    to ``head_rate``, with ``n_base`` and ``n_head`` scored samples: p < ``level`` (a
    lone regression: alpha / m after either correction) and observed drop >=
    ``margin``. Exact by enumeration of both binomials unless ``exact`` is False (or,
    when None, above :data:`EXACT_POWER_MAX_TABLES` outcomes)."""
    check_test(test)
    if n_base < 1 or n_head < 1:
        return 0.0
    if exact is None:
        exact = exact_power_applies(n_base, n_head)
    if not exact:
        return _normal_power(n_base, n_head, base_rate, head_rate, level, margin)
    import numpy as np
    from scipy import stats

    c = _region(n_base, n_head, test, float(level), float(margin))
    weights = stats.binom.pmf(np.arange(n_base + 1), n_base, base_rate)
    tails = np.where(c >= 0, stats.binom.cdf(c, n_head, head_rate), 0.0)
    return float(min(1.0, (weights * tails).sum()))


def _normal_power(n_b: int, n_h: int, p_b: float, p_h: float, level: float,
                  margin: float) -> float:
    """The normal approximation: the observed drop D is about N(d, s1^2), s1^2 =
    p_b(1-p_b)/n_b + p_h(1-p_h)/n_h, and the test flags when D >= max(margin,
    z_(1-level) s0), s0 the pooled standard error under no change."""
    from scipy.stats import norm

    d = p_b - p_h
    pooled = (n_b * p_b + n_h * p_h) / (n_b + n_h)
    s0 = math.sqrt(pooled * (1 - pooled) * (1 / n_b + 1 / n_h))
    s1 = math.sqrt(p_b * (1 - p_b) / n_b + p_h * (1 - p_h) / n_h)
    threshold = max(margin, float(norm.isf(level)) * s0)
    if s1 == 0.0:
        return 1.0 if d >= threshold and d > 0 else 0.0
    return float(norm.cdf((d - threshold) / s1))


@dataclass(frozen=True)
class Detectable:
    """The smallest drop flagged with :data:`TARGET_POWER`; ``drop`` None: none is, not
    even a fall to 0. ``exact``: by enumeration, else the normal approximation."""

    drop: float | None
    exact: bool

    def __str__(self) -> str:
        mark = "" if self.exact else "~"
        return "none" if self.drop is None else f"{mark}{self.drop:.2f}"


def min_detectable_drop(n_base: int, n_head: int, base_rate: float, *,
                        test: str = "boschloo", level: float = DEFAULT_ALPHA,
                        margin: float = DEFAULT_MARGIN,
                        target: float = TARGET_POWER) -> Detectable:
    """The smallest fall from ``base_rate`` that :func:`power` flags with probability
    ``target`` (power rises with the drop, so a bisection finds it to 1e-4)."""
    exact = exact_power_applies(n_base, n_head)
    if n_base < 1 or n_head < 1 or base_rate <= 0:
        return Detectable(None, exact)

    def flagged(drop: float) -> float:
        return power(n_base, n_head, base_rate, max(0.0, base_rate - drop), test=test,
                     level=level, margin=margin, exact=exact)

    if flagged(base_rate) < target:
        return Detectable(None, exact)
    lo, hi = 0.0, base_rate
    while hi - lo > 1e-4:
        mid = (lo + hi) / 2
        if flagged(mid) >= target:
            hi = mid
        else:
            lo = mid
    return Detectable(hi, exact)


__all__ = [
    "CORRECTIONS",
    "DEFAULT_ALPHA",
    "DEFAULT_MARGIN",
    "EXACT_POWER_MAX_TABLES",
    "SCIPY_BOSCHLOO_MAX_OUTCOMES",
    "TARGET_POWER",
    "TEST_NAMES",
    "Correction",
    "Detectable",
    "TestName",
    "adjust",
    "benjamini_hochberg",
    "boschloo_applies",
    "check_correction",
    "check_test",
    "exact_power_applies",
    "holm",
    "min_detectable_drop",
    "p_value",
    "power",
]
