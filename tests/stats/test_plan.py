"""``llmcheck plan``: the sample-size planner, and its exact stopping-time distribution."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import scipy.stats

from llmcheck.cli.main import main
from llmcheck.errors import UsageError
from llmcheck.stats import make_policy
from llmcheck.stats.planning import (
    PLAN_MAX_SAMPLES,
    make_plan,
    plan_options,
    render_plan,
    stopping_time_distribution,
)

KEYS = {
    "policy", "min_pass_rate", "margin", "alpha", "beta", "confidence", "max_samples",
    "passes_needed", "session_alpha", "fixed_samples", "fixed_critical_value", "critical_value",
    "upper_boundary", "lower_boundary", "rates", "tests", "lower_rate", "upper_rate",
    "p_pass_at_lower", "p_pass_at_upper", "p_any_fail_at_upper", "p_any_pass_at_lower",
    "warning",
}
RATE_KEYS = {"rate", "p_pass", "mean_samples", "p95_samples"}


def run_plan(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["plan", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    return json.loads(run_plan(capsys, "--json", *args))


def by_rate(plan: dict) -> dict[float, dict]:
    return {row["rate"]: row for row in plan["rates"]}


# -- the stopping-time distribution ------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        make_policy("threshold", min_pass_rate=0.9, max_samples=20),
        make_policy("interval", min_pass_rate=0.8, max_samples=40),
        make_policy("sequential", min_pass_rate=0.875, margin=0.075),
        make_policy("sequential", min_pass_rate=0.875, margin=0.075, max_samples=20),
    ],
    ids=["threshold", "interval", "sequential", "sequential-short"],
)
@pytest.mark.parametrize("p", [0.0, 0.5, 0.8, 0.875, 0.95, 1.0])
def test_stopping_time_is_a_distribution_that_agrees_with_the_oc(policy, p) -> None:
    st = stopping_time_distribution(policy, p)
    assert len(st.pass_at) == len(st.fail_at) == policy.max_samples + 1
    assert st.total == pytest.approx(1.0, abs=1e-12)
    assert min(st.pass_at + st.fail_at) >= 0.0
    p_pass, mean = policy.operating_characteristic(p)
    assert st.p_pass == pytest.approx(p_pass, abs=1e-12)
    assert st.mean == pytest.approx(mean, abs=1e-12)


def test_the_95th_percentile_is_the_smallest_n_reaching_95_percent() -> None:
    policy = make_policy("sequential", min_pass_rate=0.875, margin=0.075)
    st = stopping_time_distribution(policy, 0.9)
    q = st.quantile(0.95)
    cumulative = [math.fsum(st.pass_at[: n + 1] + st.fail_at[: n + 1]) for n in range(51)]
    assert cumulative[q] >= 0.95 > cumulative[q - 1]
    assert st.quantile(1.0) <= policy.max_samples and st.quantile(0.0) == 0


def test_the_stopping_time_needs_a_budget_and_a_rate() -> None:
    with pytest.raises(UsageError, match="max_samples"):
        stopping_time_distribution(make_policy("threshold", min_pass_rate=0.9), 0.9)
    with pytest.raises(UsageError, match="p must be in"):
        stopping_time_distribution(make_policy("threshold", min_pass_rate=0.9,
                                               max_samples=5), 1.5)


# -- the documented figures ---------------------------------------------------------


def test_defaults_plan_every_policy_at_rates_around_the_required_one(capsys) -> None:
    out = run_plan(capsys)
    assert out.startswith("llmcheck plan: required rate 0.9, margin 0.05")
    # every policy runs the sequential design's N when runs is not set
    assert "threshold: N=93 at most, passes iff >= 84/93 pass" in out
    assert "sequential: N=93 at most; the equivalent fixed test runs N=93" in out
    assert "interval: N=93 at most, passes iff >= 90/93 pass" in out
    assert "warning" not in out
    assert out.count("|   true rate |   P(pass) |") == 3
    # m +/- 0, 1, 2 margins; 1.0 is not inside (0, 1)
    plans = plan_json(capsys)
    assert [[r["rate"] for r in plan["rates"]] for plan in plans] == [[0.8, 0.85, 0.9, 0.95]] * 3
    assert [plan["policy"] for plan in plans] == ["threshold", "sequential", "interval"]


def test_threshold_at_20_runs_shows_the_known_error_rates(capsys) -> None:
    out = run_plan(capsys, "--runs", "20", "--policy", "threshold")
    false_pass = scipy.stats.binom.sf(17, 20, 0.85)  # P(Binom(20, 0.85) >= 18) = 0.4049
    false_fail = scipy.stats.binom.cdf(17, 20, 0.95)  # P(Binom(20, 0.95) < 18) = 0.0755
    assert f"{false_pass:.4f}" == "0.4049" and f"{false_fail:.4f}" == "0.0755"
    assert "|        0.85 |    0.4049 |" in out
    assert "|        0.95 |    0.9245 |" in out
    assert "1 test: P(at least one FAIL | every test at 0.95) = 0.0755" in out
    assert "P(at least one PASS | every test at 0.85) = 0.4049" in out
    [plan] = plan_json(capsys, "--runs", "20", "--policy", "threshold")
    rows = by_rate(plan)
    assert rows[0.85]["p_pass"] == pytest.approx(false_pass, abs=1e-12)
    assert 1 - rows[0.95]["p_pass"] == pytest.approx(false_fail, abs=1e-12)
    assert plan["max_samples"] == 20 and plan["passes_needed"] == 18


def test_sequential_design_and_expected_samples(capsys) -> None:
    args = ("--min-pass-rate", "0.875", "--margin", "0.075", "--policy", "sequential")
    [plan] = plan_json(capsys, *args, "--rates", "0.8,0.95")
    assert (plan["max_samples"], plan["fixed_samples"]) == (50, 50)
    assert (plan["critical_value"], plan["fixed_critical_value"]) == (45, 45)
    assert plan["upper_boundary"] == pytest.approx(3.776, abs=5e-4)
    assert plan["lower_boundary"] == pytest.approx(-2.944, abs=5e-4)
    rows = by_rate(plan)
    assert rows[0.8]["mean_samples"] == pytest.approx(21.25, abs=5e-3)
    assert rows[0.95]["mean_samples"] == pytest.approx(34.19, abs=5e-3)
    assert rows[0.8]["p_pass"] <= 0.05 and 1 - rows[0.95]["p_pass"] <= 0.05
    assert max(row["p95_samples"] for row in plan["rates"]) <= 50
    out = run_plan(capsys, *args, "--rates", "0.8,0.95")
    assert "pass once LLR >= 3.776, fail once LLR <= -2.944" in out
    assert "|         0.8 |    0.0495 |          21.25 |" in out
    assert "|        0.95 |    0.9503 |          34.19 |" in out


# -- sessions of K tests -------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 7, 200])
def test_session_figures_for_k_tests(capsys, k) -> None:
    plans = plan_json(capsys, "--tests", str(k), "--runs", "30")
    for plan in plans:
        policy = make_policy(plan["policy"], min_pass_rate=0.9, max_samples=30)
        upper = policy.operating_characteristic(0.95)[0]
        lower = policy.operating_characteristic(0.85)[0]
        assert plan["tests"] == k
        assert plan["p_pass_at_upper"] == pytest.approx(upper, abs=1e-12)
        assert plan["p_any_fail_at_upper"] == pytest.approx(1 - upper**k, abs=1e-12)
        assert plan["p_any_pass_at_lower"] == pytest.approx(1 - (1 - lower) ** k, abs=1e-12)
    out = run_plan(capsys, "--tests", str(k), "--runs", "30")
    assert f"{k} test{'s' if k > 1 else ''}: P(at least one FAIL" in out


# -- JSON ----------------------------------------------------------------------------


def test_json_has_the_same_keys_for_every_policy(capsys) -> None:
    plans = plan_json(capsys, "--rates", "0.85,0.9", "--tests", "3")
    assert len(plans) == 3
    for plan in plans:
        assert set(plan) == KEYS
        assert all(set(row) == RATE_KEYS for row in plan["rates"])
    seq = next(plan for plan in plans if plan["policy"] == "sequential")
    assert seq["passes_needed"] is None and seq["fixed_samples"] == seq["max_samples"] == 93
    thr = next(plan for plan in plans if plan["policy"] == "threshold")
    assert thr["fixed_samples"] is None and thr["warning"] is None


def test_the_text_is_rendered_from_the_same_plan_as_the_json(capsys) -> None:
    opts = plan_options(runs="20", policy="threshold,interval", rates="0.9")
    plans = make_plan(opts)
    assert [p["policy"] for p in plans] == ["threshold", "interval"]
    assert render_plan(plans) == run_plan(capsys, "--runs", "20", "--policy",
                                          "threshold,interval", "--rates", "0.9").rstrip("\n")


def test_runs_applies_to_sequential_and_warns_when_too_short(capsys) -> None:
    [plan] = plan_json(capsys, "--runs", "40", "--policy", "sequential")
    assert plan["max_samples"] == 40 and plan["fixed_samples"] == 93
    assert "N=93 would" in plan["warning"]


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--min-pass-rate", "1.5"], "--min-pass-rate=1.5 is invalid (out of range)"),
        (["--min-pass-rate", "abc"], "--min-pass-rate=abc is invalid"),
        (["--min-pass-rate", "1"], "--min-pass-rate=1: a required rate of 1 leaves no rates"),
        (["--margin", "0.5"], "--margin=0.5 is invalid (out of range): expected a number > 0"),
        (["--min-pass-rate", "0"], "--min-pass-rate=0: a required rate of 0 leaves no rates"),
        (["--alpha", "0.5"], "--alpha=0.5 is invalid (out of range)"),
        (["--beta", "0"], "--beta=0 is invalid (out of range)"),
        (["--confidence", "1"], "--confidence=1 is invalid"),
        (["--runs", "0"], "--runs=0 is invalid (out of range)"),
        (["--runs", str(PLAN_MAX_SAMPLES + 1)], f"<= {PLAN_MAX_SAMPLES}"),
        (["--tests", "0"], "--tests=0 is invalid (out of range): expected an integer >= 1"),
        (["--tests", "2.5"], "--tests=2.5 is invalid: expected an integer >= 1"),
        (["--rates", "0.8,1"], "--rates=0.8,1 is invalid (1 is not strictly between 0 and 1)"),
        (["--rates", "0.8,,0.9"], "(an empty entry is not a number)"),
        (["--rates", "0.8,x"], "(x is not a number)"),
        (["--rates", "nan"], "(nan is not strictly between 0 and 1)"),
        (["--policy", "strict"], "--policy=strict is invalid: expected one of threshold"),
        (["--margin", "0.004", "--policy", "sequential"], "take N=15234 samples, more than 5000"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, expected) -> None:
    assert main(["plan", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmcheck: error: ")
    assert expected in lines[0]


def test_plan_runs_as_a_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "llmcheck.cli.main", "plan", "--runs", "20", "--policy", "threshold",
         "--tests", "5"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "threshold: N=20 at most, passes iff >= 18/20 pass" in proc.stdout
    any_fail = 1 - scipy.stats.binom.sf(17, 20, 0.95) ** 5  # 1 - 0.9245^5
    assert f"5 tests: P(at least one FAIL | every test at 0.95) = {any_fail:.4f}" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "llmcheck.cli.main", "plan", "--tests", "-1"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_session_alpha_plans_what_a_session_of_k_tests_would_run(capsys) -> None:
    args = ("--tests", "30", "--session-alpha", "0.05", "--rates", "0.85,0.95")
    out = run_plan(capsys, *args)
    assert "session alpha 0.05 over 30 tests" in out
    plans = {plan["policy"]: plan for plan in plan_json(capsys, *args)}
    per_test = 1 - 0.95 ** (1 / 30)
    seq = plans["sequential"]
    assert seq["beta"] == pytest.approx(per_test) and seq["max_samples"] > 93
    for plan in plans.values():  # the whole session fails a good suite at most 5%
        assert plan["p_any_fail_at_upper"] <= 0.05 + 1e-12
    # the sequential design spends the extra samples where they are needed
    mean = {name: by_rate(plan)[0.95]["mean_samples"] for name, plan in plans.items()}
    assert mean["sequential"] < mean["threshold"] < mean["interval"]


def test_a_required_rate_near_one_narrows_the_zone_on_that_side(capsys) -> None:
    [plan] = plan_json(capsys, "--min-pass-rate", "0.99", "--policy", "sequential")
    assert (plan["lower_rate"], plan["upper_rate"]) == (0.94, 0.995)
    assert main(["plan", "--min-pass-rate", "1"]) == 2
    assert "a required rate of 1 leaves no rates on one side" in capsys.readouterr().err
