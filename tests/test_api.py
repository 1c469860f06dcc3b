"""The public surface and the data it hands around: one source for each fact."""

from __future__ import annotations

import json
import math

import pytest

import llmcheck
from llmcheck import stats
from llmcheck.config.settings import (
    DEFAULT_VERDICT,
    INTERVAL_METHODS,
    POLICY_NAMES,
    SETTINGS,
    Resolved,
    session_defaults,
)
from llmcheck.core.runner import RunSpec, SampleRunner
from llmcheck.records.resolve import resolve_test
from llmcheck.records.schema import SCHEMA_VERSION, TestRecord, load_session


def test_every_public_name_resolves():
    for name in llmcheck.__all__:
        assert getattr(llmcheck, name) is not None, name
    assert "SampleInfo" not in llmcheck.__all__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        llmcheck.nope  # noqa: B018


def test_errors_and_checks_resolve_to_their_own_classes():
    from llmcheck.checks import CheckFailed
    from llmcheck.errors import LLMCheckWarning, UsageError

    assert llmcheck.CheckFailed is CheckFailed and llmcheck.UsageError is UsageError
    assert issubclass(llmcheck.LLMCheckWarning, UserWarning) and \
        llmcheck.LLMCheckWarning is LLMCheckWarning


def test_names_have_one_source():
    assert SETTINGS["verdict"].choices == POLICY_NAMES == stats.POLICY_NAMES
    assert SETTINGS["interval"].choices == INTERVAL_METHODS == stats.INTERVAL_METHODS
    assert "93 at the defaults" in SETTINGS["runs"].help
    assert SETTINGS["verdict"].default == DEFAULT_VERDICT == "sequential"
    from llmcheck_pytest.markers import MARKER_DOC

    for name in ("runs", "min_pass_rate", "verdict", "margin", "early_stop", "max_tokens"):
        assert f"{name}={SETTINGS[name].default!r}" in MARKER_DOC


def _session(**values) -> dict[str, Resolved]:
    base = session_defaults()
    base.update({k: Resolved(v, source) for k, (v, source) in values.items()})
    return base


def test_resolve_test_is_a_pure_function_of_the_marker_and_the_session():
    s = resolve_test({"min_pass_rate": 0.8, "verdict": "threshold"}, session_defaults())
    # runs default to the sequential design's N under every policy (0.75 vs 0.85: 147)
    n = stats.default_runs(0.8, 0.05, 0.05, 0.05)
    assert (s.runs, s.verdict, s.min_pass_rate, s.concurrency, s.early_stop) == \
        (n, "threshold", 0.8, 4, True)
    assert s.design == {"max_samples": n, "passes_needed": math.ceil(0.8 * n)}
    # the command line's runs wins over the test's own; an ini's runs does not
    assert resolve_test({"runs": 5}, _session(runs=(30, "command line"))).runs == 30
    assert resolve_test({"runs": 5}, _session(runs=(30, "ini"))).runs == 5
    # --llm-no-early-stop wins over the marker
    assert resolve_test({"early_stop": True},
                        _session(no_early_stop=(True, "command line"))).early_stop is False
    # the default policy is sequential; without runs: the fixed test's n, its boundaries
    seq = resolve_test({}, session_defaults())
    assert seq.verdict == "sequential" and seq.runs == seq.design["max_samples"] == 93
    assert seq.design["p0"] == 0.85 and seq.design["p1"] == 0.95
    assert seq.design["upper"] > 0 > seq.design["lower"]
    # one positional argument is runs
    assert resolve_test({}, session_defaults(), marker_args=(7,)).runs == 7


def test_a_bad_marker_value_names_itself():
    with pytest.raises(llmcheck.UsageError, match=r"@pytest.mark.llm\(min_pass_rate=1.5\)"):
        resolve_test({"min_pass_rate": 1.5}, session_defaults())
    with pytest.raises(llmcheck.UsageError, match="positional arguments are not accepted"):
        resolve_test({}, session_defaults(), marker_args=(1, 2))


def _record(outcomes: str, **marker) -> TestRecord:
    """A record from a body whose sample i passes iff outcomes[i] == 'p'."""
    from llmcheck.core import context

    settings = resolve_test({"runs": len(outcomes), "concurrency": 1, **marker},
                            session_defaults())

    def body():
        assert outcomes[context.current_sample().index] == "p"

    return SampleRunner(body, RunSpec(test_id="t.py::test_x", settings=settings)).run()


@pytest.mark.parametrize("marker", [
    {"min_pass_rate": 0.8},
    {"min_pass_rate": 0.8, "verdict": "interval", "interval": "clopper-pearson"},
    {"min_pass_rate": 0.8, "verdict": "sequential", "margin": 0.1},
])
def test_a_saved_report_re_derives_its_verdicts_without_pytest(tmp_path, marker):
    from datetime import datetime, timezone

    from llmcheck.records.schema import SessionRecord, save_session

    outcomes = "ppppfppppppppfpppppp"
    record = _record(outcomes[: 20], **marker)
    path = save_session(SessionRecord.assemble([record], seed=1,
                                               started=datetime.now(timezone.utc)),
                        tmp_path / "r.json")
    (saved,) = load_session(path).tests
    assert saved.settings == record.settings
    policy = saved.settings.policy()
    assert policy.design() == saved.settings.design
    remaining = saved.planned - saved.run
    decision = policy.decide(saved.passed, saved.failed, remaining)
    # the interval and estimate shown are the ones the settings describe (early stopping
    # is on, so they account for the stopping rule)
    again, estimate = saved.settings.inference(saved.passed, saved.scored, saved.errors)
    assert again == saved.interval and again.method == "stopping-exact"
    assert estimate == saved.estimate is not None
    # a rate policy's verdict is conclusive iff that interval lies on its side of m
    conclusive = decision.conclusive
    if policy.name != "sequential":
        m = saved.min_pass_rate
        conclusive = again.low >= m if decision.passed else again.high < m
    assert (decision.passed, conclusive) == \
        (saved.verdict.outcome == "passed", saved.verdict.conclusive)


def _v2_report() -> dict:
    return {
        "schema_version": 2, "llmcheck_version": "0.1.0", "started": "2026-11-29T00:00:00Z",
        "seed": 3, "tests": [{
            "nodeid": "t.py::test_x", "planned": 20, "run": 20, "passed": 18, "failed": 2,
            "errors": 0, "pass_rate": 0.9,
            "interval": {"low": 0.699, "high": 0.972, "method": "wilson", "confidence": 0.95},
            "min_pass_rate": 0.9, "confidence": 0.95,
            "verdict": {"outcome": "passed", "policy": "threshold", "conclusive": False,
                        "reason": "18/20 = 0.90 >= 0.90", "samples_to_conclusive": 139},
            "concurrency": 4, "duration": 1.0, "samples": [],
        }],
    }


def test_a_version_2_report_is_read_with_its_settings_gathered(tmp_path):
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(_v2_report()))
    session = load_session(path)
    assert session.schema_version == SCHEMA_VERSION == 10
    (t,) = session.tests
    assert (t.planned, t.min_pass_rate, t.confidence, t.settings.concurrency) == \
        (20, 0.9, 0.95, 4)
    assert t.settings.verdict == "threshold" and t.settings.margin == 0.05
    assert any("schema version 2" in w for w in session.warnings)
    assert t.settings.policy().decide(18, 2).passed is True


def test_pooled_case_rates_widen_when_cases_differ():
    from llmcheck.records.schema import case_aggregates

    def record(name: str, passes: int, **marker) -> TestRecord:
        return _record("p" * passes + "f" * (20 - passes), early_stop=False,
                       **marker).model_copy(update={"nodeid": name})

    alike = [record(f"t.py::test_a[{i}]", 18, min_pass_rate=0.5) for i in range(4)]
    apart = [record(f"t.py::test_b[{i}]", n, min_pass_rate=0.5) for i, n in
             enumerate((20, 20, 16, 16))]
    strict = [record(f"t.py::test_c[{i}]", 18, min_pass_rate=0.5, confidence=0.99)
              for i in range(3)]
    a, b, c = case_aggregates(alike + apart + strict)
    assert a.pass_rate == b.pass_rate == 0.9
    assert a.interval.method == "cases-bootstrap"
    pooled = a.interval.high - a.interval.low
    assert b.interval.high - b.interval.low > pooled     # differences between cases widen it
    assert b.interval.low <= 0.8 and b.interval.high == 1.0
    # computed and labelled at the cases' own confidence (0.99 here, not the session's)
    assert c.interval.confidence == 0.99
    from llmcheck.stats import wilson_interval

    assert c.interval.low <= wilson_interval(54, 60, 0.99)[0] + 1e-12
    # reproducible: the bootstrap is seeded by the test's name
    assert case_aggregates(apart)[0].interval == b.interval


def test_the_session_states_its_chance_of_failing_on_bad_luck_alone(pytester, report):
    from llmcheck.records.schema import false_fail_chance

    # 30 tests truly at 0.95 against 0.9 required, N=20: at least one FAIL in 90.5% of
    # sessions under threshold, 78.2% under sequential (its own N)
    threshold = resolve_test({"runs": 20, "verdict": "threshold"}, session_defaults())
    sequential = resolve_test({"verdict": "sequential"}, session_defaults())
    assert false_fail_chance([threshold] * 30) == pytest.approx(0.9051, abs=1e-4)
    assert false_fail_chance([sequential] * 30) == pytest.approx(0.7824, abs=1e-4)
    assert false_fail_chance([threshold]) == pytest.approx(
        1 - threshold.policy().operating_characteristic(0.95)[0])
    pytester.makepyfile("""
        import pytest, llmcheck

        @pytest.mark.parametrize("i", range(12))
        @llmcheck.repeat(runs=20, verdict="threshold")
        def test_case(i):
            pass
    """)
    result = pytester.runpytest()
    chance = report()["false_fail_chance"]
    assert chance == pytest.approx(false_fail_chance([threshold] * 12))
    result.stdout.fnmatch_lines([
        f"llmcheck: if all 12 LLM tests truly passed at their required rate + margin, a "
        f"session like this would still fail at least one {chance:.0%} of the time; "
        "--llm-session-alpha=0.05 holds it to 5% by running more samples where needed "
        "(`llmcheck plan --tests 12 --session-alpha 0.05` shows the cost)"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_session_alpha_holds_the_whole_session_under_xdist_too(pytester, report, xdist):
    # 12 tests (10 cases + 2 more, one deselected by -k): each gets beta 1-(1-0.05)^(1/11),
    # counted over the session's tests, not a worker's share of them
    pytester.makepyfile("""
        import pytest, llmcheck

        @pytest.mark.parametrize("i", range(10))
        @llmcheck.repeat()
        def test_case(i):
            pass

        @llmcheck.repeat(verdict="threshold")
        def test_threshold():
            pass

        @llmcheck.repeat()
        def test_deselected():
            pass

        @pytest.mark.skip(reason="skipped tests take no share of the session's alpha")
        @llmcheck.repeat()
        def test_skipped():
            pass

        @pytest.mark.skipif(True, reason="nor do tests a true skipif skips")
        @llmcheck.repeat()
        def test_skipped_if():
            pass

        def test_plain():
            pass
    """)
    result = pytester.runpytest("--llm-session-alpha=0.05", "-k", "not deselected", *xdist)
    result.assert_outcomes(passed=12, skipped=2)
    data = report()
    per_test = 1 - 0.95 ** (1 / 11)
    betas = [t["settings"]["beta"] for t in data["tests"] if t["settings"]["verdict"] ==
             "sequential"]
    assert betas == [pytest.approx(per_test)] * 10
    assert data["false_fail_chance"] <= 0.05 + 1e-12
    threshold = next(t for t in data["tests"] if t["nodeid"].endswith("test_threshold"))
    assert threshold["settings"]["runs"] > 93  # more runs, so that it fails at most per_test
    if not xdist:
        result.stdout.fnmatch_lines(["llmcheck: seed=* verdict=sequential session-alpha=0.05 *"])


def test_every_public_exception_is_named_publicly_in_records():
    """Records call a public exception llmcheck.<Name> (errors.PUBLIC_NAMES), so the list
    must be exactly the exception classes ``import llmcheck`` exports."""
    import llmcheck
    from llmcheck.errors import PUBLIC_NAMES

    exported = {name for name in llmcheck.__all__
                if isinstance(getattr(llmcheck, name), type)
                and issubclass(getattr(llmcheck, name), BaseException)}
    assert exported == PUBLIC_NAMES
