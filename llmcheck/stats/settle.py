"""How many samples would settle an inconclusive verdict, under every policy.

:func:`samples_to_conclusive` is the one answer to "how many samples would make this
verdict conclusive if the observed rate held": the report's ``n≈`` and
``verdict.samples_to_conclusive``, and the figure a budget spread over a session's tests
builds on. It is a total count (the samples already scored included), so it reads the
same for every policy:

* ``threshold`` and ``interval``: the smallest n at which the Wilson interval around the
  observed rate excludes the required rate (:func:`~llmcheck.stats.samples_for_conclusive`).
* ``sequential``: the samples scored so far plus the expected number of further samples
  until the SPRT's log-likelihood ratio, starting where the run left it, reaches one of the
  design's boundaries when every sample passes at the observed rate (the boundaries
  continued past the truncation N, which is what a longer run with the same design would
  do). It is computed exactly, without simulation, by :func:`expected_steps_to_boundary`:
  a dynamic programme over the walk's reachable positions, which between two boundaries are
  few per step, run until the chance of still being inside is below ``1e-10``.
  ``tests/stats/test_settle.py`` checks it against a seeded simulation of the same walk.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from llmcheck.stats.intervals import _check_unit, samples_for_conclusive

if TYPE_CHECKING:
    from llmcheck.stats.policies import Policy

__all__ = ["expected_steps_to_boundary", "samples_to_conclusive"]

MAX_STEPS = 1_000_000
"""A walk still inside its boundaries after this many steps gives no estimate (None)."""
_SURVIVAL_TOLERANCE = 1e-10


def expected_steps_to_boundary(start: float, upper: float, lower: float, up: float,
                               down: float, p: float) -> float | None:
    """E[steps] until a walk from ``start`` reaches ``>= upper`` or ``<= lower``, where each
    step adds ``up`` (> 0) with probability ``p`` and ``down`` (< 0) otherwise: 0 when
    ``start`` is already outside; None when the boundaries are not finite or the walk
    would need more than :data:`MAX_STEPS` (it then barely moves).

    Exact up to the truncation of a tail below ``1e-10``: after k steps with j ups the walk
    is at ``start + j*up + (k-j)*down``, and only the j that keep it inside are carried
    over (a handful per step, since the band is a few steps wide)."""
    p = _check_unit("p", p, open_low=False, open_high=False)
    if not (math.isfinite(upper) and math.isfinite(lower)) or not up > 0 > down:
        return None
    eps = 1e-9  # as the policy compares a log-likelihood ratio with a boundary

    def inside(x: float) -> bool:
        return lower + eps < x < upper - eps

    if not inside(start):
        return 0.0
    alive = {0: 1.0}  # ups so far -> probability of being inside after `steps` steps
    expected = 0.0
    for steps in range(MAX_STEPS):
        survival = math.fsum(alive.values())
        expected += survival  # E[T] = sum over k >= 0 of P(T > k)
        if survival < _SURVIVAL_TOLERANCE:
            return expected
        nxt: dict[int, float] = {}
        for ups, prob in alive.items():
            for more, weight in ((1, p), (0, 1.0 - p)):
                if weight == 0.0:
                    continue
                j = ups + more
                if inside(start + j * up + (steps + 1 - j) * down):
                    nxt[j] = nxt.get(j, 0.0) + prob * weight
        alive = nxt
    return None


def samples_to_conclusive(policy: Policy, passes: int, failures: int) -> int | None:
    """The total number of samples that would settle this verdict if the observed rate
    ``passes / (passes + failures)`` held (see the module's docstring for each policy);
    None when nothing was scored, when no number of samples would (the observed rate is
    exactly the required one, a sequential design without boundaries) or when it would
    take more than a million."""
    scored = passes + failures
    if scored <= 0:
        return None
    rate = passes / scored
    if policy.name == "sequential":
        upper, lower = policy.upper, policy.lower  # type: ignore[attr-defined]
        steps = expected_steps_to_boundary(
            policy.llr(passes, failures), upper, lower,  # type: ignore[attr-defined]
            policy._llr_pass, policy._llr_fail, rate)  # type: ignore[attr-defined]
        return None if steps is None else scored + math.ceil(steps - 1e-9)
    if Fraction(passes, scored) == Fraction(repr(float(policy.min_pass_rate))):
        return None
    return samples_for_conclusive(rate, policy.min_pass_rate, policy.confidence)
