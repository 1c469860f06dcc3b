"""The pre-merge gate: did a change make any LLM test pass less often?

Each test of a HEAD run is compared with the same test (same node id) of a BASE
run or of an accumulated baseline (:mod:`llmcheck.gate.baseline`), on the two pass
counts alone (infrastructure errors are neither passes nor failures):

- **p**: a one-sided exact test that HEAD's pass rate is lower than BASE's, on the
  2x2 table whose *columns* are the samples, ``[[base_pass, head_pass],
  [base_fail, head_fail]]``, with scipy's ``alternative="greater"`` (the odds of
  passing are greater in the first column, BASE). Boschloo's test by default
  (:func:`scipy.stats.boschloo_exact`: its statistic is the one-sided Fisher
  p-value, its p-value the supremum of that statistic's tail over the common pass
  rate; uniformly more powerful than Fisher's), Fisher's by option
  (:func:`scipy.stats.fisher_exact`). For 18/20 against 12/20: Fisher 0.0324,
  Boschloo 0.0193. (For large samples Boschloo's p-value comes from llmcheck's own
  enumeration of the same test, see :data:`SCIPY_BOSCHLOO_MAX_OUTCOMES`, and beyond
  :data:`EXACT_POWER_MAX_TABLES` outcomes Fisher's stands in for it.)
- **corrected p**: the p-values of the tests compared, adjusted for their number:
  Holm's step-down (controls the chance of flagging any unchanged test) by
  default, Benjamini-Hochberg's step-up (controls the expected share of false
  flags among the flags) by option.
- **regressed**: the rate dropped by at least ``margin`` (an effect-size floor:
  a significant drop of half a point is not worth blocking a merge) *and* the
  corrected p is below ``alpha``.
- **min detectable drop**: the smallest drop from the base rate that this
  comparison would flag 80% of the time at these sample sizes, if it were the only
  test that changed (both corrections then ask it for p < alpha / m, m the number
  of tests compared); the margin floor included. Exact (the power of the chosen
  test by enumerating both binomials) up to :data:`EXACT_POWER_MAX_TABLES`
  outcomes, a normal approximation above (marked ``~``). It says what a pass of
  the gate is worth: 20 samples against 20 flag a fall from 0.95 to 0.80 less than a
  third of the time (Boschloo 0.30, Fisher 0.21).

New tests, removed tests and tests whose required rate, model or fingerprint (the
hash of the test's source and parameters; when both sides know it) changed are
listed, never compared: their rates are not the same quantity.

The counts are those a report's verdict counts (``passed``, ``failed``). The tests
are exact for fixed sample sizes; a run that stopped early has a data-dependent
size, for which they are close but not exact (see the README).

Pure: no pytest import. The plugin, ``llmcheck compare`` and the tests call it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llmcheck.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from llmcheck.records.schema import SessionRecord, TestRecord

TestName = Literal["boschloo", "fisher"]
TEST_NAMES: tuple[str, ...] = ("boschloo", "fisher")
Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh")
Status = Literal["regressed", "ok", "changed", "new", "removed", "no data"]
STATUS_ORDER: tuple[str, ...] = ("regressed", "ok", "no data", "changed", "new", "removed")

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


# -- the inputs ----------------------------------------------------------------------

@dataclass(frozen=True)
class Counts:
    """One test on one side of the comparison: a report's test, or a baseline's."""

    nodeid: str
    passed: int
    failed: int
    min_pass_rate: float | None = None
    fingerprint: str | None = None
    model: str | None = None
    runs: int = 1
    """Runs merged into these counts (a report: 1; a baseline: how many it accumulated)."""

    @property
    def scored(self) -> int:
        return self.passed + self.failed

    @property
    def rate(self) -> float | None:
        return self.passed / self.scored if self.scored else None

    @classmethod
    def of_test(cls, record: TestRecord) -> Counts:
        return cls(nodeid=record.nodeid, passed=record.passed, failed=record.failed,
                   min_pass_rate=record.settings.min_pass_rate,
                   fingerprint=record.fingerprint,
                   model=record.model or record.settings.model)


def counts_of_session(session: SessionRecord) -> list[Counts]:
    """The counts of every test of a report."""
    return [Counts.of_test(t) for t in session.tests]


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
        # slack so that a drop of exactly the margin counts, as it does in compare()
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


# -- the comparison --------------------------------------------------------------------

@dataclass
class Row:
    """One test in the comparison."""

    nodeid: str
    status: Status
    base: Counts | None
    head: Counts | None
    drop: float | None = None
    p: float | None = None
    p_corrected: float | None = None
    detectable: Detectable | None = None
    note: str = ""


@dataclass
class GateResult:
    rows: list[Row]
    test: str
    correction: str
    alpha: float
    margin: float
    compared: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "regressed"]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def level(self) -> float:
        """The level a lone regression must reach: alpha / m under either correction."""
        return self.alpha / max(1, self.compared)

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in STATUS_ORDER if self.count(s)]
        verdict = (f"{len(self.regressions)} regression(s)" if self.regressions
                   else "no regression")
        return f"{verdict} ({', '.join(parts) or 'no tests'})"

    def method(self) -> str:
        test = "Boschloo's" if self.test == "boschloo" else "Fisher's"
        correction = "Holm" if self.correction == "holm" else "Benjamini-Hochberg"
        return (f"p: one-sided {test} exact test that HEAD's pass rate is lower; corrected: "
                f"{correction} over the {self.compared} test(s) compared; regressed: drop >= "
                f"{self.margin:g} and corrected p < {self.alpha:g}; min detectable drop: "
                f"what a lone regression needs to be flagged {TARGET_POWER:.0%} of the time "
                f"at these sample sizes (exact power at level {self.level:.3g}; ~: normal "
                "approximation)")


def compare(base: Sequence[Counts], head: Sequence[Counts], *, test: str = "boschloo",
            correction: str = "holm", alpha: float = DEFAULT_ALPHA,
            margin: float = DEFAULT_MARGIN, detectable: bool = True) -> GateResult:
    """Compare every HEAD test with the BASE test of the same node id."""
    check_test(test)
    check_correction(correction)
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not 0.0 <= margin < 1.0:
        raise UsageError(f"margin must lie in [0, 1), got {margin!r}")
    base_by_id = {c.nodeid: c for c in base}
    head_ids = {c.nodeid for c in head}
    rows: list[Row] = []
    for h in head:
        b = base_by_id.get(h.nodeid)
        if b is None:
            rows.append(Row(h.nodeid, "new", None, h, note="not in BASE"))
            continue
        changed = _changes(b, h)
        if changed:
            rows.append(Row(h.nodeid, "changed", b, h, note="; ".join(changed)))
        elif b.scored == 0 or h.scored == 0:
            side = "BASE" if b.scored == 0 else "HEAD"
            rows.append(Row(h.nodeid, "no data", b, h, note=f"no scored sample in {side}"))
        else:
            drop = b.passed / b.scored - h.passed / h.scored
            note = "" if test != "boschloo" or boschloo_applies(b.scored, h.scored) else \
                "Fisher's p (samples too large for Boschloo's)"
            rows.append(Row(h.nodeid, "ok", b, h, drop=drop, note=note,
                            p=p_value(b.passed, b.failed, h.passed, h.failed, test)))
    for b in base:
        if b.nodeid not in head_ids:
            rows.append(Row(b.nodeid, "removed", b, None, note="not in HEAD"))
    compared = [r for r in rows if r.p is not None]
    adjusted = adjust([r.p for r in compared if r.p is not None], correction)
    for r, p in zip(compared, adjusted, strict=True):
        r.p_corrected = p
        assert r.drop is not None
        big, significant = r.drop >= margin - 1e-12, p < alpha
        if big and significant:
            r.status = "regressed"
        elif big:
            r.note = _joined("drop not significant", r.note)
        elif significant:
            r.note = _joined("significant, below the margin", r.note)
    result = GateResult(rows=rows, test=test, correction=correction, alpha=alpha,
                        margin=margin, compared=len(compared))
    if detectable:
        for r in compared:
            assert r.base is not None and r.head is not None and r.base.rate is not None
            r.detectable = min_detectable_drop(r.base.scored, r.head.scored, r.base.rate,
                                               test=test, level=result.level, margin=margin)
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    rows.sort(key=lambda r: order[r.status])  # stable: HEAD's order within a status
    return result


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _changes(b: Counts, h: Counts) -> list[str]:
    """What makes two records of one node id different tests."""
    out = []
    if (b.min_pass_rate is not None and h.min_pass_rate is not None
            and abs(b.min_pass_rate - h.min_pass_rate) > 1e-12):
        out.append(f"required rate {b.min_pass_rate:g} -> {h.min_pass_rate:g}")
    if b.model is not None and h.model is not None and b.model != h.model:
        out.append(f"model {b.model} -> {h.model}")
    if b.fingerprint is not None and h.fingerprint is not None and \
            b.fingerprint != h.fingerprint:
        out.append("test source or parameters changed (fingerprint)")
    return out


# -- rendering -------------------------------------------------------------------------

HEADERS = ("test", "base rate (n)", "head rate (n)", "drop", "p", "corrected p",
           "min detectable drop", "status")


def _rate_cell(c: Counts | None) -> str:
    if c is None:
        return ""
    rate = "-" if c.rate is None else f"{c.rate:.2f}"
    runs = f", {c.runs} runs" if c.runs > 1 else ""
    return f"{rate} ({c.scored}{runs})"


def _p_cell(p: float | None) -> str:
    if p is None:
        return ""
    return f"{p:.2g}" if p < 0.001 else f"{p:.4f}"


def _status_cell(r: Row, markdown: bool) -> str:
    status = f"**{r.status}**" if markdown and r.status == "regressed" else r.status
    return f"{status}: {r.note}" if r.note else status


def table_rows(result: GateResult, markdown: bool = False) -> list[list[str]]:
    out = []
    for r in result.rows:
        nodeid = f"`{r.nodeid}`" if markdown else r.nodeid
        if markdown:
            nodeid = nodeid.replace("|", "\\|")
        out.append([
            nodeid, _rate_cell(r.base), _rate_cell(r.head),
            "" if r.drop is None else f"{r.drop:+.2f}", _p_cell(r.p), _p_cell(r.p_corrected),
            "" if r.detectable is None else str(r.detectable), _status_cell(r, markdown),
        ])
    return out


def render_lines(result: GateResult, fmt: str = "text") -> list[tuple[str, str | None]]:
    """The comparison as lines, each with the status of the row it shows (None for
    headers and notes), so a terminal can colour regressions."""
    from tabulate import tabulate

    if fmt not in ("text", "md"):
        raise UsageError(f"unknown format {fmt!r}: expected text or md")
    markdown = fmt == "md"
    lines: list[tuple[str, str | None]] = []
    if markdown:
        icon = ":x:" if result.regressions else ":white_check_mark:"
        lines.append((f"### llmcheck gate: {icon} {result.summary()}", None))
        lines.append(("", None))
    if result.rows:
        table = tabulate(table_rows(result, markdown), headers=list(HEADERS),
                         tablefmt="github" if markdown else "simple",
                         disable_numparse=True)
        table_lines = table.splitlines()
        header = len(table_lines) - len(result.rows)
        for i, line in enumerate(table_lines):
            lines.append((line, result.rows[i - header].status if i >= header else None))
    if not markdown:
        lines.append((result.summary(), None))
    lines.append(("", None) if markdown else (result.method(), None))
    if markdown:
        lines.append((f"<sub>{result.method()}</sub>", None))
    for note in result.notes:
        lines.append((note, None))
    return lines


def render(result: GateResult, fmt: str = "text") -> str:
    return "\n".join(line for line, _ in render_lines(result, fmt))
