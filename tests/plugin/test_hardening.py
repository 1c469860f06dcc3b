"""Wrong verdicts and crashes found by probing as a careless user would."""

from __future__ import annotations

import json
import sqlite3

import pytest
from helpers import by_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcheck.config.settings import validate
from llmcheck.errors import UsageError
from llmcheck.model.cache import ResponseCache, cache_key

# -- no samples, no verdict -------------------------------------------------------------


def test_a_test_interrupted_before_any_sample_finished_has_no_verdict(pytester, report):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=5, concurrency=1)
        def test_stopped():
            raise KeyboardInterrupt
    """)
    result = pytester.runpytest_subprocess()
    t = by_name(report())["test_stopped"]
    assert t["run"] == 0 and t["interrupted"] is True
    assert t["verdict"]["outcome"] == "interrupted"
    assert "interrupted before any sample finished" in t["verdict"]["reason"]
    result.stdout.fnmatch_lines(["*test_stopped*0/5*INTERRUPTED*"])
    # pytest's Ctrl-C line names the test and how far it got, not a frame in the runner
    result.stdout.fnmatch_lines(["*: KeyboardInterrupt: *.py::test_stopped "
                                 "interrupted after 0 of 5 samples"])
    full = pytester.runpytest_subprocess("--full-trace")  # the original, in full
    full.stdout.fnmatch_lines(["*raise KeyboardInterrupt*"])
    assert "interrupted after 0 of 5" not in full.stdout.str()
    assert "FAIL" not in result.stdout.str().split("llmcheck pass rates")[1]


# -- an interrupted xdist session says interrupted, and loses nothing ----------------------


FAKE_WORKER = """
import json
from llmcheck_pytest.plugin import SESSION_KEY

def pytest_sessionstart(session):
    # what a worker of this session journaled before the controller was interrupted:
    # one test it finished (whose report never arrived) and one cut short
    state = session.config.stash[SESSION_KEY]
    folder = state.report_dir / ".llmcheck-journal"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"runs": 4, "verdict": "threshold", "min_pass_rate": 0.5, "confidence": 0.95,
                "margin": 0.05, "alpha": 0.05, "beta": 0.05, "interval": "wilson",
                "early_stop": False, "concurrency": 1}
    lines = [{"session": {"seed": state.seed}}]
    for name, n, done in (("test_w.py::test_done", 4, True), ("test_w.py::test_cut", 2, False)):
        lines.append({"start": name, "settings": settings, "model": None, "simulated": False})
        lines += [{"nodeid": name, "sample": {"index": i, "seed": i, "outcome": "passed",
                                              "duration": 0.01}} for i in range(n)]
        if done:
            lines.append({"done": name})
    path = folder / f"{state.token}-gw9-999999.jsonl"
    path.write_text("".join(json.dumps(line) + "\\n" for line in lines))
"""


def test_an_interrupted_session_rebuilds_what_its_workers_journaled(pytester, report):
    pytester.makeconftest(FAKE_WORKER)
    pytester.makepyfile(test_main="def test_stop():\n    raise KeyboardInterrupt\n")
    pytester.runpytest_subprocess()
    data = report()
    tests = by_name(data)
    assert tests["test_done"]["run"] == 4 and tests["test_done"]["interrupted"] is False
    cut = tests["test_cut"]
    assert cut["run"] == 2 and cut["interrupted"] is True
    assert cut["verdict"]["stop_reason"] == "interrupted after 2 of 4 samples"
    assert not any("died" in w for w in data["warnings"])
    assert any("never reached the controller" in w for w in data["warnings"])


# -- the cache ------------------------------------------------------------------------------


def _cache_with(tmp_path, payload_text: str) -> tuple[ResponseCache, str]:
    path = tmp_path / "c.sqlite"
    ResponseCache(path, "write").close()
    key = cache_key("m", [{"role": "user", "content": "hi"}], {}, 0)
    db = sqlite3.connect(path)
    db.execute("INSERT INTO answers (key, model, payload) VALUES (?, ?, ?)",
               (key, "m", payload_text))
    db.commit()
    db.close()
    return ResponseCache(path, "read"), key


@pytest.mark.parametrize("payload, problem", [
    ({"text": 5, "model": "m"}, "has 'text' of type int"),
    ([1, 2], "is a JSON list, not an object"),
    ({"model": "m"}, "has no text"),
    ({"text": "a", "model": "m", "tool_calls": [{"name": 1}]}, "has a malformed tool call"),
    ({"text": "a", "model": "m", "usage": {"prompt_tokens": "9"}}, "has malformed usage"),
    ({"text": "a", "model": "m", "extra": 1}, "has an unknown field 'extra'"),
])
def test_a_cache_row_of_the_wrong_shape_is_a_cache_error(tmp_path, payload, problem):
    cache, key = _cache_with(tmp_path, json.dumps(payload))
    with pytest.raises(UsageError, match=rf"^cache error: .* {problem}; delete the cache"):
        cache.get(key)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.one_of(
    st.text(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(st.sampled_from(["text", "model", "usage", "tool_calls",
                                                    "cost", "latency", "retries", "cached",
                                                    "finish_reason", "x"]), inner, max_size=6),
                 max_leaves=20).map(json.dumps)))
def test_any_cache_row_gives_an_answer_or_a_cache_error(tmp_path_factory, row):
    from llmcheck.model.completion import Completion

    cache, key = _cache_with(tmp_path_factory.mktemp("fuzz"), row)
    try:
        payload = cache.get(key)
    except UsageError as exc:
        assert str(exc).startswith("cache error: ")
    else:
        completion = Completion.from_dict(payload)
        assert isinstance(completion.text, str) and isinstance(completion.model, str)
    finally:
        cache.close()


# -- bad paths and values are one-line usage errors -------------------------------------------


def test_a_report_dir_that_is_a_file_is_a_usage_error(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    (pytester.path / "afile").write_text("")
    for value, what in (("afile", "afile is a file, not a folder"),
                        ("afile/sub", "afile is a file, not a folder")):
        result = pytester.runpytest(f"--llm-report-dir={value}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: --llm-report-dir={value} cannot hold llmcheck's "
                                     f"reports: *{what}; choose another folder"])
        assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.parametrize("path, what", [("afile/x.sqlite", "afile is a file, not a folder"),
                                        ("adir", "is a folder; give a file path")])
def test_a_cache_path_that_cannot_be_a_file_is_a_usage_error(pytester, path, what):
    pytester.makepyfile("def test_x():\n    pass\n")
    (pytester.path / "afile").write_text("")
    (pytester.path / "adir").mkdir()
    result = pytester.runpytest("--llm-cache=rw", f"--llm-cache-path={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --llm-cache: *{what}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("name, value", [("runs", "99999999999999999999"),
                                         ("runs", "100001"), ("concurrency", "5000")])
def test_absurd_counts_are_refused(name, value):
    with pytest.raises(UsageError, match="out of range"):
        validate(name, value, f"--llm-{name}")


def test_a_usage_error_inside_a_test_is_shown_once_without_our_frames(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=3)
        def test_bad_schema():
            llmcheck.assert_schema('{"a": 1}', {"type": "nonsense"})
    """)
    out = pytester.runpytest().stdout.str()
    # the failure's own section (llmcheck's summary after it lists the test with its reason)
    failure = out.split("FAILURES")[1].split("llmcheck pass rates")[0]
    assert failure.count("invalid JSON Schema") == 1
    assert "During handling" not in failure and "llmcheck/" not in failure


def test_a_bad_decorator_argument_points_at_the_users_line(pytester):
    pytester.makepyfile(test_bad="""
        import llmcheck

        @llmcheck.repeat(runs=-1)
        def test_x():
            pass
    """)
    out = pytester.runpytest().stdout.str()
    assert "@llmcheck.repeat(runs=-1) is invalid (out of range)" in out
    assert "settings.py" not in out and "decorator.py" not in out


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(
    st.text(max_size=80),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["session", "start", "settings", "nodeid",
                                                    "sample", "done", "index", "outcome"]),
                                   inner, max_size=4),
                 max_leaves=12).map(json.dumps)), max_size=8))
def test_any_leftover_journal_is_recovered_or_kept_with_its_path(tmp_path_factory, lines):
    from llmcheck_pytest import journal

    reports = tmp_path_factory.mktemp("reports")
    folder = reports / journal.JOURNAL_DIR
    folder.mkdir()
    path = folder / "0badc0ffee00-main-999999999.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (result,) = journal.recover_stale(reports, "other")
    if result.problem is not None:
        assert path.exists() and str(path) in result.message()
    else:
        assert not path.exists()
        assert result.report is None or result.report.exists()


# -- Ctrl-C stops retries and the process exits -----------------------------------------------


def test_ctrl_c_stops_retries_and_the_process_exits(pytester):
    import signal
    import subprocess
    import sys
    import time

    from fault_server import FaultServer

    pytester.makepyfile(test_hung="""
        import llmcheck

        @llmcheck.repeat(runs=8, concurrency=4)
        def test_waits(llm):
            llm("hello")
    """)
    # Each attempt may take an hour: a run that waited for its calls instead of abandoning
    # them would never exit, and the communicate() bound below (a guard against hanging
    # the suite, not a measurement) turns that into a failure.
    with FaultServer("hang") as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--llm-model=openai/x",
             f"--llm-api-base={server.url}", "--llm-retries=5", "--llm-timeout=3600"],
            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 300          # the 4 samples are waiting on it
            while server.request_count < 4 and proc.poll() is None:
                assert time.monotonic() < deadline, "the samples never reached the server"
                time.sleep(0.1)
            assert server.request_count == 4, proc.communicate()[0]
            proc.send_signal(signal.SIGINT)
            interrupted_at = time.monotonic()
            try:
                out, _ = proc.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                pytest.fail("pytest went on waiting for its calls after Ctrl-C")
        finally:
            proc.kill()
        late = [r for r in server.requests if r["at"] > interrupted_at]
    assert not late, f"{len(late)} request(s) started after Ctrl-C"  # no retry, no new sample
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Exception ignored" not in out and "Traceback" not in out
    data = json.loads((pytester.path / "reports" / "llmcheck.json").read_text())
    assert data["interrupted"] is True


def test_ctrl_c_that_lands_in_a_finalizer_still_stops_the_run(pytester, report):
    # Python raises KeyboardInterrupt wherever the main thread is; inside a __del__ it
    # is printed and dropped ("Exception ignored in"). Seen in CI during a litellm call:
    # the session went on to its 500th sample and exited 0.
    pytester.makepyfile("""
        import os, signal
        import llmcheck

        class Finalized:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10000):  # the handler runs in here, and raises in here
                    pass

        @llmcheck.repeat(runs=40, min_pass_rate=0.5, verdict="threshold", early_stop=False,
                         concurrency=1)
        def test_slow(llm_sample):
            if llm_sample.index == 3:
                Finalized()
    """)
    result = pytester.runpytest_subprocess()
    assert "Exception ignored" in result.stdout.str() + result.stderr.str()  # it was dropped
    assert result.ret == pytest.ExitCode.INTERRUPTED
    t = by_name(report())["test_slow"]
    # the sample Ctrl-C cut into is no evidence: it is not recorded
    assert t["run"] == 3 and t["interrupted"] is True
    assert t["verdict"]["stop_reason"] == "interrupted after 3 of 40 samples"


def test_ctrl_c_whose_traceback_has_no_line_number_exits_2_with_the_summary(pytester):
    # On Python 3.11 a signal can land on an instruction without a line number; pytest's
    # rendering of that KeyboardInterrupt died with a TypeError and the run exited 1.
    test = """
        import sys, types

        def test_stop():
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                # an entry as CPython makes it: an instruction with no line number
                code = sys._getframe().f_code
                offset = next(start for start, _, line in code.co_lines() if line is None)
                exc.__traceback__.tb_next = types.TracebackType(None, sys._getframe(),
                                                                offset, -1)
                assert exc.__traceback__.tb_next.tb_lineno is None
                raise
    """
    pytester.makepyfile(test)
    without = pytester.runpytest_subprocess("-p", "no:llmcheck")
    assert without.ret == 1 and "TypeError" in without.stderr.str()  # pytest's own crash
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "TypeError" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*", "*no tests ran*"])


def test_the_runner_restores_the_sigint_handler():
    import signal

    from llmcheck.config.settings import session_defaults
    from llmcheck.core.runner import RunSpec, SampleRunner
    from llmcheck.records.resolve import resolve_test

    settings = resolve_test({"runs": 2, "concurrency": 1}, session_defaults())
    seen = []

    def body():
        seen.append(signal.getsignal(signal.SIGINT))

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        runner = SampleRunner(body, RunSpec("t", settings))
        runner.run()
        assert seen == [runner._on_sigint] * 2
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # a handler of the user's own is left alone
        mine = lambda signum, frame: None  # noqa: E731
        signal.signal(signal.SIGINT, mine)
        seen.clear()
        SampleRunner(body, RunSpec("t", settings)).run()
        assert seen == [mine, mine]
        assert signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_bad_scenario_file_is_a_usage_error_before_any_test_runs(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=2)
        def test_x(llm):
            llm("hi")
    """)
    (pytester.path / "bad.yaml").write_bytes(b"name: \xff\xfe broken\n")
    result = pytester.runpytest("--llm-scenario=bad.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --llm-scenario: *bad.yaml*not UTF-8*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
