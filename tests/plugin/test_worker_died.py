"""A test whose xdist worker died (issue 18, item 15): the report gives it the outcome
pytest gives it (FAILED), with the reason, instead of the verdict its journaled samples
happened to add up to ("passed (inconclusive)"); and a test whose journal is gone is
still listed, with a warning, instead of vanishing from the report."""

from __future__ import annotations

from helpers import by_name, load_report

SUITE = """
import glob, os, signal
import llmcheck

@llmcheck.repeat(runs=20, min_pass_rate=0.5, concurrency=1, early_stop=False)
def test_dies(llm_sample):
    if llm_sample.index == 5:
        os._exit(9)          # the worker dies mid-test: 5 samples were journaled

@llmcheck.repeat(runs=20, min_pass_rate=0.5, concurrency=1, early_stop=False)
def test_dies_without_journal(llm_sample):
    if llm_sample.index == 3:
        # this worker's journal goes (the other worker's stays: test_dies needs it)
        worker = os.environ["PYTEST_XDIST_WORKER"]
        for path in glob.glob(f"reports/.llmcheck-journal/*-{worker}-{os.getpid()}.jsonl"):
            os.unlink(path)
        os.kill(os.getpid(), signal.SIGKILL)

@llmcheck.repeat(runs=4, min_pass_rate=0.5, concurrency=1, early_stop=False)
def test_fine(llm_sample):
    pass
"""


def test_a_test_whose_worker_died_is_failed_in_the_report_as_in_pytest(pytester):
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    data = load_report(pytester)
    tests = by_name(data)
    assert set(tests) == {"test_dies", "test_dies_without_journal", "test_fine"}  # none missing

    died = tests["test_dies"]
    assert died["run"] == 5 and died["passed"] == 5 and died["interrupted"] is True
    assert died["verdict"]["outcome"] == "failed" and died["verdict"]["conclusive"] is False
    assert "crashed while running" in died["verdict"]["reason"]
    assert "the 5 sample(s) journaled before are kept" in died["verdict"]["reason"]

    lost = tests["test_dies_without_journal"]
    assert lost["run"] == 0 and lost["samples"] == []
    assert lost["verdict"]["outcome"] == "failed"
    assert "no sample of it was journaled" in lost["verdict"]["reason"]
    assert lost["settings"]["runs"] == 20  # its own settings, from the setup report

    assert tests["test_fine"]["verdict"]["outcome"] == "passed"
    for name in ("test_dies", "test_dies_without_journal"):
        assert any(w.startswith(f"test_suite.py::{name}: pytest failed it: worker")
                   for w in data["warnings"]), data["warnings"]
        assert f"warning: test_suite.py::{name}: pytest failed it" in out
    table = out[out.index("llmcheck pass rates"):]
    assert "PASS" not in next(line for line in table.splitlines()
                              if "test_suite.py::test_dies " in line + " ")


def test_a_test_that_failed_without_a_record_is_listed_with_pytests_reason(pytester):
    # no xdist: a usage error inside the runner fails the test before any record exists
    pytester.makepyfile(test_suite="""
        import llmcheck
        from llmcheck.errors import UsageError

        @llmcheck.repeat(runs=4, min_pass_rate=0.5)
        def test_broken(llm_sample):
            raise UsageError("bad schema 'x': expected a pydantic model")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    test = by_name(load_report(pytester))["test_broken"]
    assert test["verdict"]["outcome"] == "failed" and test["run"] == 0
    assert "bad schema 'x'" in test["verdict"]["reason"]
