"""A test's verdict design: the policy and the number of runs its settings call for.

:func:`resolve_policy` is the one place a test's policy is chosen: the sequential
policy falls back to the threshold rule where a required rate of 0 or 1 leaves no
indifference zone, unset runs become the design's N, and a session error budget
(``--llm-session-alpha``) is shared out between the session's tests. The pytest
plugin (through :func:`llmcheck.records.resolve.resolve_test`) and ``llmcheck plan``
both build their policies here, so the planner shows exactly what a run does.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llmcheck.config.settings import MAX_RUNS
from llmcheck.errors import UsageError
from llmcheck.stats.intervals import _binom_sf
from llmcheck.stats.policies import Policy, make_policy
from llmcheck.stats.quantiles import latency_errors, quantile_fail_chance
from llmcheck.stats.sequential import default_runs, passing_rate

__all__ = ["Design", "ResolvedPolicy", "false_fail_chance", "resolve_policy", "session_share"]


@dataclass(frozen=True)
class ResolvedPolicy:
    """The policy a test gets, and the fail-side error ``beta`` it was built with
    (lowered from the test's own when a session error budget asks for less)."""

    policy: Policy
    beta: float


def session_share(session_alpha: float, session_tests: int) -> float:
    """The fail-side error each of ``session_tests`` independent tests may have so
    that a good model fails at least one of them at most ``session_alpha`` of the
    time (Sidak: 1 - (1 - A)^(1/K))."""
    return 1.0 - (1.0 - session_alpha) ** (1.0 / max(1, session_tests))


def resolve_policy(verdict: str, *, min_pass_rate: float, confidence: float, margin: float,
                   alpha: float, beta: float, runs: int | None,
                   session_alpha: float | None = None, session_tests: int = 1,
                   allow_never_pass: bool = False, max_runs: int = MAX_RUNS) -> ResolvedPolicy:
    """The policy for a test with these (validated) settings, in a session of
    ``session_tests`` LLM tests held to ``session_alpha`` (None: not held).

    ``runs=None`` means the default, :func:`~llmcheck.stats.default_runs`. A test that
    can never pass is a usage error unless ``allow_never_pass`` (the planner shows such
    designs); so is one whose runs would be above ``max_runs``, checked before the
    (costly) sequential design is tuned."""
    m = min_pass_rate
    if verdict == "sequential" and m in (0, 1):
        # no indifference zone on one side: the threshold rule is the test (at m=1 the
        # zero-failure test, failing at the first failure)
        verdict = "threshold"
    per_test = None
    if session_alpha is not None:
        per_test = session_share(session_alpha, session_tests)
        if verdict == "sequential":
            beta = min(beta, per_test)
    explicit = runs is not None
    if runs is None:
        runs = default_runs(m, margin, alpha, beta)
    if per_test is not None and verdict != "sequential":
        needed = _runs_for_false_fail(verdict, m, confidence, margin, per_test, runs)
        if explicit and needed > runs:
            fewest = _runs_for_false_fail(verdict, m, confidence, margin, per_test, 1)
            raise UsageError(
                f"--llm-session-alpha={session_alpha:g} over {session_tests} hypotheses "
                f"(LLM tests and latency requirements) "
                f"needs each {verdict} test to fail a model at its required rate + "
                f"margin at most {per_test:.2g} of the time; runs={runs} does not: "
                f"runs={fewest} is the fewest that does, and runs={needed} the first "
                f"above {runs} (the chance falls with runs only on average)")
        runs = needed
    if runs > max_runs:
        raise UsageError(
            f"these settings take N={runs} samples, more than {max_runs}: use a larger "
            "margin, or set runs")
    policy = make_policy(verdict, min_pass_rate=m, confidence=confidence, max_samples=runs,
                         margin=margin, alpha=alpha, beta=beta)
    if per_test is not None and explicit and runs < getattr(policy, "required_samples", 0):
        raise UsageError(f"--llm-session-alpha={session_alpha:g} over "
                         f"{session_tests} hypotheses (LLM tests and latency requirements) "
                         f"needs beta={per_test:.2g}, which takes "
                         f"runs={policy.required_samples}; runs={runs} is set")
    design = policy.design()
    if "passes_needed" in design and design["passes_needed"] is None and not allow_never_pass:
        # a test that can only fail is a broken configuration, not a verdict
        raise UsageError("this test can never pass: "
                         f"{getattr(policy, 'warning', None) or 'no count of passes is enough'}")
    return ResolvedPolicy(policy, beta)


@functools.lru_cache(maxsize=256)
def _runs_for_false_fail(verdict: str, m: float, confidence: float, margin: float,
                         target: float, start: int) -> int:
    """The fewest runs, from ``start`` on, at which a ``verdict`` (threshold or interval)
    test fails a model at its rate + margin at most ``target`` of the time. (The error
    falls with n only on average, in a sawtooth, so the search walks up n by n; each
    step is one binomial tail.)"""
    p1 = passing_rate(m, margin)
    for n in range(start, MAX_RUNS + 1):
        # curtailment never changes these policies' verdicts: it is the fixed test's,
        # "pass iff at least passes_needed of n pass"
        policy = make_policy(verdict, min_pass_rate=m, confidence=confidence, max_samples=n)
        needed = policy.design()["passes_needed"]
        if needed is not None and 1.0 - _binom_sf(needed, n, p1) <= target:
            return n
    raise UsageError(f"failing a model at {p1:g} at most {target:.2g} of the time takes "
                     f"more than {MAX_RUNS} runs; use a larger margin")


class Design(Protocol):
    """What a test's verdict design is made of (a record's ``TestSettings`` has it)."""

    @property
    def verdict(self) -> str: ...
    @property
    def min_pass_rate(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def runs(self) -> int: ...
    @property
    def margin(self) -> float: ...
    @property
    def alpha(self) -> float: ...
    @property
    def beta(self) -> float: ...


def false_fail_chance(designs: Sequence[Design]) -> float | None:
    """P(at least one FAIL) for tests that all truly pass at their required rate +
    margin (:func:`~llmcheck.stats.passing_rate`), from each policy's exact operating
    characteristic, and whose latency requirements (a design's ``latency``, if it has
    any) all hold with the same room: a share passing_rate(q, margin) of the samples at
    or under the limit, judged on all ``runs`` samples (the hypotheses independent);
    None for no tests."""
    if not designs:
        return None
    all_pass = 1.0
    for s in designs:
        all_pass *= _pass_chance_when_good(s.verdict, s.min_pass_rate, s.confidence, s.runs,
                                           s.margin, s.alpha, s.beta)
        alpha, beta, only = latency_errors(s.alpha, s.beta, getattr(s, "session_share", None))
        for requirement in getattr(s, "latency", ()):
            q = requirement.quantile
            all_pass *= 1.0 - quantile_fail_chance(s.runs, q, passing_rate(q, s.margin),
                                                   alpha=alpha, beta=beta,
                                                   fail_only_conclusive=only)
    return 1.0 - all_pass


@functools.lru_cache(maxsize=256)
def _pass_chance_when_good(verdict: str, min_pass_rate: float, confidence: float, runs: int,
                           margin: float, alpha: float, beta: float) -> float:
    """Exact P(pass) at min_pass_rate + margin: computed once per design, although the
    session record is rebuilt at every save during a run."""
    policy = make_policy(verdict, min_pass_rate=min_pass_rate, confidence=confidence,
                         max_samples=runs, margin=margin, alpha=alpha, beta=beta)
    return policy.operating_characteristic(passing_rate(min_pass_rate, margin))[0]
