"""Latency requirements from the setting to the verdict: the parser, the runner's
latency verdicts on seeded recorded durations (never wall-clock time), the combined
verdict, early stopping, the session's count of hypotheses, and one plugin run."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import pytest
from scipy import stats as sps

import llmcheck
from llmcheck import stats
from llmcheck.config.latency import parse_latency
from llmcheck.config.settings import Resolved, session_defaults, validate
from llmcheck.core.context import current_sample
from llmcheck.core.runner import RunSpec, SampleRunner, rebuild_record
from llmcheck.errors import UsageError
from llmcheck.records.resolve import resolve_test
from llmcheck.records.schema import SessionRecord


def _settings(**marker):
    return resolve_test({"concurrency": 4, "min_pass_rate": 0.5, "runs": 60, **marker},
                        session_defaults())


def _run(body, **marker):
    return SampleRunner(body, RunSpec(test_id="t", settings=_settings(**marker),
                                      session_seed=5)).run()


def _body(mean: float, *, fail_rate: float = 0.0, slow_failures: float = 1.0,
          metric: str = "lookup", record_failures: bool = True):
    """A body that records ``metric`` drawn from the sample's seed (exponential with
    ``mean``), fails at ``fail_rate``, its failures ``slow_failures`` times slower."""
    def body() -> None:
        rng = random.Random(current_sample().seed)
        fails = rng.random() < fail_rate
        if not fails or record_failures:
            llmcheck.record_duration(metric, rng.expovariate(1 / mean) *
                                     (slow_failures if fails else 1.0))
        assert not fails, "the answer was wrong"
    return body


# -- the setting ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "parsed"), [
    ("p95 ttft <= 1.5s", ("ttft", 0.95, 1.5)),
    ("p50(total) <= 800ms", ("total", 0.5, 0.8)),
    ("  P99.9 db_lookup ≤ 20 ms ", ("db_lookup", 0.999, 0.02)),
    ("p5(episode)<=.5s", ("episode", 0.05, 0.5)),
])
def test_requirements_parse(text, parsed):
    (got,) = parse_latency(text, "x")
    assert got[0] == parsed[0]
    assert got[1:] == pytest.approx(parsed[1:])


@pytest.mark.parametrize(("value", "named"), [
    ("p95 ttft < 1.5s", "'p95 ttft < 1.5s': not of the accepted form"),
    ("p95 ttft <= 1.5", "not of the accepted form"),  # a unit is required
    ("p100 ttft <= 1s", "p100 is not between 0 and 100"),
    ("p0(total) <= 1s", "p0 is not between 0 and 100"),
    ("p95 ttft <= 0ms", "more than 0"),
    (["p95 ttft <= 1s", 3], "3 is not a string"),
    (1.5, "got float"),
    ([], "no requirement"),
])
def test_a_bad_requirement_names_itself_and_the_accepted_form(value, named):
    with pytest.raises(UsageError) as info:
        llmcheck.repeat(latency=value)
    message = str(info.value)
    assert message.startswith("@llmcheck.repeat(latency=") and named in message
    assert "e.g. 'p95 ttft <= 1.5s'" in message


def test_marker_option_and_settings():
    settings = _settings(latency=["p95 ttft <= 1.5s", "p50(total) <= 800ms"])
    assert [(r.metric, r.quantile, r.limit) for r in settings.latency] == [
        ("ttft", 0.95, 1.5), ("total", 0.5, 0.8)]
    assert settings.session_share is None
    # --llm-latency (several separated by ';') applies to tests that state none
    session = {**session_defaults(), "latency": Resolved(
        validate("latency", "p90 total <= 2s; p99 ttft <= 3s", "--llm-latency"),
        "command line")}
    assert [r.metric for r in resolve_test({}, session).latency] == ["total", "ttft"]
    assert [r.metric for r in resolve_test({"latency": "p50 x <= 1s"}, session).latency] == [
        "x"]
    with pytest.raises(UsageError, match="--llm-latency=p90 total <= 2 is invalid"):
        validate("latency", "p90 total <= 2", "--llm-latency")
    def test() -> None:
        pass

    marked = llmcheck.repeat(latency="p95 ttft <= 1.5s")(test)
    assert marked.pytestmark[0].kwargs == {"latency": "p95 ttft <= 1.5s"}


def test_record_duration_outside_a_sample_or_with_a_bad_value_is_a_usage_error():
    with pytest.raises(UsageError, match="outside a sample"):
        llmcheck.record_duration("lookup", 0.1)
    errors = []

    def body() -> None:
        for name, value in (("", 1.0), ("two words", 1.0), ("x", -1.0), ("x", float("inf")),
                            ("x", True)):
            try:
                llmcheck.record_duration(name, value)
            except UsageError as exc:
                errors.append(str(exc))

    _run(body, runs=1)
    assert len(errors) == 5 and "'two words'" in errors[1] and "-1.0" in errors[2]


# -- verdicts through the runner ------------------------------------------------------

def test_conclusive_pass():
    record = _run(_body(0.1), latency="p90 lookup <= 1s")
    (stat,) = record.latency
    assert stat.outcome == "passed" and stat.conclusive and stat.samples == 60
    values = sorted(s.durations["lookup"] for s in record.samples)
    assert stat.estimate == values[53]  # X_(ceil(60 * 0.9)) = X_(54)
    low, high = stats.order_statistic_ranks(60, 0.9, 0.025, 0.025)
    assert (stat.interval.low, stat.interval.high) == (values[low - 1], values[high - 1])
    assert stat.interval.method == "order-statistics"
    assert record.verdict.outcome == "passed" and record.verdict.conclusive
    assert "p90 lookup <= 1 s: PASS" in record.verdict.reason


def test_conclusive_fail_fails_the_test_and_says_which_part():
    record = _run(_body(2.0), latency=["p90 lookup <= 1s", "p10 lookup <= 5s"])
    slow, fast = record.latency
    assert slow.outcome == "failed" and slow.conclusive
    assert fast.outcome == "passed"
    assert record.verdict.outcome == "failed"
    assert record.verdict.reason.startswith("failed on p90 lookup <= 1 s.")
    assert record.verdict.conclusive  # the pass rate and both requirements are


def test_a_saved_report_with_latency_in_seconds_reads_back(tmp_path):
    """An order-statistics interval is in seconds (above 1): read back, it is not taken
    for a rate; a negative duration in it is still refused."""
    record = _run(_body(2.0), latency="p50 lookup <= 5s")
    assert record.latency[0].interval.high > 1
    session = SessionRecord.assemble([record], seed=5, started=datetime.now(timezone.utc))
    path = tmp_path / "llmcheck.json"
    path.write_text(session.model_dump_json())
    loaded = llmcheck.load_session(path)
    assert loaded.tests[0].latency == record.latency
    path.write_text(path.read_text().replace(
        f'"low":{record.latency[0].interval.low}', '"low":-1.0'))
    with pytest.raises(llmcheck.ReportError, match="low: -1 is negative"):
        llmcheck.load_session(path)


def test_inconclusive_with_the_samples_that_would_settle_it():
    # the exponential's p90 is mean * ln 10 = 2.30 mean: right at a limit of 1 s
    record = _run(_body(1 / 2.3026), latency="p90 lookup <= 1s")
    (stat,) = record.latency
    assert not stat.conclusive
    k = sum(s.durations["lookup"] <= 1.0 for s in record.samples)
    assert stat.samples_to_conclusive == stats.quantile_samples_to_conclusive(
        k / 60, 0.9, alpha=0.05, beta=0.05, start=60)
    assert not record.verdict.conclusive
    assert record.verdict.samples_to_conclusive == stat.samples_to_conclusive
    assert f"{k} of 60 samples at or under 1 s" in stat.reason


def test_a_metric_no_sample_recorded_is_an_error_naming_the_fix():
    record = _run(_body(0.1), latency=["p95 ttft <= 1.5s", "p95 lookp <= 1s"])
    ttft, typo = record.latency
    assert ttft.outcome == "error" and ttft.samples == 0 and ttft.interval is None
    assert "no sample recorded ttft: stream the call (stream=True)" in ttft.reason
    assert "no sample recorded lookp (did you mean lookup?)" in typo.reason
    assert record.verdict.outcome == "error" and not record.verdict.conclusive


def test_the_pass_rate_failing_fails_the_test_whatever_the_latency():
    record = _run(_body(0.1, fail_rate=0.8), latency="p90 lookup <= 1s")
    assert record.latency[0].outcome == "passed"
    assert record.verdict.outcome == "failed"
    assert record.verdict.reason.startswith("failed on the pass rate.")


def test_samples_without_the_duration_are_not_counted_and_the_reason_says_so():
    record = _run(_body(0.1, fail_rate=0.3, record_failures=False), runs=40,
                  latency="p50 lookup <= 1s")
    (stat,) = record.latency
    passed = sum(s.outcome == "passed" for s in record.samples)
    assert stat.samples == passed < 40
    assert f"{40 - passed} sample(s) without lookup not counted" in stat.reason


def test_early_stopping_still_judges_latency_on_all_samples_and_rebuilds_the_same():
    """The pass rate is settled early; failures are ten times slower, so the samples up
    to that stop would be a biased sample of the duration: every planned sample runs and
    the latency verdict is taken on all of them."""
    spec = RunSpec(test_id="t", settings=_settings(runs=93, latency="p80 lookup <= 1s",
                                                   min_pass_rate=0.9, verdict="sequential"),
                   session_seed=5)
    record = SampleRunner(_body(0.2, fail_rate=0.02, slow_failures=10.0), spec).run()
    assert record.verdict.stopped_early and record.verdict.decided_after < 93
    assert record.run == 93 and record.latency[0].samples == 93
    assert record.passed + record.failed + record.errors == record.verdict.decided_after
    assert "(the latency requirements ran all 93)" in record.verdict.stop_reason
    rebuilt = rebuild_record(spec, record.samples, None)
    assert rebuilt.latency == record.latency and rebuilt.verdict == record.verdict
    without = SampleRunner(_body(0.2, fail_rate=0.02), spec.__class__(
        test_id="t", settings=_settings(runs=93, min_pass_rate=0.9), session_seed=5)).run()
    assert without.run < 93  # no requirement: early stopping saves the samples


def test_session_alpha_counts_requirements_and_fails_a_latency_part_only_conclusively():
    session = {**session_defaults(), "session_alpha": Resolved(0.05, "command line")}
    marker = {"concurrency": 4, "min_pass_rate": 0.5, "margin": 0.2,
              "latency": "p95 lookup <= 1s"}
    settings = resolve_test(marker, session, session_tests=4)
    assert settings.session_share == pytest.approx(1 - 0.95 ** 0.25)
    n = settings.runs
    values = [0.5] * (n - 2) + [2.0] * 2  # the sample p95 above 1 s, not conclusively

    def body() -> None:
        llmcheck.record_duration("lookup", values[current_sample().index])

    record = SampleRunner(body, RunSpec(test_id="t", settings=settings)).run()
    (stat,) = record.latency
    assert stat.samples == n and stat.outcome == "passed" and not stat.conclusive
    assert "only a conclusive fail fails" in stat.reason
    plain = SampleRunner(body, RunSpec(test_id="t", settings=_settings(**marker, runs=n))).run()
    assert plain.latency[0].outcome == "failed" and not plain.latency[0].conclusive


def test_false_fail_chance_counts_each_requirement():
    plain = _settings(runs=93)
    timed = _settings(runs=93, latency=["p95 lookup <= 1s", "p50 total <= 1s"])
    base = stats.false_fail_chance([plain])
    p95 = sum(sps.binom.pmf(k, 93, 0.975) for k in range(89))  # sample p95 > limit: k < 89
    p50 = sum(sps.binom.pmf(k, 93, 0.55) for k in range(47))
    expected = 1 - (1 - base) * (1 - p95) * (1 - p50)
    assert stats.false_fail_chance([timed]) == pytest.approx(expected, abs=1e-4)


# -- one plugin run ---------------------------------------------------------------

PLUGIN_TESTS = """
import random
import llmcheck

@llmcheck.repeat(margin=0.2, min_pass_rate=0.5, latency=["p80 lookup <= 1s", "p50 lookup <= 10ms"])
def test_lookup():
    rng = random.Random(llmcheck.current_sample().seed)
    llmcheck.record_duration("lookup", 0.05 + rng.random() * 0.2)

@llmcheck.repeat(margin=0.2, min_pass_rate=0.5)
def test_plain():
    pass
"""


DOCS = Path(__file__).resolve().parents[2] / "docs" / "latency.md"


def test_a_plugin_run_reports_latency_rows_in_terminal_json_and_markdown(pytester):
    """One run: two tests with seeded recorded durations, and the docs page's example
    (whose durations are wall time: only its shape is checked, never its figures)."""
    example = re.search(r"<!-- latency-example -->\n```python\n(.*?)```",
                        DOCS.read_text(), re.S)
    assert example, "docs/latency.md has its example between latency-example markers"
    pytester.makepyfile(test_timed=PLUGIN_TESTS, test_docs_example=example.group(1))
    result = pytester.runpytest_inprocess("--llm-seed=3", "--llm-session-alpha=0.05",
                                          "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("passed", 0) >= 1, outcomes
    report = json.loads((pytester.path / "reports" / "llmcheck.json").read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    timed = tests["test_lookup"]
    assert timed["verdict"]["outcome"] == "failed"
    assert timed["verdict"]["reason"].startswith("failed on p50 lookup <= 10 ms.")
    p80, p50 = timed["latency"]
    runs = timed["settings"]["runs"]
    assert p80["outcome"] == "passed" and p80["conclusive"] and p80["samples"] == runs
    assert p50["outcome"] == "failed" and p50["conclusive"]
    assert tests["test_plain"]["latency"] == []
    docs = tests["test_lookup_is_fast_enough"]
    assert [(s["metric"], s["samples"]) for s in docs["latency"]] == [
        ("lookup", docs["settings"]["runs"]), ("total", docs["settings"]["runs"])]
    # seven hypotheses: three tests, the timed test's two requirements, the example's two
    assert timed["settings"]["session_share"] == pytest.approx(1 - 0.95 ** (1 / 7))
    out = result.stdout.str()
    row = (f"p80 lookup {p80['estimate']:.3g} s (95% interval "
           f"{p80['interval']['low']:.3g}-{p80['interval']['high']:.3g} s) <= 1 s: PASS")
    assert f"test_timed.py::test_lookup: {row}" in out, out
    assert "test_plain:" not in out.split("latency requirements")[1]
    session = SessionRecord.model_validate_json(
        (pytester.path / "reports" / "llmcheck.json").read_text())
    from llmcheck.reports.html import render_html
    from llmcheck.reports.markdown import md_text, render_markdown

    markdown = render_markdown(session)
    assert "### Latency requirements" in markdown
    assert re.search(re.escape(md_text(row.rsplit(":", 1)[0])) + r"\s*\|\s*\*\*PASS\*\*",
                     markdown), markdown
    assert f"{escape(row.rsplit(':', 1)[0])}</td><td><strong>PASS" in render_html(session)
    assert "(and their 4 latency requirements held with as much room)" in out
