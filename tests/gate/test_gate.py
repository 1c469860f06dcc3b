"""The pre-merge gate (llmcheck.stats.compare, llmcheck.gate.compare, llmcheck.gate.baseline,
``llmcheck compare``, ``--llm-baseline``): exact tests against scipy and reference
values, corrections against references, error rates and power by seeded simulation, accumulation,
exit codes, and the plugin driven through pytester."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy import stats

from llmcheck.cli.main import main
from llmcheck.errors import ReportError, UsageError
from llmcheck.gate.baseline import (
    BASELINE_VERSION,
    Baseline,
    BaselineRun,
    BaselineTest,
    baseline_from_session,
    load_baseline,
    load_counts,
    save_baseline,
    update_baseline,
)
from llmcheck.gate.compare import Counts, compare
from llmcheck.records.schema import (
    Interval,
    SessionRecord,
    TestRecord,
    TestSettings,
    Verdict,
    save_session,
)
from llmcheck.stats import compare as stats_compare
from llmcheck.stats.compare import benjamini_hochberg, holm, p_value

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def record(nodeid: str, passed: int, failed: int, *, errors: int = 0, m: float = 0.9,
           fingerprint: str | None = "f0", model: str | None = "openai/gpt-4o-mini"
           ) -> TestRecord:
    scored = passed + failed
    settings = TestSettings(runs=max(1, scored + errors), verdict="threshold",
                            min_pass_rate=m, confidence=0.95, margin=0.05, alpha=0.05,
                            beta=0.05, interval="wilson", early_stop=False, concurrency=4)
    return TestRecord(
        nodeid=nodeid, settings=settings, run=scored + errors, passed=passed, failed=failed,
        errors=errors, pass_rate=passed / scored if scored else None,
        interval=Interval(low=0.0, high=1.0, confidence=0.95),
        verdict=Verdict(outcome="passed", conclusive=True, reason="why"), duration=1.0,
        samples=[], fingerprint=fingerprint, model=model)


def session(*tests: TestRecord, seed: int = 1, started: datetime = T0) -> SessionRecord:
    return SessionRecord.assemble(list(tests), seed=seed, started=started)


# -- the exact tests --------------------------------------------------------------------

def test_reference_values_and_scipy_orientation():
    """18/20 on BASE against 12/20 on HEAD: one-sided Fisher 0.0324, Boschloo 0.0193;
    the samples are the table's columns and the alternative is BASE passing more."""
    assert p_value(18, 2, 12, 8, "fisher") == pytest.approx(0.0324, abs=1e-4)
    assert p_value(18, 2, 12, 8, "boschloo") == pytest.approx(0.0193, abs=1e-4)
    table = [[18, 12], [2, 8]]
    assert p_value(18, 2, 12, 8, "fisher") == pytest.approx(
        stats.fisher_exact(table, alternative="greater").pvalue, abs=1e-12)
    assert p_value(18, 2, 12, 8, "boschloo") == pytest.approx(
        stats.boschloo_exact(table, alternative="greater").pvalue, abs=1e-12)
    # the other way round (HEAD better) is no evidence of a drop
    assert p_value(12, 8, 18, 2, "fisher") > 0.99 and p_value(12, 8, 18, 2) > 0.98
    assert p_value(18, 2, 12, 8) < p_value(18, 2, 12, 8, "fisher")  # Boschloo: more power


@pytest.mark.parametrize(("table"), [(40, 0, 30, 10), (5, 15, 0, 20), (93, 0, 80, 13),
                                     (7, 3, 9, 11), (0, 10, 0, 10), (10, 0, 10, 0)])
def test_p_values_agree_with_scipy(table):
    bp, bf, hp, hf = table
    scipy_table = [[bp, hp], [bf, hf]]
    assert p_value(*table, "fisher") == pytest.approx(
        stats.fisher_exact(scipy_table, alternative="greater").pvalue, abs=1e-4)
    assert p_value(*table, "boschloo") == pytest.approx(
        stats.boschloo_exact(scipy_table, alternative="greater").pvalue, abs=1e-4)


@pytest.mark.parametrize(("n_b", "n_h"), [(12, 15), (20, 20)])
def test_the_enumeration_behind_power_is_scipys_test(n_b, n_h):
    """Power needs every outcome's p-value: the vectorized enumeration gives scipy's
    Fisher p-values and Boschloo's (never below scipy's, whose optimizer can stop short
    of the supremum), for every table of these sizes."""
    outcomes = stats_compare._Outcomes(n_b, n_h)
    for x_b in range(n_b + 1):
        for x_h in range(n_h + 1):
            table = [[x_b, x_h], [n_b - x_b, n_h - x_h]]
            fisher = stats.fisher_exact(table, alternative="greater").pvalue
            assert outcomes.fisher[x_b, x_h] == pytest.approx(fisher, abs=1e-10)
            boschloo = stats.boschloo_exact(table, alternative="greater").pvalue
            mine = outcomes.boschloo_p(x_b, x_h)
            assert mine == pytest.approx(boschloo, abs=1e-6), (x_b, x_h)


def test_large_tables_get_boschloo_from_the_enumeration_with_scipys_value():
    n_b, n_h = 465, 120
    assert (n_b + 1) * (n_h + 1) > stats_compare.SCIPY_BOSCHLOO_MAX_OUTCOMES
    for x_b, x_h in [(441, 105), (441, 100), (450, 118)]:
        table = [[x_b, x_h], [n_b - x_b, n_h - x_h]]
        assert p_value(x_b, n_b - x_b, x_h, n_h - x_h) == pytest.approx(
            stats.boschloo_exact(table, alternative="greater").pvalue, abs=1e-6)


def test_bad_inputs_are_usage_errors():
    with pytest.raises(UsageError, match="counts"):
        p_value(-1, 2, 3, 4)
    with pytest.raises(UsageError, match="unknown test"):
        p_value(1, 2, 3, 4, "barnard")
    with pytest.raises(UsageError, match="unknown correction"):
        stats_compare.adjust([0.1], "bonferroni")
    with pytest.raises(UsageError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])
    assert p_value(0, 0, 5, 5) == 1.0  # nothing scored on one side: no evidence


# -- corrections ------------------------------------------------------------------------

PVALUES = [0.01, 0.04, 0.03, 0.005, 0.2, 0.03]


def test_holm_matches_hand_computed_values():
    """Sorted: 0.005 0.01 0.03 0.03 0.04 0.2, times 6 5 4 3 2 1, made monotone (these
    are statsmodels' multipletests(method="holm") values)."""
    assert holm(PVALUES) == pytest.approx([0.05, 0.12, 0.12, 0.03, 0.2, 0.12])
    assert holm([0.5]) == [0.5] and holm([]) == []
    assert holm([0.04, 0.01]) == pytest.approx([0.04, 0.02])
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # never above 1, never below an earlier step


def test_holm_is_the_step_down_procedure_by_definition():
    rng = np.random.default_rng(7)
    for _ in range(200):
        ps = list(rng.uniform(0, 0.2, size=rng.integers(1, 12)))
        m = len(ps)
        order = sorted(range(m), key=lambda i: ps[i])
        for alpha in (0.01, 0.05, 0.1):
            # reject the first k sorted hypotheses, k the first with p_(k) > alpha/(m-k)
            rejected = set()
            for rank, i in enumerate(order):
                if ps[i] > alpha / (m - rank):
                    break
                rejected.add(i)
            assert {i for i, p in enumerate(holm(ps)) if p <= alpha} == rejected


def test_bh_matches_scipy():
    assert benjamini_hochberg(PVALUES) == pytest.approx(
        list(stats.false_discovery_control(PVALUES, method="bh")))
    rng = np.random.default_rng(8)
    for _ in range(200):
        ps = rng.uniform(0, 1, size=rng.integers(1, 30)) ** 3
        assert benjamini_hochberg(ps) == pytest.approx(
            list(stats.false_discovery_control(ps, method="bh")), abs=1e-12)


# -- the comparison ---------------------------------------------------------------------

def test_a_true_drop_from_095_to_06_is_flagged():
    rng = np.random.default_rng(2024)
    base = [Counts("t::drops", int(rng.binomial(40, 0.95)), 0)]
    head = [Counts("t::drops", int(rng.binomial(40, 0.6)), 0)]
    base = [Counts(c.nodeid, c.passed, 40 - c.passed, 0.9) for c in base]
    head = [Counts(c.nodeid, c.passed, 40 - c.passed, 0.9) for c in head]
    # among steady tests, as in a real session
    for i, rate in enumerate([0.9, 0.8, 0.97]):
        for side in (base, head):
            k = int(rng.binomial(40, rate))
            side.append(Counts(f"t::steady{i}", k, 40 - k, 0.9))
    for test in stats_compare.TEST_NAMES:
        for correction in stats_compare.CORRECTIONS:
            result = compare(base, head, test=test, correction=correction)
            assert [r.nodeid for r in result.regressions] == ["t::drops"]
            assert result.compared == 4


def false_flag_sessions(correction: str, test: str, repeats: int = 200) -> int:
    """Seeded sessions of five unchanged tests (40 samples a side): how many flag any."""
    rng = np.random.default_rng(1234)
    rates = [0.97, 0.95, 0.9, 0.8, 0.7]
    flagged = 0
    for _ in range(repeats):
        base, head = [], []
        for i, rate in enumerate(rates):
            for side in (base, head):
                k = int(rng.binomial(40, rate))
                side.append(Counts(f"t::{i}", k, 40 - k, 0.9))
        flagged += bool(compare(base, head, test=test, correction=correction,
                                detectable=False).regressions)
    return flagged


@pytest.mark.parametrize("correction", stats_compare.CORRECTIONS)
def test_with_no_change_a_session_is_flagged_at_most_alpha_of_the_time(correction):
    """200 seeded sessions with nothing changed: the share flagged is no more than
    alpha = 0.05, by a one-sided exact binomial test (it is in fact far below: the
    exact tests are conservative at these sizes, and the margin floor adds to that)."""
    flagged = false_flag_sessions(correction, "boschloo")
    assert stats.binomtest(flagged, 200, 0.05, alternative="greater").pvalue > 0.01, flagged
    assert flagged <= 10


def test_statuses_new_removed_changed_and_no_data():
    base = [Counts("t::same", 38, 2, 0.9, "f", "m"), Counts("t::gone", 20, 0, 0.9),
            Counts("t::edited", 38, 2, 0.9, "f1", "m"), Counts("t::model", 38, 2, 0.9, "f", "a"),
            Counts("t::rate", 38, 2, 0.9), Counts("t::old_report", 38, 2, 0.9, None, "m"),
            Counts("t::errors", 38, 2, 0.9)]
    head = [Counts("t::same", 10, 30, 0.9, "f", "m"), Counts("t::added", 20, 0, 0.9),
            Counts("t::edited", 10, 30, 0.9, "f2", "m"), Counts("t::model", 10, 30, 0.9, "f", "b"),
            Counts("t::rate", 10, 30, 0.95), Counts("t::old_report", 38, 2, 0.9, "f", "m"),
            Counts("t::errors", 0, 0, 0.9)]
    result = compare(base, head)
    status = {r.nodeid: (r.status, r.note) for r in result.rows}
    assert status["t::same"][0] == "regressed"
    assert status["t::added"] == ("new", "not in BASE")
    assert status["t::gone"] == ("removed", "not in HEAD")
    assert status["t::edited"][0] == "changed" and "fingerprint" in status["t::edited"][1]
    assert status["t::model"] == ("changed", "model a -> b")
    assert status["t::rate"] == ("changed", "required rate 0.9 -> 0.95")
    assert status["t::old_report"][0] == "ok"  # an unknown fingerprint matches any
    assert status["t::errors"] == ("no data", "no scored sample in HEAD")
    assert result.compared == 2  # only those are corrected for
    assert [r.status for r in result.rows][:1] == ["regressed"]  # regressions first
    assert {r.status for r in result.rows if r.p is None} >= {"new", "removed", "changed"}


def test_the_margin_is_a_floor_on_the_drop():
    base, head = [Counts("t::big", 9800, 200, 0.9)], [Counts("t::big", 9600, 400, 0.9)]
    result = compare(base, head, detectable=False)  # 0.98 -> 0.96: p tiny, drop 0.02
    assert result.rows[0].p_corrected < 1e-10
    assert result.rows[0].status == "ok"
    assert result.rows[0].note == ("significant, below the margin; Fisher's p (samples too "
                                   "large for Boschloo's)")
    assert compare(base, head, margin=0.01, detectable=False).rows[0].status == "regressed"
    small = compare([Counts("t::s", 19, 1)], [Counts("t::s", 16, 4)])
    assert small.rows[0].status == "ok" and small.rows[0].note == "drop not significant"


def test_errors_are_not_counted():
    counts = Counts.of_test(record("t::e", 30, 5, errors=20))
    assert (counts.passed, counts.failed, counts.scored) == (30, 5, 35)


# -- power ------------------------------------------------------------------------------

def simulated_power(n_base: int, n_head: int, base_rate: float, head_rate: float, test: str,
                    repeats: int = 2000, seed: int = 11) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(repeats):
        kb, kh = int(rng.binomial(n_base, base_rate)), int(rng.binomial(n_head, head_rate))
        result = compare([Counts("t", kb, n_base - kb)], [Counts("t", kh, n_head - kh)],
                         test=test, detectable=False)
        hits += bool(result.regressions)
    return hits / repeats


@pytest.mark.parametrize("test", stats_compare.TEST_NAMES)
def test_accumulating_the_baseline_raises_power(test):
    """0.95 -> 0.80 at 20 against 20 is caught only a fifth (Fisher) to a third
    (Boschloo) of the time; against a baseline of 5 runs of 20 (100 samples) about
    three fifths. The simulation agrees with the exact power."""
    one_run = simulated_power(20, 20, 0.95, 0.80, test)
    five_runs = simulated_power(100, 20, 0.95, 0.80, test)
    exact_one = stats_compare.power(20, 20, 0.95, 0.80, test=test)
    exact_five = stats_compare.power(100, 20, 0.95, 0.80, test=test)
    se = (0.25 / 2000) ** 0.5
    assert abs(one_run - exact_one) < 4 * se and abs(five_runs - exact_five) < 4 * se
    assert 0.15 < exact_one < 0.35
    assert five_runs > one_run + 0.2 and exact_five > 0.5
    assert stats_compare.min_detectable_drop(100, 20, 0.95, test=test).drop < \
        stats_compare.min_detectable_drop(20, 20, 0.95, test=test).drop


@pytest.mark.parametrize(("n_b", "n_h"), [(20, 20), (30, 12)])
@pytest.mark.parametrize("test", stats_compare.TEST_NAMES)
def test_power_is_the_chance_of_the_gates_own_decision(n_b, n_h, test):
    """Exact power = the sum, over every outcome the gate would flag (p_value below the
    level and drop >= margin, as compare() decides), of its binomial probability."""
    total = 0.0
    for x_b in range(n_b + 1):
        for x_h in range(n_h + 1):
            if p_value(x_b, n_b - x_b, x_h, n_h - x_h, test) < 0.05 and \
                    x_b / n_b - x_h / n_h >= 0.05 - 1e-12:
                total += stats.binom.pmf(x_b, n_b, 0.95) * stats.binom.pmf(x_h, n_h, 0.8)
    assert stats_compare.power(n_b, n_h, 0.95, 0.8, test=test) == pytest.approx(total, abs=1e-9)


def test_min_detectable_drop_is_where_power_reaches_80_percent():
    for n_b, n_h, rate in [(20, 20, 0.95), (93, 93, 0.9), (465, 93, 0.95)]:
        found = stats_compare.min_detectable_drop(n_b, n_h, rate, level=0.01)
        assert found.exact and found.drop is not None
        at = stats_compare.power(n_b, n_h, rate, rate - found.drop, level=0.01)
        below = stats_compare.power(n_b, n_h, rate, rate - found.drop + 0.002, level=0.01)
        assert at >= 0.8 > below
    assert stats_compare.min_detectable_drop(3, 3, 0.9).drop is None  # not even a fall to 0
    assert str(stats_compare.min_detectable_drop(3, 3, 0.9)) == "none"
    # the margin is part of the rule: nothing smaller than it is ever flagged
    assert stats_compare.min_detectable_drop(5000, 5000, 0.9, margin=0.1).drop >= 0.1


def test_power_uses_the_normal_approximation_only_for_huge_samples():
    assert stats_compare.exact_power_applies(930, 93)
    assert not stats_compare.exact_power_applies(20000, 100)
    approx = stats_compare.min_detectable_drop(20000, 100, 0.9)
    assert not approx.exact and str(approx).startswith("~")
    # where both apply they agree roughly (balanced samples)
    exact = stats_compare.power(400, 400, 0.9, 0.83, exact=True)
    normal = stats_compare.power(400, 400, 0.9, 0.83, exact=False)
    assert abs(exact - normal) < 0.05


# -- baselines --------------------------------------------------------------------------

def test_baseline_accumulates_runs_of_the_same_test():
    runs = [session(record("t::a", 19, 1), record("t::b", 20, 0), seed=i,
                    started=T0 + timedelta(days=i)) for i in range(5)]
    baseline = baseline_from_session(runs[0])
    for run in runs[1:]:
        baseline, lines = update_baseline(baseline, run)
        assert lines == ["merged 2 test(s) into their baseline"]
    a = next(t for t in baseline.tests if t.nodeid == "t::a")
    assert (a.passed, a.failed, a.runs) == (95, 5, 5)
    assert (a.first_run, a.last_run) == (T0, T0 + timedelta(days=4))
    assert a.counts().scored == 100
    # the same run twice is not counted twice
    again, lines = update_baseline(baseline, runs[-1])
    assert next(t for t in again.tests if t.nodeid == "t::a").runs == 5
    assert any("already merged" in line for line in lines)
    # a moving window keeps the latest runs
    later = session(record("t::a", 10, 10), seed=9, started=T0 + timedelta(days=9))
    windowed, _ = update_baseline(baseline, later, max_runs=2)
    a = next(t for t in windowed.tests if t.nodeid == "t::a")
    assert (a.passed, a.failed, a.runs, a.first_run) == (29, 11, 2, T0 + timedelta(days=4))


def test_baseline_update_replaces_a_test_that_changed_and_says_so():
    baseline = baseline_from_session(session(
        record("t::a", 19, 1), record("t::b", 19, 1), record("t::c", 19, 1),
        record("t::kept", 5, 0), record("t::old", 19, 1, fingerprint=None)))
    new = session(record("t::a", 10, 10, fingerprint="f1"),
                  record("t::b", 10, 10, model="anthropic/claude"),
                  record("t::c", 10, 10, m=0.95), record("t::new", 3, 1),
                  record("t::old", 18, 2), record("t::allerrors", 0, 0, errors=5),
                  seed=2, started=T0 + timedelta(days=1))
    updated, lines = update_baseline(baseline, new)
    by_id = {t.nodeid: t for t in updated.tests}
    for nodeid in ("t::a", "t::b", "t::c"):
        assert (by_id[nodeid].passed, by_id[nodeid].runs) == (10, 1)
    assert by_id["t::old"].runs == 2 and by_id["t::old"].fingerprint == "f0"
    assert by_id["t::kept"].runs == 1 and "t::allerrors" not in by_id
    text = "\n".join(lines)
    assert "replaced 3 test(s)" in text and "t::a (fingerprint changed)" in text
    assert "model openai/gpt-4o-mini -> anthropic/claude" in text
    assert "required rate 0.9 -> 0.95" in text
    assert "added 1 new test(s): t::new" in text and "kept 1 test(s)" in text


def test_baseline_file_round_trip_and_privacy(tmp_path):
    path = save_baseline(baseline_from_session(session(record("t::a", 19, 1))),
                         tmp_path / "deep" / "baseline.json")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = load_baseline(path)
    assert loaded.baseline_version == BASELINE_VERSION and loaded.tests[0].passed == 19
    assert load_counts(path)[0] == "baseline"


def test_baseline_strings_are_scrubbed_of_secrets():
    from llmcheck.redact import forget_secrets, register_secret

    register_secret("sk-test-abcdefghijklmnop")
    try:
        run = BaselineRun(started=T0, passed=1, failed=0)
        test = BaselineTest(nodeid="t::a", model="m?key=sk-test-abcdefghijklmnop",
                            min_pass_rate=0.9, passed=1, failed=0, runs=1, first_run=T0,
                            last_run=T0, history=[run])
        assert "sk-test" not in Baseline(llmcheck_version="x", created=T0, updated=T0,
                                         tests=[test]).model_dump_json()
    finally:
        forget_secrets()


def good_baseline() -> dict:
    b = baseline_from_session(session(record("t::a", 19, 1)))
    return json.loads(b.model_dump_json())


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("baseline_version"), "not an llmcheck baseline"),
    (lambda d: d.update(baseline_version=99), "baseline_version 99; this llmcheck reads"),
    (lambda d: d["tests"][0].update(passed=5), "passed/failed are 5/1 but the history adds up "
                                               "to 19/1"),
    (lambda d: d["tests"][0].update(runs=3), "runs is 3 but history lists 1"),
    (lambda d: d["tests"].append(dict(d["tests"][0])), "t::a is listed twice"),
    (lambda d: d["tests"][0].update(min_pass_rate=2), "tests[0].min_pass_rate"),
    (lambda d: d["tests"][0].update(surprise=1), "tests[0].surprise"),
])
def test_a_broken_baseline_is_refused_naming_the_problem(tmp_path, mutate, message):
    data = good_baseline()
    mutate(data)
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ReportError, match="baseline|b.json") as info:
        load_baseline(path)
    assert message in str(info.value) and "\n" not in str(info.value)


# -- llmcheck compare / baseline --------------------------------------------------------

@pytest.fixture
def reports(tmp_path):
    base = session(record("t.py::test_a", 38, 2), record("t.py::test_b", 36, 4),
                   record("t.py::test_gone", 20, 0))
    head = session(record("t.py::test_a", 24, 16), record("t.py::test_b", 35, 5),
                   record("t.py::test_new", 20, 0), seed=2, started=T0 + timedelta(hours=1))
    steady = session(record("t.py::test_a", 37, 3), record("t.py::test_b", 36, 4), seed=3)
    paths = {}
    for name, s in [("base", base), ("head", head), ("steady", steady)]:
        paths[name] = str(save_session(s, tmp_path / f"{name}.json"))
    return paths


def test_compare_exit_codes(reports, tmp_path, capsys):
    assert main(["compare", reports["base"], reports["head"]]) == 0
    out = capsys.readouterr().out
    assert "t.py::test_a" in out and "regressed" in out and "removed" in out and "new" in out
    assert main(["compare", reports["base"], reports["head"], "--fail-on-regression"]) == 1
    assert main(["compare", reports["base"], reports["steady"], "--fail-on-regression"]) == 0
    capsys.readouterr()
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}')
    for args, message in [
        ([str(tmp_path / "missing.json"), reports["head"]], "cannot read"),
        ([str(broken), reports["head"]], "not valid JSON"),
        ([str(foreign), reports["head"]], "is neither an llmcheck report"),
        ([reports["base"], reports["head"], "--margin", "1.5"], "--margin=1.5 is invalid"),
        ([reports["base"], reports["head"], "--alpha", "x"], "--alpha=x is invalid"),
        ([reports["base"], reports["head"], "--test", "z"], "--test=z is invalid"),
    ]:
        assert main(["compare", *args, "--fail-on-regression"]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_compare_markdown_for_a_pull_request(reports, capsys):
    assert main(["compare", reports["base"], reports["head"], "--format", "md",
                 "--test", "fisher", "--correction", "bh", "--margin", "0.1",
                 "--alpha", "0.01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### llmcheck gate: :x: 1 regression(s)")
    assert "| `t.py::test_a`" in out and "**regressed**" in out
    assert "Fisher's" in out and "Benjamini-Hochberg" in out and "drop >= 0.1" in out


def test_baseline_commands_and_compare_against_a_baseline(reports, tmp_path, capsys):
    target = str(tmp_path / ".llmcheck" / "baseline.json")
    assert main(["baseline", "update", reports["base"], "-o", target]) == 0
    assert "created from" in capsys.readouterr().out
    assert main(["baseline", "update", reports["steady"], "-o", target]) == 0
    assert "merged 2 test(s)" in capsys.readouterr().out
    assert main(["compare", target, reports["head"], "--fail-on-regression"]) == 1
    out = capsys.readouterr().out
    assert "0.94 (80, 2 runs)" in out  # test_a: 75 of 80 over two runs
    assert main(["baseline", "save", reports["head"], "-o", target]) == 0
    assert load_baseline(target).tests[0].runs == 1
    assert main(["baseline", "update", reports["head"], "-o", target,
                 "--max-runs", "0"]) == 2


# -- the plugin -------------------------------------------------------------------------

SUITE = """
import os, llmcheck

@llmcheck.repeat(runs=40, min_pass_rate=0.5, early_stop=False)
def test_drops(llm_sample):
    assert llm_sample.rng.random() < float(os.environ["GATE_RATE"])

@llmcheck.repeat(runs=40, min_pass_rate=0.5, early_stop=False)
def test_steady(llm_sample):
    assert llm_sample.rng.random() < 0.9
"""


@pytest.fixture
def baselined(pytester, monkeypatch):
    """A suite run once at a good rate, its report saved as the baseline."""
    monkeypatch.setenv("GATE_RATE", "0.97")
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest("--llm-seed=1").assert_outcomes(passed=2)
    assert main(["baseline", "save", str(pytester.path / "reports" / "llmcheck.json")]) == 0
    return pytester


def test_a_regression_fails_the_session_with_fail_on_regression(baselined, monkeypatch):
    monkeypatch.setenv("GATE_RATE", "0.5")
    summary = baselined.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = baselined.runpytest("--llm-seed=2", "--llm-baseline=.llmcheck/baseline.json",
                                 "--llm-fail-on-regression")
    # the comparison as markdown, for the pull request: beside the report and in the
    # step summary, after the session's own report
    compare_md = (baselined.path / "reports" / "llmcheck-compare.md").read_text()
    assert compare_md.startswith("### llmcheck gate: :x:")
    assert "test_suite.py::test_drops" in compare_md and "regressed" in compare_md
    assert summary.read_text().rstrip().endswith(compare_md.rstrip())
    result.stdout.fnmatch_lines(["llmcheck comparison: *llmcheck-compare.md"])
    result.assert_outcomes(passed=2)  # every verdict passes (0.5 is required) ...
    assert result.ret == 1  # ... but the rate fell from the baseline's
    result.stdout.fnmatch_lines([
        "*llmcheck: comparing with the baseline*.llmcheck/baseline.json (2 test(s))",
        "*llmcheck comparison with*baseline.json*",
        "test_suite.py::test_drops * +0.* regressed",
        "test_suite.py::test_steady * ok*",
        "*1 test(s) regressed against the baseline, so the session fails "
        "(--llm-fail-on-regression): test_suite.py::test_drops",
    ])


def test_without_the_flag_regressions_are_listed_but_do_not_fail(baselined, monkeypatch):
    monkeypatch.setenv("GATE_RATE", "0.5")
    result = baselined.runpytest("--llm-seed=2", "--llm-baseline=.llmcheck/baseline.json")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["test_suite.py::test_drops * regressed",
                                 "*--llm-fail-on-regression would fail the session*"])


def test_no_regression_passes_with_the_flag(baselined):
    result = baselined.runpytest("--llm-seed=3", "--llm-baseline=.llmcheck/baseline.json",
                                 "--llm-fail-on-regression")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*no regression (2 ok)*"])


def test_new_removed_and_changed_tests_are_listed_not_failed(baselined, monkeypatch):
    monkeypatch.setenv("LLMCHECK_BASELINE", ".llmcheck/baseline.json")  # the env twin
    baselined.makepyfile(test_suite=SUITE.replace("< 0.9", "< 0.9  # edited").replace(
        "def test_drops", "def test_added"))
    result = baselined.runpytest("--llm-seed=2", "--llm-fail-on-regression")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*changed: test source or parameters changed (fingerprint)",
        "test_suite.py::test_added * new: not in BASE",
        "test_suite.py::test_drops * removed: not in HEAD",
        "*no regression (1 changed, 1 new, 1 removed)*",
    ])


def test_a_baseline_that_cannot_be_read_is_a_usage_error(pytester):
    pytester.makepyfile(test_suite=SUITE)
    (pytester.path / "broken.json").write_text('{"baseline_version": 1, "tests": 3}')
    for option, message in [("--llm-baseline=missing.json", "*--llm-baseline: cannot read*"),
                            ("--llm-baseline=broken.json", "*--llm-baseline: baseline*broken"
                                                           ".json is invalid*")]:
        result = pytester.runpytest(option)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([message])
    result = pytester.runpytest("--llm-fail-on-regression")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-fail-on-regression needs a baseline*"])


def test_the_gate_under_xdist(baselined, monkeypatch):
    monkeypatch.setenv("GATE_RATE", "0.5")
    result = baselined.runpytest_subprocess(
        "-n", "2", "--llm-seed=2", "--llm-baseline=.llmcheck/baseline.json",
        "--llm-fail-on-regression")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["test_suite.py::test_drops * regressed"])
    assert os.environ["GATE_RATE"] == "0.5"
