"""pass^k and pass@k with confidence intervals, for one test and pooled over cases.

pass^k (tau-bench: all of k independent runs pass) and pass@k (at least one does) are
the reliability views agent benchmarks report beside the pass rate. For one test whose
samples pass independently with probability p they are ``p**k`` and ``1 - (1 - p)**k``,
both increasing in p, so the test's own interval for p maps to an interval for each with
exactly the same coverage (:func:`pass_hat_k_bounds`, :func:`pass_at_k_bounds`): the
exact stopping-rule interval when the test may stop early, else its fixed-n interval.

Over the cases of a parametrized test (case i passes at its own rate p_i) tau-bench's
pass^k is the mean of ``p_i**k`` over the cases, pass@k likewise. The estimate is the
mean of the cases' unbiased estimators; the interval is the mean of the cases' mapped
bounds at the simultaneous level :func:`simultaneous_confidence` (Šidák): the cases are
independent, so all their intervals hold at once with probability at least
``confidence``, and then the mean lies between the means of their bounds, however much
the cases differ. The price of the guarantee is width: in benchmarks/episode_coverage.py
it covers in nearly every run. (A percentile bootstrap over a handful of cases has no
guarantee at all: it measures how the mean would move with other cases drawn, not how
sure these cases' rates are.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from llmcheck.errors import UsageError
from llmcheck.stats.intervals import pass_at_k, pass_hat_k

__all__ = [
    "RELIABILITY_KS",
    "pass_at_k_bounds",
    "pass_hat_k_bounds",
    "pooled_k_bounds",
    "pooled_k_estimate",
    "simultaneous_confidence",
]

RELIABILITY_KS = (2, 3, 5, 10)
"""The k of the pass^k and pass@k a report gives (those with k at most the scored
samples)."""

Kind = Literal["pass_hat_k", "pass_at_k"]
_KINDS = ("pass_hat_k", "pass_at_k")


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"k must be a positive integer (runs that all pass), got {k!r}")
    return k


def _check_bounds(low: object, high: object) -> tuple[float, float]:
    ok = all(isinstance(x, (int, float)) and not isinstance(x, bool) and 0.0 <= x <= 1.0
             for x in (low, high))
    if not ok or low > high:  # type: ignore[operator]
        raise UsageError(f"an interval for a pass rate must be 0 <= low <= high <= 1, got "
                         f"low={low!r}, high={high!r}")
    return float(low), float(high)  # type: ignore[arg-type]


def _check_kind(kind: object) -> Kind:
    if kind not in _KINDS:
        raise UsageError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    return kind  # type: ignore[return-value]


def pass_hat_k_bounds(low: float, high: float, k: int) -> tuple[float, float]:
    """The interval for pass^k = p**k given an interval [low, high] for the pass rate p:
    ``(low**k, high**k)``, with the same coverage (p**k increases with p)."""
    low, high = _check_bounds(low, high)
    k = _check_k(k)
    return low**k, high**k


def pass_at_k_bounds(low: float, high: float, k: int) -> tuple[float, float]:
    """The interval for pass@k = 1 - (1 - p)**k given an interval [low, high] for p, with
    the same coverage (pass@k increases with p)."""
    low, high = _check_bounds(low, high)
    k = _check_k(k)
    return 1.0 - (1.0 - low) ** k, 1.0 - (1.0 - high) ** k


def simultaneous_confidence(confidence: float, cases: int) -> float:
    """The level at which each of ``cases`` independent intervals must be taken for all
    to hold at once with probability ``confidence`` (Šidák: ``confidence ** (1/cases)``)."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or \
            not 0.0 < confidence < 1.0:
        raise UsageError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    if isinstance(cases, bool) or not isinstance(cases, int) or cases < 1:
        raise UsageError(f"cases must be a positive integer, got {cases!r}")
    return float(confidence) ** (1.0 / cases)


def pooled_k_estimate(passes: Sequence[int], scored: Sequence[int], k: int,
                      kind: Kind = "pass_hat_k") -> float | None:
    """The mean over cases of each case's unbiased pass^k (or pass@k) estimate, from its
    ``passes`` out of ``scored`` samples: unbiased for the mean of ``p_i**k``. None when a
    case scored fewer than ``k`` samples (its estimate does not exist, and leaving it out
    would bias the mean toward the cases that ran)."""
    kind, k = _check_kind(kind), _check_k(k)
    if len(passes) != len(scored) or not passes:
        raise UsageError(f"passes and scored must be equally long and not empty, got "
                         f"{len(passes)} and {len(scored)} cases")
    if any(n < k for n in scored):
        return None
    estimator = pass_hat_k if kind == "pass_hat_k" else pass_at_k
    return math.fsum(estimator(n, c, k) for c, n in zip(passes, scored, strict=True)) / len(
        scored)


def pooled_k_bounds(bounds: Sequence[tuple[float, float]], k: int,
                    kind: Kind = "pass_hat_k") -> tuple[float, float]:
    """The interval for the mean over cases of pass^k (or pass@k), from each case's
    interval for its rate taken at :func:`simultaneous_confidence`: the mean of the
    cases' mapped bounds. A case with nothing scored contributes ``(0, 1)``."""
    kind, k = _check_kind(kind), _check_k(k)
    if not bounds:
        raise UsageError("pooled_k_bounds needs the interval of at least one case, got none")
    mapping = pass_hat_k_bounds if kind == "pass_hat_k" else pass_at_k_bounds
    mapped = [mapping(low, high, k) for low, high in bounds]
    return (math.fsum(lo for lo, _ in mapped) / len(mapped),
            math.fsum(hi for _, hi in mapped) / len(mapped))
