"""Verdict policies: curtailment is safe, and error rates and sample counts are as promised.

Promises are checked twice: exactly, by dynamic programming over the
(passes, failures) states, and by seeded simulation of the runner protocol
(one sample at a time, stop as soon as ``settled``), written here
independently of the library's own helpers.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Iterable

import pytest
import scipy.stats

from llmcheck.errors import UsageError
from llmcheck.stats import (
    POLICY_NAMES,
    Decision,
    IntervalPolicy,
    Policy,
    SequentialPolicy,
    ThresholdPolicy,
    fixed_sample_size,
    make_policy,
    samples_for_conclusive,
    simulate_policy,
    wilson_interval,
)

RUNS = 20_000  # per true rate: SE of an error rate near 0.05 is about 0.0015


def sequential_080_vs_095() -> SequentialPolicy:
    """The SPRT of p0=0.80 against p1=0.95 (m=0.875, margin=0.075), as in
    benchmarks/sample_counts.py; not the default design (m=0.9, margin=0.05)."""
    policy = make_policy("sequential", min_pass_rate=0.875, margin=0.075)
    assert isinstance(policy, SequentialPolicy)
    return policy


# -- curtailment never changes the verdict -----------------------------------------


def run_curtailed(policy: Policy, outcomes: Iterable[str], cap: int) -> tuple[Decision, int]:
    """The runner: after each finished sample ask ``settled``; stop once it says so."""
    passes = failures = used = 0
    remaining = cap
    for outcome in outcomes:
        if policy.settled(passes, failures, remaining):
            break
        used += 1
        remaining -= 1
        passes += outcome == "P"
        failures += outcome == "F"
    assert policy.settled(passes, failures, remaining)
    return policy.decide(passes, failures, remaining), used


def sequential_reference(policy: SequentialPolicy, outcomes: Iterable[str]) -> tuple[bool, bool]:
    """The documented SPRT without curtailment: (passed, stopped at a boundary)."""
    passes = failures = 0
    cap, c = policy.max_samples, policy.critical_value

    def stop(s: int, f: int) -> tuple[bool, bool] | None:
        llr = policy.llr(s, f)
        if llr >= policy.upper - 1e-9:
            return True, True
        if llr <= policy.lower + 1e-9:
            return False, True
        if s + f >= cap:
            return s >= c, False
        return None

    for outcome in outcomes:
        if (verdict := stop(passes, failures)) is not None:
            return verdict
        passes += outcome == "P"
        failures += outcome == "F"
    if (verdict := stop(passes, failures)) is not None:
        return verdict
    n = passes + failures
    return n > 0 and passes * cap >= c * n, False  # samples ran out: scaled fixed test


RATES = (0.0, 0.5, 0.6, 2 / 3, 0.7, 0.75, 0.8, 0.9, 1.0)


@pytest.mark.parametrize("cap", [1, 2, 5, 7])
def test_threshold_curtailment_never_changes_the_verdict(cap: int) -> None:
    """Every sequence of pass / fail / error outcomes, stopped early or run to the end."""
    for m in RATES:
        policy = ThresholdPolicy(m, max_samples=cap)
        for outcomes in itertools.product("PFE", repeat=cap):
            full = policy.decide(outcomes.count("P"), outcomes.count("F"), 0)
            early, _ = run_curtailed(policy, outcomes, cap)
            assert early.passed == full.passed, (m, outcomes)


@pytest.mark.parametrize("cap", [1, 3, 7])
@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_interval_curtailment_never_changes_the_verdict(cap: int, confidence: float) -> None:
    for m in RATES:
        policy = IntervalPolicy(m, confidence, max_samples=cap)
        for outcomes in itertools.product("PFE", repeat=cap):
            full = policy.decide(outcomes.count("P"), outcomes.count("F"), 0)
            early, _ = run_curtailed(policy, outcomes, cap)
            assert early.passed == full.passed, (m, outcomes)


def test_wilson_lower_bound_is_monotone() -> None:
    """What interval curtailment relies on: a pass raises the lower bound, a failure lowers it."""
    for confidence in (0.8, 0.9, 0.95, 0.99):
        for n in range(0, 200):
            for k in range(n + 1):
                low = wilson_interval(k, n, confidence)[0]
                assert wilson_interval(k + 1, n + 1, confidence)[0] >= low
                assert wilson_interval(k, n + 1, confidence)[0] <= low


@pytest.mark.parametrize("cap", [None, 6, 10])
def test_sequential_curtailment_exhaustively_on_a_small_design(cap: int | None) -> None:
    """p0=0.5, p1=0.9, alpha=beta=0.1: the fixed test needs 9 samples, so 3^9 sequences."""
    policy = make_policy(
        "sequential", min_pass_rate=0.7, margin=0.2, alpha=0.1, beta=0.1, max_samples=cap
    )
    assert isinstance(policy, SequentialPolicy)
    n = policy.max_samples
    assert n == (cap or 9)
    for outcomes in itertools.product("PFE", repeat=n):
        passed, at_boundary = sequential_reference(policy, outcomes)
        early, used = run_curtailed(policy, outcomes, n)
        assert early.passed == passed, outcomes
        assert used <= n
        if early.conclusive:  # at a boundary, or curtailed in a design keeping its promises
            assert at_boundary or (used < n and policy.warning is None), outcomes


def test_sequential_curtailment_on_random_runs_of_the_080_vs_095_design() -> None:
    policy = sequential_080_vs_095()
    rng = random.Random(20240601)
    for _ in range(3000):
        p, error_rate = rng.choice([0.8, 0.875, 0.9, 0.95]), rng.choice([0.0, 0.1, 0.3])
        outcomes = [
            "E" if rng.random() < error_rate else "P" if rng.random() < p else "F"
            for _ in range(policy.max_samples)
        ]
        passed, at_boundary = sequential_reference(policy, outcomes)
        early, used = run_curtailed(policy, outcomes, policy.max_samples)
        assert early.passed == passed, outcomes
        if early.conclusive:  # at a boundary, or curtailed (the full run's verdict)
            assert at_boundary or used < policy.max_samples


def uncurtailed_oc(policy: SequentialPolicy, p: float) -> tuple[float, float]:
    """P(pass) and mean samples of the SPRT stopping only at a boundary or at N."""
    layer = {(0, 0): 1.0}
    p_pass = expected = 0.0
    while layer:
        nxt: dict[tuple[int, int], float] = {}
        for (s, f), prob in layer.items():
            llr, cap = policy.llr(s, f), policy.max_samples
            if llr >= policy.upper - 1e-9 or llr <= policy.lower + 1e-9 or s + f >= cap:
                passed = llr >= policy.upper - 1e-9 or (
                    llr > policy.lower + 1e-9 and s >= policy.critical_value
                )
                p_pass += prob * passed
                expected += prob * (s + f)
                continue
            nxt[s + 1, f] = nxt.get((s + 1, f), 0.0) + prob * p
            nxt[s, f + 1] = nxt.get((s, f + 1), 0.0) + prob * (1 - p)
        layer = nxt
    return p_pass, expected


def test_sequential_curtailment_keeps_the_operating_characteristic() -> None:
    policy = sequential_080_vs_095()
    for p in (0.7, 0.8, 0.85, 0.875, 0.9, 0.95, 0.99):
        curtailed = policy.operating_characteristic(p)
        full = uncurtailed_oc(policy, p)
        assert curtailed[0] == pytest.approx(full[0], abs=1e-12)
        assert curtailed[1] <= full[1] + 1e-12


# -- the sequential design ----------------------------------------------------------


def test_fixed_sample_size_is_50_with_critical_value_45() -> None:
    assert fixed_sample_size(0.8, 0.95, 0.05, 0.05) == (50, 45)
    binom = scipy.stats.binom
    assert binom.sf(44, 50, 0.8) <= 0.05 and binom.cdf(44, 50, 0.95) <= 0.05
    # no smaller n has any critical value meeting both, checked with scipy
    for n in range(1, 50):
        assert not any(
            binom.sf(c - 1, n, 0.8) <= 0.05 and binom.cdf(c - 1, n, 0.95) <= 0.05
            for c in range(n + 2)
        ), n


def test_fixed_sample_size_agrees_with_a_brute_force_search() -> None:
    binom = scipy.stats.binom

    def brute(p0: float, p1: float, alpha: float, beta: float) -> tuple[int, int]:
        for n in itertools.count(1):
            for c in range(n + 2):
                if binom.sf(c - 1, n, p0) <= alpha and binom.cdf(c - 1, n, p1) <= beta:
                    return n, c
        raise AssertionError

    for args in [(0.5, 0.9, 0.1, 0.1), (0.7, 0.9, 0.05, 0.1), (0.85, 0.95, 0.05, 0.05)]:
        assert fixed_sample_size(*args) == brute(*args), args


def test_sequential_080_vs_095_design() -> None:
    policy = sequential_080_vs_095()
    assert (policy.p0, policy.p1) == (0.8, 0.95)
    assert policy.required_samples == policy.max_samples == 50
    assert policy.critical_value == 45
    assert policy.warning is None


def test_sequential_exact_operating_characteristic_meets_the_targets() -> None:
    policy = sequential_080_vs_095()
    false_pass, mean_at_p0 = policy.operating_characteristic(0.80)
    true_pass, mean_at_p1 = policy.operating_characteristic(0.95)
    print(
        f"\nexact: alpha={false_pass:.4f} beta={1 - true_pass:.4f} "
        f"E[n|0.80]={mean_at_p0:.2f} E[n|0.95]={mean_at_p1:.2f}"
    )
    assert false_pass <= 0.05
    assert 1 - true_pass <= 0.05
    assert mean_at_p0 <= 22
    assert mean_at_p1 <= 35


def simulate(policy: Policy, p: float, runs: int, seed: int) -> tuple[float, list[int]]:
    """Seeded runs of the runner protocol: (pass share, samples used per run)."""
    rng = random.Random(seed)
    cap = policy.max_samples
    assert cap is not None
    passed = 0
    used_per_run = []
    for _ in range(runs):
        passes = failures = 0
        while not policy.settled(passes, failures, cap - passes - failures):
            if rng.random() < p:
                passes += 1
            else:
                failures += 1
        passed += policy.decide(passes, failures, cap - passes - failures).passed
        used_per_run.append(passes + failures)
    return passed / runs, used_per_run


@pytest.mark.parametrize(
    ("p", "seed", "max_mean", "wrong_verdict_is_pass"),
    [(0.80, 1, 22, True), (0.95, 2, 35, False)],
)
def test_sequential_simulation_agrees_with_exact_and_meets_targets(
    p: float, seed: int, max_mean: float, wrong_verdict_is_pass: bool
) -> None:
    policy = sequential_080_vs_095()
    exact_pass, exact_mean = policy.operating_characteristic(p)
    sim_pass, used = simulate(policy, p, RUNS, seed)
    sim_mean = statistics.fmean(used)
    se_rate = math.sqrt(exact_pass * (1 - exact_pass) / RUNS)
    se_mean = statistics.stdev(used) / math.sqrt(RUNS)
    sim_error = sim_pass if wrong_verdict_is_pass else 1 - sim_pass
    print(
        f"\np={p}: P(pass) sim {sim_pass:.4f} exact {exact_pass:.4f}; "
        f"mean n sim {sim_mean:.2f} exact {exact_mean:.2f}; max n {max(used)}"
    )
    assert abs(sim_pass - exact_pass) <= 4 * se_rate
    assert abs(sim_mean - exact_mean) <= 4 * se_mean
    assert max(used) <= 50  # never more than the fixed test
    assert sim_mean <= max_mean
    # the simulated error rate is consistent with the promised 0.05: an exact
    # one-sided test finds no evidence that the true rate exceeds it
    errors = round(sim_error * RUNS)
    assert scipy.stats.binomtest(errors, RUNS, 0.05, alternative="greater").pvalue > 0.001


def test_sequential_never_runs_more_than_max_samples() -> None:
    for cap in (None, 20, 60):
        policy = make_policy("sequential", min_pass_rate=0.875, margin=0.075, max_samples=cap)
        n = policy.max_samples
        assert n is not None
        for p in (0.5, 0.875, 0.99):
            _, used = simulate(policy, p, 300, seed=7)
            assert max(used) <= n
        for s in range(n + 1):  # at N every state is settled
            assert policy.settled(s, n - s, 0)


def test_simulate_policy_helper_agrees_with_exact() -> None:
    policy = sequential_080_vs_095()
    exact_pass, exact_mean = policy.operating_characteristic(0.875)
    sim_pass, sim_mean, longest = simulate_policy(policy, 0.875, 4000, seed=3)
    assert abs(sim_pass - exact_pass) <= 4 * math.sqrt(exact_pass * (1 - exact_pass) / 4000)
    assert abs(sim_mean - exact_mean) <= 1.0
    assert longest <= 50
    # errors spend samples without scoring them: fewer scored, same cap
    _, _, longest = simulate_policy(policy, 0.875, 500, seed=3, error_rate=0.3)
    assert longest <= 50


def test_sequential_warning_when_max_samples_is_too_small() -> None:
    policy = make_policy("sequential", min_pass_rate=0.875, margin=0.075, max_samples=20)
    assert isinstance(policy, SequentialPolicy)
    assert policy.warning == (
        "sequential: N=20 cannot meet alpha=0.05, beta=0.05 between 0.80 and 0.95; N=50 would"
    )
    assert policy.max_samples == 20 and policy.required_samples == 50


def test_sequential_decisions_and_reasons() -> None:
    policy = sequential_080_vs_095()
    # a run of passes until the upper boundary
    s = next(s for s in range(1, 51) if policy.settled(s, 0, 50 - s))
    assert policy.llr(s, 0) >= policy.upper - 1e-9
    d = policy.decide(s, 0, 50 - s)
    assert d.passed and d.conclusive
    assert d.reason == (f"the SPRT's pass boundary was crossed after {s} samples ({s}/{s} "
                        "passed): a model at 0.80 or below passes this test at most 0.05 of "
                        "the time")
    # three straight failures cross the lower boundary
    assert not policy.settled(0, 2, 48) and policy.settled(0, 3, 47)
    d = policy.decide(0, 3, 47)
    assert not d.passed and d.conclusive
    assert d.reason == ("the SPRT's fail boundary was crossed after 3 samples (0/3 passed): "
                        "a model at 0.95 or above fails this test at most 0.05 of the time")
    # truncation decides by the fixed test's critical value: inconclusive
    assert policy.decide(45, 5).passed and not policy.decide(45, 5).conclusive
    assert not policy.decide(44, 6).passed
    assert "45 needed" in policy.decide(44, 6).reason
    # curtailed: 45 passes with 4 failures and one sample left cannot fail any more
    assert policy.settled(45, 4, 1)
    d = policy.decide(45, 4, 1)
    assert d.passed and not d.conclusive
    assert d.reason.startswith("the remaining 1 sample could not change the outcome")
    assert "never at an SPRT boundary" in d.reason
    assert policy.decide(0, 0, 0) == Decision(False, False, "no scored samples")


# -- threshold ----------------------------------------------------------------------


def test_threshold_at_20_runs_passes_a_085_model_40_percent_of_the_time() -> None:
    policy = ThresholdPolicy(0.9, max_samples=20)
    exact = scipy.stats.binom.sf(17, 20, 0.85)  # P(Binom(20, 0.85) >= 18)
    false_pass, _ = policy.operating_characteristic(0.85)
    false_fail = 1 - policy.operating_characteristic(0.95)[0]
    print(
        f"\nthreshold N=20 m=0.9: false pass at 0.85 = {false_pass:.4f}, "
        f"false fail at 0.95 = {false_fail:.4f}"
    )
    assert false_pass == pytest.approx(exact, abs=1e-12)
    assert false_pass == pytest.approx(0.40, abs=0.01)
    assert false_fail == pytest.approx(scipy.stats.binom.cdf(17, 20, 0.95), abs=1e-12)
    sim_pass, used = simulate(policy, 0.85, RUNS, seed=5)
    assert abs(sim_pass - exact) <= 4 * math.sqrt(exact * (1 - exact) / RUNS)
    assert max(used) <= 20 and statistics.fmean(used) < 20  # curtailment saves samples


def test_threshold_decisions() -> None:
    policy = ThresholdPolicy(0.9, max_samples=20)
    d = policy.decide(17, 3)
    assert d == Decision(False, False, "17/20 = 0.85 < 0.90 required", 139)
    assert d.samples_to_conclusive == samples_for_conclusive(0.85, 0.9, 0.95)
    d = policy.decide(18, 2)
    assert d.passed and not d.conclusive
    assert d.reason == "18/20 = 0.90 >= 0.90 required"
    assert d.samples_to_conclusive is None  # the observed rate is exactly m
    assert policy.decide(0, 0) == Decision(False, False, "no scored samples")
    # rates as written, not as binary floats: 7/10 >= 0.7 and 3/10 >= 0.3
    assert ThresholdPolicy(0.7).decide(7, 3).passed
    assert ThresholdPolicy(0.3).decide(3, 7).passed
    # conclusive: Wilson low >= m for a pass, high < m for a fail
    assert ThresholdPolicy(0.8).decide(20, 0).conclusive  # Wilson low 0.839
    assert ThresholdPolicy(0.9).decide(10, 10).conclusive  # Wilson high 0.71
    # curtailed: 3 failures in 20 runs make 0.9 unreachable
    assert policy.settled(10, 3, 7)
    d = policy.decide(10, 3, 7)
    assert not d.passed and "17/20 = 0.85 < 0.90" in d.reason


def test_threshold_reason_shows_enough_digits() -> None:
    d = ThresholdPolicy(0.9).decide(899, 100)
    assert d.reason == "899/999 = 0.8999 < 0.90 required"


# -- interval -------------------------------------------------------------------------


def test_interval_decisions() -> None:
    d = IntervalPolicy(0.6).decide(17, 3)
    assert d.passed and d.conclusive
    assert d.reason == "Wilson 95% lower bound for 17/20 is 0.64 >= 0.60 required"
    d = IntervalPolicy(0.9).decide(17, 3)
    assert not d.passed and not d.conclusive and d.samples_to_conclusive == 139
    d = IntervalPolicy(0.9).decide(19, 1)  # observed 0.95 but the bound is 0.76
    assert not d.passed and not d.conclusive
    assert d.samples_to_conclusive == samples_for_conclusive(0.95, 0.9)
    assert IntervalPolicy(0.99).decide(10, 10).conclusive  # upper bound 0.71 < 0.99
    assert IntervalPolicy(0.5).decide(0, 0) == Decision(False, False, "no scored samples")


def test_interval_operating_characteristic_is_stricter_than_threshold() -> None:
    threshold = ThresholdPolicy(0.9, max_samples=20)
    interval = IntervalPolicy(0.9, max_samples=20)
    for p in (0.85, 0.9, 0.95, 0.99):
        assert interval.operating_characteristic(p)[0] <= threshold.operating_characteristic(p)[0]


# -- factory ---------------------------------------------------------------------------


def test_make_policy_builds_each_policy() -> None:
    assert POLICY_NAMES == ("threshold", "sequential", "interval")
    kinds = {
        "threshold": ThresholdPolicy,
        "sequential": SequentialPolicy,
        "interval": IntervalPolicy,
    }
    for name in POLICY_NAMES:
        policy = make_policy(name, min_pass_rate=0.875, margin=0.075, max_samples=50)
        assert isinstance(policy, kinds[name])
        assert policy.name == name
        assert (policy.min_pass_rate, policy.confidence, policy.max_samples) == (0.875, 0.95, 50)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "bayes"}, r"unknown verdict policy 'bayes'; accepted: threshold, sequential"),
        ({"min_pass_rate": 1.5}, r"min_pass_rate must be in \[0, 1\], got 1.5"),
        ({"min_pass_rate": -0.1}, r"min_pass_rate must be in \[0, 1\], got -0.1"),
        ({"min_pass_rate": "high"}, r"min_pass_rate must be a number, got 'high'"),
        ({"confidence": 1.0}, r"confidence must be strictly between 0 and 1.*got 1.0"),
        ({"max_samples": 0}, r"max_samples must be an integer >= 1, got 0"),
        ({"max_samples": 2.5}, r"max_samples must be an integer >= 1, got 2.5"),
        ({"name": "sequential", "margin": 0}, r"margin must be > 0, got 0"),
        ({"name": "sequential", "alpha": 0.5}, r"alpha must be in \(0, 0.5\), got 0.5"),
        ({"name": "sequential", "beta": 0}, r"beta must be in \(0, 0.5\), got 0"),
        (
            {"name": "sequential", "min_pass_rate": 1.0},
            r"a required rate of 1 leaves no rates on one side to tell it from",
        ),
    ],
)
def test_make_policy_rejects_bad_values(kwargs: dict, message: str) -> None:
    args = {"name": "threshold", "min_pass_rate": 0.9} | kwargs
    name = args.pop("name")
    with pytest.raises(UsageError, match=message):
        make_policy(name, **args)


def test_policies_reject_bad_counts() -> None:
    for policy in (ThresholdPolicy(0.9), IntervalPolicy(0.9), sequential_080_vs_095()):
        with pytest.raises(UsageError, match="passes must be an integer >= 0, got -1"):
            policy.settled(-1, 0, 0)
        with pytest.raises(UsageError, match="remaining must be an integer >= 0, got 1.5"):
            policy.decide(1, 0, 1.5)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="needs max_samples"):
        ThresholdPolicy(0.9).operating_characteristic(0.9)
