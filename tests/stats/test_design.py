"""A test's verdict design (llmcheck.stats.design) and the plain data the settings
table checks with (llmcheck.config): one policy per test, chosen in one place, and
the same answers as before the layers were untangled."""

from __future__ import annotations

import pytest
from scipy.stats import binom

from llmcheck import stats
from llmcheck.config.faults import FAULT_KINDS
from llmcheck.config.names import INTERVAL_METHODS, POLICY_NAMES
from llmcheck.config.settings import Resolved, session_defaults, validate
from llmcheck.errors import UsageError
from llmcheck.injection.catalogue import KINDS, FaultPlan
from llmcheck.records.resolve import resolve_test
from llmcheck.records.schema import TestSettings, false_fail_chance


def test_a_tests_settings_give_one_policy_however_often_asked() -> None:
    settings = resolve_test({"min_pass_rate": 0.85}, session_defaults())
    policy = settings.policy()
    assert settings.policy() is policy
    # a copy that travelled as JSON (journal, xdist worker) gets the very same policy
    again = TestSettings.model_validate_json(settings.model_dump_json())
    assert again.policy() is policy


@pytest.mark.parametrize("verdict", POLICY_NAMES)
def test_make_policy_shares_equal_designs(verdict: str) -> None:
    first = stats.make_policy(verdict, min_pass_rate=0.8, max_samples=40)
    assert stats.make_policy(verdict, min_pass_rate=0.8, max_samples=40) is first
    assert stats.make_policy(verdict, min_pass_rate=0.8, max_samples=41) is not first


@pytest.mark.parametrize("bad", [True, [0.9], float("nan")])
def test_a_shared_policy_still_rejects_a_bad_rate(bad: object) -> None:
    stats.make_policy("threshold", min_pass_rate=1, max_samples=10)  # 1 (and True) cached
    with pytest.raises(UsageError, match="min_pass_rate must be"):
        stats.make_policy("threshold", min_pass_rate=bad, max_samples=10)  # type: ignore[arg-type]


def test_a_run_and_the_planner_choose_the_same_policy_under_a_session_budget() -> None:
    session = {**session_defaults(), "session_alpha": Resolved(0.05, "command line")}
    for verdict in POLICY_NAMES:
        settings = resolve_test({"verdict": verdict}, session, session_tests=30)
        chosen = stats.resolve_policy(verdict, min_pass_rate=0.9, confidence=0.95,
                                      margin=0.05, alpha=0.05, beta=0.05, runs=None,
                                      session_alpha=0.05, session_tests=30)
        assert settings.policy() is chosen.policy
        assert settings.beta == chosen.beta
    # the sequential test's beta is the Sidak share of the session's 0.05
    assert stats.session_share(0.05, 30) == pytest.approx(1 - 0.95 ** (1 / 30))


def test_a_never_passing_design_names_the_marker() -> None:
    with pytest.raises(UsageError, match=r"^@pytest.mark.llm: this test can never pass"):
        resolve_test({"verdict": "interval", "runs": 3, "min_pass_rate": 0.99},
                     session_defaults())


def test_false_fail_chance_matches_the_binomial() -> None:
    """30 tests at a true 0.95 against 0.9 with a fixed N=20 (pass iff 18 or more pass):
    the session fails at least one test 90% of the time (DESIGN.md)."""
    settings = resolve_test({"verdict": "threshold", "runs": 20}, session_defaults())
    expected = 1 - binom.sf(17, 20, 0.95) ** 30
    assert false_fail_chance([settings] * 30) == pytest.approx(expected, abs=1e-4)
    assert expected > 0.9
    assert stats.false_fail_chance([]) is None


def test_the_cases_bootstrap_is_seeded_by_the_test_and_widens_with_disagreement() -> None:
    agree = stats.cases_bootstrap([9, 9, 9, 9], [10, 10, 10, 10], 0.95, "t")
    split = stats.cases_bootstrap([10, 10, 8, 8], [10, 10, 10, 10], 0.95, "t")
    disagree = stats.cases_bootstrap([10, 10, 0, 0], [10, 10, 10, 10], 0.95, "t")
    assert agree == (pytest.approx(0.9), pytest.approx(0.9))
    assert split is not None and disagree is not None
    assert split[1] - split[0] < disagree[1] - disagree[0]
    assert disagree == stats.cases_bootstrap([10, 10, 0, 0], [10, 10, 10, 10], 0.95, "t")
    assert stats.cases_bootstrap([0, 0], [0, 0], 0.95, "t") is None


def test_the_fault_setting_is_checked_at_the_bottom_and_read_by_the_catalogue() -> None:
    assert KINDS is FAULT_KINDS
    value = validate("faults", " timeout=0.1, malformed:0.05,rate_limit:0.3", "--llm-faults")
    # canonical (catalogue order, the old name mapped), and the same plan as the text given
    assert value == "rate_limit:0.3,timeout:0.1,stream_cut:0.05"
    assert FaultPlan.parse(value) == FaultPlan(
        rates={"rate_limit": 0.3, "timeout": 0.1, "stream_cut": 0.05})
    assert not FaultPlan.build(validate("faults", "none", "--llm-faults"))
    with pytest.raises(UsageError, match=r"^--llm-faults=rate_limt:0.3 is invalid \(unknown "
                                         r"fault kind 'rate_limt' \(did you mean rate_limit\?\); "
                                         r"the kinds are rate_limit"):
        validate("faults", "rate_limt:0.3", "--llm-faults")
    with pytest.raises(UsageError, match="add up to 1.2, more than 1"):
        FaultPlan(rates={"rate_limit": 0.6, "timeout": 0.6})


def test_the_names_a_setting_accepts_are_the_ones_stats_computes() -> None:
    for method in INTERVAL_METHODS:
        low, high = stats.confidence_interval(8, 10, 0.95, method)
        assert 0 < low < 0.8 < high < 1
    for name in POLICY_NAMES:
        assert validate("verdict", name.upper(), "--llm-verdict") == name
