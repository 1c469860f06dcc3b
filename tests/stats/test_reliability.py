"""pass^k and pass@k with intervals: the functions against values computed independently
(scipy's beta quantiles, exact enumeration over binomial outcomes, to 1e-4), the record
fields the runner and the session fill, and what a plugin run shows."""

from __future__ import annotations

import itertools
import json
import math
import re

import pytest
from scipy import stats as sps

from llmcheck import stats
from llmcheck.config.settings import session_defaults
from llmcheck.core import seeded
from llmcheck.core.runner import RunSpec, SampleRunner
from llmcheck.errors import UsageError
from llmcheck.records.derived import case_aggregates, reliability_fields
from llmcheck.records.resolve import resolve_test
from llmcheck.records.schema import Interval, TestRecord


def cp(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson from scipy's beta quantiles (the reference, not llmcheck's code)."""
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else sps.beta.ppf(tail, successes, n - successes + 1)
    high = 1.0 if successes == n else sps.beta.ppf(1 - tail, successes + 1, n - successes)
    return float(low), float(high)


def chance(cs: tuple[int, ...], ns: tuple[int, ...], ps: tuple[float, ...]) -> float:
    """The probability of the outcome ``cs`` passes of independent cases (scipy)."""
    return math.prod(sps.binom.pmf(c, n, p) for c, n, p in zip(cs, ns, ps, strict=True))


def test_the_bounds_are_the_rate_interval_mapped_through_p_to_the_k():
    for c, n, k in [(17, 20, 3), (0, 10, 2), (10, 10, 5), (45, 93, 10)]:
        low, high = cp(c, n, 0.95)
        hat = stats.pass_hat_k_bounds(low, high, k)
        at = stats.pass_at_k_bounds(low, high, k)
        assert hat == pytest.approx((low**k, high**k), abs=1e-12)
        assert at == pytest.approx((1 - (1 - low) ** k, 1 - (1 - high) ** k), abs=1e-12)
    # 17/20: Clopper-Pearson [0.6211, 0.9679] (published tables); its cube and 1-(1-x)^3
    assert stats.pass_hat_k_bounds(*cp(17, 20, 0.95), 3) == pytest.approx(
        (0.23957, 0.90684), abs=1e-4)
    assert stats.pass_at_k_bounds(*cp(17, 20, 0.95), 3) == pytest.approx(
        (0.94559, 0.99997), abs=1e-4)


@pytest.mark.parametrize("p", [0.55, 0.8, 0.93, 0.99])
def test_a_single_tests_pass_hat_k_interval_covers_as_often_as_its_rate_interval(p):
    """Exact coverage over every outcome of n=30 samples: [L^k, U^k] holds p^k exactly
    when [L, U] holds p, so both cover at least 95% (Clopper-Pearson)."""
    n, k = 30, 3
    cover_rate = cover_hat = cover_at = 0.0
    for c in range(n + 1):
        weight = sps.binom.pmf(c, n, p)
        low, high = stats.clopper_pearson_interval(c, n, 0.95)
        h_low, h_high = stats.pass_hat_k_bounds(low, high, k)
        a_low, a_high = stats.pass_at_k_bounds(low, high, k)
        cover_rate += weight * (low <= p <= high)
        cover_hat += weight * (h_low <= p**k <= h_high)
        cover_at += weight * (a_low <= 1 - (1 - p) ** k <= a_high)
    assert cover_hat == pytest.approx(cover_rate, abs=1e-12)
    assert cover_at == pytest.approx(cover_rate, abs=1e-12)
    assert cover_hat >= 0.95 - 1e-12


def test_sidak_level_makes_independent_intervals_hold_at_once():
    level = stats.simultaneous_confidence(0.95, 4)
    assert level == pytest.approx(0.987259, abs=1e-6)  # 0.95 ** 0.25
    assert level**4 == pytest.approx(0.95, abs=1e-12)
    assert stats.simultaneous_confidence(0.9, 1) == pytest.approx(0.9)


def test_the_pooled_estimate_is_unbiased_for_the_mean_of_p_i_to_the_k():
    """Exact expectation over every outcome of three cases that differ in difficulty."""
    ps, ns, k = (0.5, 0.85, 0.98), (6, 8, 7), 3
    for kind, truth in (("pass_hat_k", lambda p: p**k),
                        ("pass_at_k", lambda p: 1 - (1 - p) ** k)):
        expected = 0.0
        for cs in itertools.product(*(range(n + 1) for n in ns)):
            weight = chance(cs, ns, ps)
            expected += weight * stats.pooled_k_estimate(list(cs), list(ns), k, kind)
        assert expected == pytest.approx(sum(map(truth, ps)) / 3, abs=1e-9), kind


def test_the_pooled_estimate_is_the_mean_of_brute_force_per_case_estimates():
    """A case's pass^k estimate is the share of its k-subsets of samples that all pass."""
    outcomes = [[1, 1, 0, 1, 1], [1, 0, 0, 1, 0, 1], [1, 1, 1, 1]]
    k = 2
    brute = []
    for case in outcomes:
        subsets = list(itertools.combinations(case, k))
        brute.append(sum(all(s) for s in subsets) / len(subsets))
    got = stats.pooled_k_estimate([sum(c) for c in outcomes], [len(c) for c in outcomes], k)
    assert got == pytest.approx(sum(brute) / 3, abs=1e-12)
    assert stats.pooled_k_estimate([3, 2], [5, 1], 2) is None  # a case scored < k


@pytest.mark.parametrize("ps", [(0.3, 0.8, 0.99), (0.9, 0.9, 0.9), (0.6, 0.95, 1.0)])
def test_the_pooled_interval_covers_the_mean_over_cases_that_differ(ps):
    """Exact coverage over every outcome of three cases (Clopper-Pearson at the Šidák
    level, the bounds averaged), for pass^3 and pass@3: at least 95%."""
    ns, k = (10, 12, 9), 3
    level = stats.simultaneous_confidence(0.95, 3)
    per_case = [[cp(c, n, level) for c in range(n + 1)] for n in ns]
    truth = {"pass_hat_k": sum(p**k for p in ps) / 3,
             "pass_at_k": sum(1 - (1 - p) ** k for p in ps) / 3}
    cover = dict.fromkeys(truth, 0.0)
    for cs in itertools.product(*(range(n + 1) for n in ns)):
        weight = chance(cs, ns, ps)
        bounds = [per_case[i][c] for i, c in enumerate(cs)]
        for kind, value in truth.items():
            low, high = stats.pooled_k_bounds(bounds, k, kind)
            cover[kind] += weight * (low - 1e-12 <= value <= high + 1e-12)
    assert min(cover.values()) >= 0.95, cover


@pytest.mark.parametrize("call, words", [
    (lambda: stats.pass_hat_k_bounds(0.9, 0.5, 3), "low <= high"),
    (lambda: stats.pass_at_k_bounds(0.1, 1.5, 3), "high=1.5"),
    (lambda: stats.pass_hat_k_bounds(0.1, 0.5, 0), "k must be a positive integer"),
    (lambda: stats.pass_hat_k_bounds(0.1, 0.5, True), "got True"),
    (lambda: stats.simultaneous_confidence(1.0, 3), "between 0 and 1"),
    (lambda: stats.simultaneous_confidence(0.95, 0), "cases must be a positive integer"),
    (lambda: stats.pooled_k_estimate([1, 2], [3], 2), "equally long"),
    (lambda: stats.pooled_k_estimate([1], [3], 2, "pass_hat"), "pass_hat_k, pass_at_k"),
    (lambda: stats.pooled_k_bounds([], 2), "at least one case"),
])
def test_bad_input_is_a_usage_error_naming_it(call, words):
    with pytest.raises(UsageError, match=re.escape(words)):
        call()


def run(marker: dict, p: float, seed: int, test_id: str = "t.py::test_agent") -> TestRecord:
    settings = resolve_test({**marker, "concurrency": 4}, session_defaults())
    spec = RunSpec(test_id=test_id, settings=settings, session_seed=seed)
    return SampleRunner(seeded.async_body(p, 0, 0), spec).run()


def test_a_runner_record_carries_pass_k_with_intervals_from_its_own_interval():
    r = run({"min_pass_rate": 0.9}, 0.85, seed=3)  # sequential, may stop early
    assert r.interval.method == "stopping-exact"
    assert [s.k for s in r.reliability] == [k for k in stats.RELIABILITY_KS if k <= r.scored]
    for s in r.reliability:
        assert s.pass_hat_k == r.pass_hat_k[str(s.k)] == stats.pass_hat_k(r.scored, r.passed,
                                                                          s.k)
        assert s.pass_at_k == r.pass_at_k[str(s.k)]
        assert s.pass_hat_k_interval.low == pytest.approx(r.interval.low**s.k, abs=1e-12)
        assert s.pass_hat_k_interval.high == pytest.approx(r.interval.high**s.k, abs=1e-12)
        assert s.pass_hat_k_interval.method == "stopping-exact"
        assert 1 - s.pass_at_k_interval.low == pytest.approx((1 - r.interval.low) ** s.k)
    # the record survives its JSON (schema v10 field)
    again = TestRecord.model_validate_json(r.model_dump_json())
    assert again.reliability == r.reliability


def test_reliability_fields_of_few_samples_leave_out_the_larger_k():
    interval = Interval(low=0.2, high=0.9, method="wilson", confidence=0.95)
    fields = reliability_fields(2, 3, interval)
    assert [s.k for s in fields["reliability"]] == [2, 3]
    assert fields["pass_hat_k"] == {"2": pytest.approx(1 / 3), "3": 0.0}
    assert reliability_fields(0, 0, interval)["reliability"] == []


def test_pooled_pass_k_over_parametrized_cases_uses_exact_per_case_bounds():
    """Three cases of differing difficulty, fixed n (threshold, no early stop): the
    aggregate's pass^3 is the mean of the cases' estimates, its interval the mean of
    scipy's Clopper-Pearson bounds at the Šidák level 0.95 ** (1/3), cubed."""
    marker = {"verdict": "threshold", "runs": 20, "min_pass_rate": 0.8, "early_stop": False}
    cases = [run(marker, p, seed=i, test_id=f"t.py::test_agent[c{i}]")
             for i, p in enumerate((0.55, 0.8, 0.97))]
    (agg,) = case_aggregates(cases)
    k3 = next(s for s in agg.reliability if s.k == 3)
    level = 0.95 ** (1 / 3)
    bounds = [cp(t.passed, t.scored, level) for t in cases]
    assert k3.pass_hat_k == pytest.approx(
        sum(math.comb(t.passed, 3) / math.comb(t.scored, 3) for t in cases) / 3, abs=1e-9)
    assert k3.pass_hat_k_interval.low == pytest.approx(
        sum(lo**3 for lo, _ in bounds) / 3, abs=1e-4)
    assert k3.pass_hat_k_interval.high == pytest.approx(
        sum(hi**3 for _, hi in bounds) / 3, abs=1e-4)
    assert k3.pass_at_k_interval.low == pytest.approx(
        sum(1 - (1 - lo) ** 3 for lo, _ in bounds) / 3, abs=1e-4)
    assert k3.pass_hat_k_interval.method == "cases-simultaneous"
    # wider than any one case's own 95% interval would make the mean
    naive = sum(t.interval.low**3 for t in cases) / 3
    assert k3.pass_hat_k_interval.low < naive


def test_pooled_cases_that_stopped_early_use_their_stopping_rule_interval():
    cases = [run({"min_pass_rate": 0.9}, p, seed=i, test_id=f"t.py::test_agent[c{i}]")
             for i, p in enumerate((0.7, 0.97))]
    assert all(t.interval.method == "stopping-exact" for t in cases)
    (agg,) = case_aggregates(cases)
    level = 0.95 ** 0.5
    bounds = []
    for t in cases:
        region = stats.stopping_region(t.settings.policy(), t.settings.runs)
        bounds.append(stats.stopping_interval(region, t.passed, t.scored, level))
    k2 = agg.reliability[0]
    assert k2.k == 2
    assert k2.pass_hat_k_interval.low == pytest.approx(sum(lo**2 for lo, _ in bounds) / 2)
    assert k2.pass_hat_k_interval.high == pytest.approx(sum(hi**2 for _, hi in bounds) / 2)


EPISODE_TESTS = """
import pytest
import llmcheck
from llmcheck.core.context import current_sample
from llmcheck.records.schema import EpisodeRecord


def episode(p):
    ctx = current_sample()
    steps = 0
    for _ in range(3):  # three tool steps, each right with probability p ** (1/3)
        steps += 1
        if ctx.rng.random() > p ** (1 / 3):
            break
    ctx.note_episode(EpisodeRecord(source="loop", stop_reason="final_answer", steps=steps))
    assert steps == 3, f"step {steps} went wrong"


@llmcheck.repeat(runs=30, min_pass_rate=0.5, verdict="threshold")
@pytest.mark.parametrize("p", [0.6, 0.95], ids=["hard", "easy"])
def test_agent(p):
    episode(p)


@llmcheck.repeat(runs=10, min_pass_rate=0.5)
def test_plain():
    assert True
"""


def test_a_plugin_run_reports_pass_k_in_json_terminal_and_markdown(pytester):
    pytester.makepyfile(test_episodes=EPISODE_TESTS)
    result = pytester.runpytest_inprocess("--llm-seed=7", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    report = json.loads((pytester.path / "reports" / "llmcheck.json").read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    easy = tests["test_agent[easy]"]
    k3 = next(s for s in easy["reliability"] if s["k"] == 3)
    assert k3["pass_hat_k"] == easy["pass_hat_k"]["3"]
    low, high = easy["interval"]["low"], easy["interval"]["high"]
    assert k3["pass_hat_k_interval"]["low"] == pytest.approx(low**3)
    assert k3["pass_hat_k_interval"]["high"] == pytest.approx(high**3)
    assert tests["test_plain"]["reliability"]  # every test's record has them
    (agg,) = report["aggregates"]
    pooled = next(s for s in agg["reliability"] if s["k"] == 3)
    assert pooled["pass_hat_k_interval"]["method"] == "cases-simultaneous"
    hard = tests["test_agent[hard]"]
    assert pooled["pass_hat_k"] == pytest.approx(
        (easy["pass_hat_k"]["3"] + hard["pass_hat_k"]["3"]) / 2)

    out = result.stdout.str()
    figure = (f"pass^3 {k3['pass_hat_k']:.2f} ({k3['pass_hat_k_interval']['low']:.2f}-"
              f"{k3['pass_hat_k_interval']['high']:.2f})")
    assert re.search(r"test_episodes.py::test_agent\[easy\]:\n\s+pass\^2 ", out), out
    assert figure in out
    assert "test_episodes.py::test_agent (all cases):" in out
    assert "test_plain:" not in out  # not an episode test: its figures stay in the JSON

    markdown = (pytester.path / "reports" / "llmcheck.md").read_text()
    assert "### Reliability: pass^k and pass@k" in markdown
    assert f"| 3   | {figure.removeprefix('pass^3 ')}" in markdown
    assert "`test_episodes.py::test_agent (all cases)`" in markdown
    html = (pytester.path / "reports" / "llmcheck.html").read_text()
    assert 'id="reliability-table"' in html and figure.removeprefix("pass^3 ") in html


def test_the_statistics_page_example_runs_and_prints_what_the_page_says(capsys):
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "statistics.md").read_text(encoding="utf-8")
    section = page.split("## pass^k and pass@k\n", 1)[1].split("\n## ", 1)[0]
    code, shown = re.search(r"```python\n(.*?)```\n\nprints\n\n```text\n(.*?)```",
                            section, re.S).groups()
    exec(compile(code, "docs/statistics.md", "exec"), {})  # our own page, not model output
    assert capsys.readouterr().out == shown


def test_the_terminal_lines_fit_a_narrow_terminal_without_cutting_a_figure():
    from llmcheck.records.schema import EpisodeRecord
    from llmcheck.reports.reliability import reliability_lines

    episode = EpisodeRecord(source="loop", stop_reason="final_answer", steps=2)
    record = run({"min_pass_rate": 0.9}, 0.8, seed=5,
                 test_id="tests/agents/test_refund_flow.py::test_refund[" + "x" * 60 + "]")
    assert reliability_lines([record], []) == []  # no episodes: only the JSON has them
    shown = record.model_copy(update={"samples": [s.model_copy(update={"episode": episode})
                                                  for s in record.samples]})
    lines = reliability_lines([shown], [], width=60)
    assert all(len(line) <= 60 for line in lines), lines
    text = "\n".join(lines)
    for s in shown.reliability:
        iv = s.pass_hat_k_interval
        assert f"pass^{s.k} {s.pass_hat_k:.2f} ({iv.low:.2f}-{iv.high:.2f})" in text
    assert lines[0].startswith("pass^k: all of k runs pass") and "95% interval" in text
