"""Inference after early stopping (llmcheck.stats.stopping), checked exactly and through the runner.

The stopping region of a design gives the exact distribution of the state a run
ends in, so coverage and bias are computed exactly here, at a grid of true
rates, for the three designs the benchmark uses (benchmarks/coverage.py):
threshold N=20, interval N=60 and sequential at its defaults (N=93), all at
min_pass_rate 0.9. One slow test checks the exact figures against seeded runs
of the real SampleRunner, whose samples finish out of index order.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pytest
import scipy.stats

from llmcheck import UsageError, stats
from llmcheck.config.settings import session_defaults
from llmcheck.core import seeded
from llmcheck.core.runner import RunSpec, SampleRunner
from llmcheck.records.resolve import resolve_test
from llmcheck.stats import Decision, Policy

DESIGNS = {
    "threshold": {"verdict": "threshold", "runs": 20, "min_pass_rate": 0.9},
    "interval": {"verdict": "interval", "runs": 60, "min_pass_rate": 0.9},
    "sequential": {"verdict": "sequential", "min_pass_rate": 0.9},
}
GRID = [i / 200 for i in range(1, 200)]  # 0.005 .. 0.995
COARSE_GRID = [i / 100 for i in range(1, 100)]


@dataclass(frozen=True)
class Design:
    cap: int
    region: stats.StoppingRegion
    # per region point: (n, passes, (low, high), estimate)
    points: tuple[tuple[int, int, tuple[float, float], float | None], ...]

    def expectation(self, p: float, value) -> float:
        """E_p[value(n, passes, interval, estimate)] over the stop states."""
        probs = self.region.probabilities(p)
        return math.fsum(q * value(*pt) for q, pt in zip(probs, self.points, strict=True))

    def coverage(self, p: float) -> float:
        return self.expectation(p, lambda n, s, iv, est: float(iv[0] <= p <= iv[1]))

    def wilson_coverage(self, p: float) -> float:
        def covers(n: int, s: int, iv: tuple[float, float], est: float | None) -> float:
            low, high = stats.wilson_interval(s, n, 0.95)
            return float(low <= p <= high)

        return self.expectation(p, covers)


@functools.cache
def design(name: str) -> Design:
    settings = resolve_test(DESIGNS[name], session_defaults())
    region = stats.stopping_region(settings.policy(), settings.runs)
    points = tuple((n, s, stats.stopping_interval(region, s, n, 0.95),
                    stats.bias_adjusted_rate(region, s, n)) for n, s, _ in region.points)
    return Design(settings.runs, region, points)


class _FixedN(Policy):
    """A policy that never settles early: every run takes all ``cap`` samples."""

    name = "fixed-n-for-tests"

    def settled(self, passes: int, failures: int, remaining: int) -> bool:
        return False

    def decide(self, passes: int, failures: int, remaining: int = 0) -> Decision:
        return Decision(False, False, "never decides")


def test_design_defaults_are_the_ones_the_benchmark_describes():
    assert {name: design(name).cap for name in DESIGNS} == {
        "threshold": 20, "interval": 60, "sequential": 93}


# -- the region itself ----------------------------------------------------------


@pytest.mark.parametrize("name", DESIGNS)
def test_region_is_a_distribution_matching_the_policy_operating_characteristic(name):
    d = design(name)
    policy = resolve_test(DESIGNS[name], session_defaults()).policy()
    for p in (0.0, 0.3, 0.7, 0.9, 0.99, 1.0):
        assert math.fsum(d.region.probabilities(p)) == pytest.approx(1.0, abs=1e-12)
        expected_n = d.expectation(p, lambda n, s, iv, est: n)
        assert expected_n == pytest.approx(policy.operating_characteristic(p)[1], abs=1e-9)


# -- (a) no early stop: Clopper-Pearson ---------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 13, 20, 60])
def test_fixed_n_region_gives_the_clopper_pearson_interval(n):
    region = stats.stopping_region(_FixedN(0.5, max_samples=n), n)
    assert sorted((m, s) for m, s, _ in region.points) == [(n, s) for s in range(n + 1)]
    for _m, s, log_paths in region.points:
        assert log_paths == pytest.approx(math.log(math.comb(n, s)), abs=1e-12)
    for k in range(n + 1):
        low, high = stats.stopping_interval(region, k, n, 0.95)
        ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert low == pytest.approx(ci.low, abs=1e-9), (n, k)
        assert high == pytest.approx(ci.high, abs=1e-9), (n, k)
        # and the bias-adjusted rate of a fixed-n run is the raw rate (it is unbiased)
        assert stats.bias_adjusted_rate(region, k, n) == pytest.approx(k / n, abs=1e-9)


# -- (b) coverage ---------------------------------------------------------------


@pytest.mark.parametrize("name", DESIGNS)
def test_exact_coverage_is_at_least_nominal(name):
    """On a grid and at both sides of every interval endpoint (where the coverage
    function jumps, so where its infimum is approached)."""
    d = design(name)
    ends = {e for _n, _s, (low, high), _ in d.points for e in (low, high)}
    probes = set(GRID) | {e + h for e in ends for h in (-1e-9, 1e-9) if 0 < e + h < 1}
    worst = min((d.coverage(p), p) for p in sorted(probes))
    assert worst[0] >= 0.95 - 1e-9, f"{name}: coverage {worst[0]:.6f} at p={worst[1]}"


@pytest.mark.parametrize("name", DESIGNS)
def test_a_fixed_n_wilson_interval_undercovers_after_early_stopping(name):
    """Why the adjustment exists: Wilson on the same counts, as if n had been fixed."""
    worst = min((design(name).wilson_coverage(p), p) for p in COARSE_GRID)
    assert worst[0] < 0.93, f"{name}: Wilson coverage never below 0.93 (min {worst})"


# -- (c) bias ---------------------------------------------------------------------


@pytest.mark.parametrize("name", DESIGNS)
@pytest.mark.parametrize("p", [0.7, 0.8, 0.9])
def test_bias_adjusted_rate_is_less_biased_than_the_raw_rate(name, p):
    d = design(name)
    raw = d.expectation(p, lambda n, s, iv, est: s / n) - p
    adjusted = d.expectation(p, lambda n, s, iv, est: est) - p
    assert abs(adjusted) < abs(raw), (name, p, raw, adjusted)


def test_raw_rate_bias_of_the_threshold_design_is_the_documented_one():
    # stopping.py's docstring: a 0.80 model tested by threshold N=20 shows about 0.744-0.745
    mean_rate = design("threshold").expectation(0.8, lambda n, s, iv, est: s / n)
    assert mean_rate == pytest.approx(0.7452, abs=5e-4)


# -- (d) monotonicity ------------------------------------------------------------


@pytest.mark.parametrize("name", DESIGNS)
def test_the_tails_the_interval_inverts_are_monotone_in_p(name):
    """Under the sample-mean ordering, P_p(rate at stop >= r) must rise with p and
    P_p(rate at stop <= r) fall with p, for every stop rate r, so that each bound is
    the single root the bisection finds; and E_p[rate at stop] (inverted by the
    bias-adjusted rate) must rise with p."""
    d = design(name)
    points = [(n, s) for n, s, _ in d.region.points]
    previous = None
    for p in COARSE_GRID:
        probs = d.region.probabilities(p)
        row = []
        for n, k in points:
            at_least = math.fsum(q for q, (m, s) in zip(probs, points, strict=True)
                                 if m > 0 and s * n >= k * m)
            above = 1.0 - math.fsum(q for q, (m, s) in zip(probs, points, strict=True)
                                    if m == 0 or s * n <= k * m)  # P(rate > k/n)
            row.append((at_least, above))
        row.append((d.region.expected_rate(p), 0.0))
        if previous is not None:
            for (n, k), now, before in zip(points + [(-1, -1)], row, previous, strict=True):
                assert now[0] >= before[0] - 1e-12 and now[1] >= before[1] - 1e-12, \
                    (name, p, n, k, before, now)
        previous = row


# -- (e) bad inputs --------------------------------------------------------------


def test_bad_inputs_raise_usage_errors_naming_the_value():
    policy = stats.ThresholdPolicy(0.9, max_samples=20)
    too_big = stats.MAX_STOPPING_SAMPLES + 1
    for cap in (0, -3, too_big, True, 2.0, "20"):
        with pytest.raises(UsageError, match=rf"cap .*got {cap!r}"):
            stats.stopping_region(policy, cap)
    region = stats.stopping_region(policy, 20)
    for call in (stats.stopping_interval, stats.bias_adjusted_rate):
        with pytest.raises(UsageError, match=r"between 0 and n=3, got 5"):
            call(region, 5, 3)
        with pytest.raises(UsageError, match=r"got -1"):
            call(region, -1, 3)
    with pytest.raises(UsageError, match=r"confidence.*1\.5"):
        stats.stopping_interval(region, 2, 3, 1.5)


# -- through the real runner -------------------------------------------------------

PASS_DELAY = 0.0005
FAIL_DELAY = 3 * PASS_DELAY  # failures are slower, so samples finish out of index order


@pytest.mark.slow
def test_runner_coverage_and_bias_agree_with_the_exact_figures():
    """Threshold N=20 at p=0.8, concurrency 4: 400 seeded runs of the real runner (every
    run's interval and estimate are also checked against the exact region's, state by
    state). Exact coverage is 0.974 (Wilson on the same counts: 0.924), the raw rate's
    bias -0.055 and the estimate's -0.010. Every design and rate at 2,000 runs a cell:
    benchmarks/coverage.py."""
    runs, p = 400, 0.8
    marker = {**DESIGNS["threshold"], "concurrency": 4}
    settings = resolve_test(marker, session_defaults())
    d = design("threshold")
    by_state = {(n, s): (iv, est) for n, s, iv, est in d.points}
    covered = 0
    rates: list[float] = []
    estimates: list[float] = []
    for seed in range(runs):
        spec = RunSpec(test_id="t.py::test_model", settings=settings, session_seed=seed)
        r = SampleRunner(seeded.async_body(p, PASS_DELAY, FAIL_DELAY), spec).run()
        n = r.passed + r.failed
        assert r.errors == 0 and r.interval.method == "stopping-exact"
        (low, high), est = by_state[n, r.passed]  # a KeyError: stopped outside the region
        assert (r.interval.low, r.interval.high, r.estimate) == (low, high, est)
        covered += r.interval.low <= p <= r.interval.high
        rates.append(r.pass_rate)
        estimates.append(r.estimate)
    coverage = covered / runs
    exact = d.coverage(p)
    se_nominal = math.sqrt(0.95 * 0.05 / runs)
    se_exact = math.sqrt(exact * (1 - exact) / runs)
    assert coverage >= 0.95 - 3 * se_nominal, coverage
    assert abs(coverage - exact) < 4 * se_exact, (coverage, exact)
    raw_bias = math.fsum(rates) / runs - p
    est_bias = math.fsum(estimates) / runs - p
    assert abs(est_bias) < abs(raw_bias), (raw_bias, est_bias)


def test_a_stop_that_errors_moved_off_the_region_gets_the_fixed_interval():
    """runs=35 is the fewest at which the interval policy can pass at 0.9; one error
    leaves a 34-sample run that cannot, whose region is the single state (0, 0). The
    run's stop is not in it, so the report falls back to the fixed-n interval."""
    from llmcheck.config.settings import session_defaults
    from llmcheck.core import context
    from llmcheck.core.runner import RunSpec, SampleRunner
    from llmcheck.errors import InfrastructureError
    from llmcheck.records.resolve import resolve_test

    settings = resolve_test({"verdict": "interval", "runs": 35, "min_pass_rate": 0.9,
                             "concurrency": 1}, session_defaults())

    def body():
        if context.current_sample().index == 1:
            raise InfrastructureError("model unreachable")

    r = SampleRunner(body, RunSpec(test_id="t.py::t", settings=settings)).run()
    assert r.errors == 1 and not stats.stopping_region(settings.policy(), 34).contains(
        r.scored, r.passed)
    assert r.interval == settings.interval_of(r.passed, r.scored) and r.estimate is None
    assert r.interval.method == "wilson" and r.interval.low < 0.9


def test_the_failure_text_names_the_interval_and_the_adjusted_rate():
    from llmcheck.config.settings import session_defaults
    from llmcheck.core import context
    from llmcheck.core.runner import RunSpec, SampleRunner
    from llmcheck.records.resolve import resolve_test
    from llmcheck.reports.terminal import explain

    settings = resolve_test({"verdict": "threshold", "runs": 20, "min_pass_rate": 0.9,
                             "concurrency": 1}, session_defaults())

    def body():  # fails samples 1, 2 and 3: settled FAIL after 4
        assert context.current_sample().index not in (1, 2, 3)

    r = SampleRunner(body, RunSpec(test_id="t.py::t", settings=settings)).run()
    assert (r.passed, r.failed) == (1, 3) and r.interval.method == "stopping-exact"
    text = explain(r)
    assert "pass rate 0.25 (bias-adjusted for early stopping: " in text
    assert f"95% exact (stopping-rule) interval [{r.interval.low:.2f}, " in text
