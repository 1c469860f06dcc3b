"""Inference after a run that may stop early: an exact interval and a bias-adjusted rate.

A run that stops as soon as its verdict is settled (curtailment, the SPRT's
boundaries) does not observe a fixed number of samples, and the raw rate
``passes / n`` at the stop is biased: runs stop early on streaks, so a model at
0.80 tested by the threshold policy at N=20 shows 0.745 on average, and a
Wilson interval computed as if n had been fixed covers the true rate only
89-93% of the time instead of 95%.

Both fixes use the stopping rule itself: the *stopping region* of a policy with
a cap of N samples is the set of states (n samples, s passes) at which the
policy stops, with the number of sample paths that reach each state without
stopping before (exact integers). Under a true rate p, the run ends in state
(n, s) with probability ``paths * p**s * (1-p)**(n-s)``.

* :func:`stopping_interval`: the exact confidence interval under the
  sample-mean ordering of the stopping region (Emerson & Fleming 1990;
  Jennison & Turnbull, *Group Sequential Methods*, 2000, section 8.4): the
  lower bound is the p at which P_p(rate at stop >= observed rate) = (1-conf)/2,
  the upper bound the p at which P_p(rate at stop <= observed rate) = (1-conf)/2.
  For a run that cannot stop early it is exactly the Clopper-Pearson interval.
* :func:`bias_adjusted_rate`: Whitehead's (1986) bias-adjusted estimate, the p
  whose expected rate at the stop equals the observed rate.

Errored samples are not part of the region: a run with e errors is compared with
the region of a run of N - e samples (errors independent of the outcome). Where
its stop is a point of that region the interval is used; where it is not (an
error moved the stop), :meth:`StoppingRegion.contains` says so and the caller
falls back to the fixed-n interval.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmcheck.errors import UsageError
from llmcheck.stats.intervals import _check_confidence, _check_counts

if TYPE_CHECKING:
    from llmcheck.stats.policies import Policy

__all__ = [
    "MAX_STOPPING_SAMPLES",
    "StoppingRegion",
    "bias_adjusted_rate",
    "stopping_interval",
    "stopping_region",
]

MAX_STOPPING_SAMPLES = 5_000
"""Largest cap whose stopping region is computed (about N^2/2 policy calls at most);
beyond it the runner reports the fixed-n interval and says so."""
_BISECTIONS = 100


@dataclass(frozen=True, eq=False)  # one object per design (cached): hashed by identity
class StoppingRegion:
    """The states where a run of at most ``cap`` samples stops: ``(n, s, log_paths)``."""

    cap: int
    points: tuple[tuple[int, int, float], ...]

    def contains(self, n: int, s: int) -> bool:
        """Whether a run can stop with ``s`` passes out of ``n``."""
        return (n, s) in self._stops

    @functools.cached_property
    def _stops(self) -> frozenset[tuple[int, int]]:
        return frozenset((n, s) for n, s, _ in self.points)

    def probabilities(self, p: float) -> list[float]:
        """P(the run ends at each point) under rate ``p`` (they sum to 1)."""
        if p <= 0.0:
            return [1.0 if s == 0 else 0.0 for _n, s, _ in self.points]
        if p >= 1.0:
            return [1.0 if s == n else 0.0 for n, s, _ in self.points]
        lp, lq = math.log(p), math.log1p(-p)
        return [math.exp(lc + s * lp + (n - s) * lq) for n, s, lc in self.points]

    def tail(self, p: float, keep: Callable[[int, int], bool]) -> float:
        """P_p(the run ends at a point (n, s) with ``keep(n, s)``)."""
        probs = self.probabilities(p)
        return math.fsum(q for q, (n, s, _) in zip(probs, self.points, strict=True)
                         if keep(n, s))

    def expected_rate(self, p: float) -> float:
        """E_p[s / n] at the stop (a run stopping at n = 0 counts as rate 0)."""
        probs = self.probabilities(p)
        return math.fsum(q * s / n for q, (n, s, _) in zip(probs, self.points, strict=True)
                         if n)


_regions: dict[tuple[str, str, int], StoppingRegion] = {}
_lock = threading.Lock()


def stopping_region(policy: Policy, cap: int) -> StoppingRegion:
    """The stopping region of ``policy`` run for at most ``cap`` samples without errors,
    asking its own :meth:`~Policy.settled` exactly as the runner does. Cached per
    policy design and cap."""
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_STOPPING_SAMPLES:
        raise UsageError(f"cap must be an integer in 1..{MAX_STOPPING_SAMPLES}, got {cap!r}")
    key = (type(policy).__name__, repr(policy), cap)
    with _lock:
        found = _regions.get(key)
    if found is not None:
        return found
    points: list[tuple[int, int, float]] = []
    layer: dict[int, int] = {0: 1}  # passes -> number of paths still running
    for n in range(cap + 1):
        nxt: dict[int, int] = {}
        for s, paths in layer.items():
            if n == cap or policy.settled(s, n - s, cap - n):
                points.append((n, s, math.log(paths)))
                continue
            nxt[s + 1] = nxt.get(s + 1, 0) + paths
            nxt[s] = nxt.get(s, 0) + paths
        layer = nxt
        if not layer:
            break
    region = StoppingRegion(cap, tuple(points))
    with _lock:
        _regions[key] = region
    return region


def _root(f: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the increasing ``f`` crosses ``target`` (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2


@functools.lru_cache(maxsize=4096)
def stopping_interval(region: StoppingRegion, passes: int, n: int,
                      confidence: float = 0.95) -> tuple[float, float]:
    """Exact interval for the rate after a run that stopped with ``passes`` out of ``n``,
    under the sample-mean ordering of ``region`` (ties count on both sides, as
    Clopper-Pearson's do, so the interval is conservative)."""
    passes, n = _check_counts(passes, n)
    confidence = _check_confidence(confidence)
    if n == 0:
        return 0.0, 1.0
    tail = (1.0 - confidence) / 2.0

    def at_least(m: int, s: int) -> bool:  # s/m >= passes/n, in integers
        return m > 0 and s * n >= passes * m

    def at_most(m: int, s: int) -> bool:
        return m == 0 or s * n <= passes * m

    low = 0.0 if passes == 0 else _root(lambda p: region.tail(p, at_least), tail)
    high = 1.0 if passes == n else _root(lambda p: -region.tail(p, at_most), -tail)
    return low, high


@functools.lru_cache(maxsize=4096)
def bias_adjusted_rate(region: StoppingRegion, passes: int, n: int) -> float | None:
    """Whitehead's bias-adjusted rate: the p at which the expected rate at the stop
    equals the observed ``passes / n`` (None when nothing was scored). Both functions
    are cached: a session's tests share a few designs and counts."""
    passes, n = _check_counts(passes, n)
    if n == 0:
        return None
    if passes in (0, n):
        return passes / n
    return _root(region.expected_rate, passes / n)
