"""Verdict policies: how the outcomes of a test's samples become a verdict.

Samples are counted as ``passes`` and ``failures``; a sample that ends in an
``error`` (the harness could not get an answer) is not counted at all. The
runner asks :meth:`Policy.settled` after every finished sample whether the
verdict can still change, stops launching samples once it cannot, and then
asks :meth:`Policy.decide` for the verdict.

This module holds the base class and the rate policies (``threshold``,
``interval``), the factory :func:`make_policy` and :func:`simulate_policy`;
the ``sequential`` policy lives in :mod:`llmcheck.stats.sequential`.
"""

from __future__ import annotations

import functools
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from llmcheck.config.names import POLICY_NAMES, PolicyName
from llmcheck.errors import UsageError
from llmcheck.stats.intervals import (
    _check_confidence,
    _check_int,
    _check_unit,
    samples_for_conclusive,
    wilson_interval,
)
from llmcheck.stats.settle import samples_to_conclusive

if TYPE_CHECKING:
    pass

__all__ = [
    "POLICY_NAMES",
    "Decision",
    "IntervalPolicy",
    "Policy",
    "PolicyName",
    "ThresholdPolicy",
    "make_policy",
    "simulate_policy",
]

# Names of the verdict policies (``--llm-verdict``, :func:`make_policy`'s ``name``):
# plain data of llmcheck.config.names, which the settings table validates with.

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

    def design(self) -> dict[str, Any]:
        """The decision rule, as plain numbers a report can carry: for the rate
        policies the fewest passes out of ``max_samples`` that pass (None when none
        does), and ``max_samples``."""
        n = self.max_samples
        if n is None:
            return {}
        fewest = next((s for s in range(n + 1) if self.decide(s, n - s, 0).passed), None)
        return {"max_samples": n, "passes_needed": fewest}

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

        def verdict_at(s: int, n: int) -> bool | None:
            f = n - s
            if not self.settled(s, f, cap - n):
                return None
            return self.decide(s, f, cap - n).passed

        p_pass, expected = stopping_run_oc(cap, p, verdict_at)
        return min(1.0, p_pass), expected


def stopping_run_oc(cap: int, p: float,
                    verdict_at: Callable[[int, int], bool | None]) -> tuple[float, float]:
    """Exact P(pass) and expected samples of a run of at most ``cap`` samples, each
    passing with probability ``p``, that stops where ``verdict_at(passes, n)`` gives
    a verdict (True: pass) and goes on where it gives None: dynamic programming
    over the (passes, samples) states."""
    layer = [1.0]  # layer[s]: probability of reaching s passes after n samples
    p_pass = expected = 0.0
    for n in range(cap + 1):
        nxt = [0.0] * (n + 2)
        for s, prob in enumerate(layer):
            if prob == 0.0:
                continue
            verdict = verdict_at(s, n)
            if verdict is None:
                nxt[s + 1] += prob * p
                nxt[s] += prob * (1.0 - p)
            else:
                if verdict:
                    p_pass += prob
                expected += prob * n
        layer = nxt
    return p_pass, expected


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

    def decide(self, passes: int, failures: int, remaining: int = 0) -> Decision:
        self._check_state(passes, failures, remaining)
        scored = passes + failures
        if scored == 0:
            return Decision(False, False, "no scored samples")
        certain = self._certain(passes, failures, remaining)
        passed = self._meets(passes, scored) if certain is None else certain
        return self._decision(passes, failures, remaining, certain, passed)

    @abstractmethod
    def _decision(self, passes: int, failures: int, remaining: int, certain: bool | None,
                  passed: bool) -> Decision:
        """The verdict and its reason, given the certain outcome (None: not settled)
        and whether the counts meet the bar; at least one sample is scored."""


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

    def _decision(self, passes: int, failures: int, remaining: int, certain: bool | None,
                  passed: bool) -> Decision:
        """Verdict by observed rate, with Wilson conclusiveness and samples needed."""
        scored = passes + failures
        m = self.min_pass_rate
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
        needed = None if conclusive else samples_to_conclusive(self, passes, failures)
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
        tail = (
            f"N={needed} all passing could"
            if needed
            else "no N can (a required rate of 1 is never proven)"
        )
        return (
            f"interval: even {n}/{n} passing cannot show a rate >= {_fmt(m)} at "
            f"{self.confidence:.0%} confidence; {tail}"
        )

    def _meets(self, passes: int, scored: int) -> bool:
        return scored > 0 and wilson_interval(passes, scored, self.confidence)[0] >= (
            self.min_pass_rate
        )

    def _decision(self, passes: int, failures: int, remaining: int, certain: bool | None,
                  passed: bool) -> Decision:
        """Verdict by Wilson lower bound; a fail is conclusive only if the upper bound < m."""
        scored = passes + failures
        m = self.min_pass_rate
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
        needed = None if conclusive else samples_to_conclusive(self, passes, failures)
        return Decision(passed, conclusive, reason, needed)


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
    """The verdict policy called ``name`` (one of :data:`POLICY_NAMES`).

    ``margin``, ``alpha`` and ``beta`` only matter to ``"sequential"``; for it
    ``max_samples=None`` means the equivalent fixed test's n. Policies are
    immutable, so equal arguments share one instance: a test's policy is built once,
    however often its settings ask for it (the runner, the plugin, the record's
    inference, the session's false-fail chance), and a sequential policy's exact
    boundary tuning runs once per design in a process, not once per test.
    """
    if name not in POLICY_NAMES:
        raise UsageError(f"unknown verdict policy {name!r}; accepted: "
                         f"{', '.join(POLICY_NAMES)}")
    shape = (margin, alpha, beta) if name == "sequential" else (None, None, None)
    key = (name, min_pass_rate, confidence, max_samples, *shape)
    try:
        hash(key)
    except TypeError:  # an unhashable (so invalid) value: rejected without the cache
        return _build_policy(*key)
    return _shared_policy(*key)


def _build_policy(name: str, min_pass_rate: float, confidence: float,
                  max_samples: int | None, margin: float | None, alpha: float | None,
                  beta: float | None) -> Policy:
    if name == "sequential":
        # imported here: sequential.py subclasses Policy, so it imports this module
        from llmcheck.stats.sequential import SequentialPolicy

        assert margin is not None and alpha is not None and beta is not None
        return SequentialPolicy(min_pass_rate, margin=margin, alpha=alpha, beta=beta,
                                max_samples=max_samples, confidence=confidence)
    if name == "threshold":
        return ThresholdPolicy(min_pass_rate, confidence, max_samples)
    return IntervalPolicy(min_pass_rate, confidence, max_samples)


# typed: True and 1, 1 and 1.0 are different arguments (a bool is rejected, not shared)
_shared_policy = functools.lru_cache(maxsize=256, typed=True)(_build_policy)
"""One policy per distinct design (a sequential policy's tuning is the costly part)."""


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
