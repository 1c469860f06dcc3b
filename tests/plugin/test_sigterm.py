"""SIGTERM, what CI runners send to cancel a job, stops a session as Ctrl-C does (issue 18,
item 10): model calls stop (no request reaches the provider after the signal), every
report is written and marked interrupted, and pytest exits non-zero. It used to die at
once with 143, leaving a mid-run snapshot that said ``interrupted: false``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fault_server import FaultServer

SUITE = """
import llmcheck

@llmcheck.repeat(runs=4, concurrency=1, min_pass_rate=0.5, early_stop=False)
def test_first(llm):
    llm("hello")

@llmcheck.repeat(runs=8, concurrency=4, min_pass_rate=0.5)
def test_second(llm):
    llm("hello")
"""


def _cancel(pytester: pytest.Pytester, server: FaultServer, waiting: int, args: list[str],
            *, group: bool) -> tuple[subprocess.Popen, str, float]:
    """Run the suite against ``server``; once ``waiting`` requests have reached it, send
    SIGTERM (to the whole process group when ``group``, as a CI runner that ends the job's
    process tree does; else to pytest alone). Returns the process, its output and when
    the signal went."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--llm-model=openai/x",
         f"--llm-api-base={server.url}", "--llm-retries=5", "--llm-timeout=3600", *args],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        # guards against hanging the suite, not measurements
        deadline = time.monotonic() + 600
        while server.request_count < waiting and proc.poll() is None:
            assert time.monotonic() < deadline, "the samples never reached the server"
            time.sleep(0.1)
        assert server.request_count == waiting, proc.communicate()[0]
        signalled = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            pytest.fail("pytest went on waiting for its calls after SIGTERM")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc, out, signalled


def _assert_stopped_and_reported(pytester, server, proc, out, signalled) -> dict:
    late = [r for r in server.requests if r["at"] > signalled]
    assert not late, f"{len(late)} request(s) started after SIGTERM"
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out  # not 143, and not 0
    reports = pytester.path / "reports"
    data = json.loads((reports / "llmcheck.json").read_text())
    assert data["interrupted"] is True and data["exit_status"] == 2
    for name in ("llmcheck.md", "llmcheck.html"):
        assert "the session was interrupted" in (reports / name).read_text(), name
    return {t["nodeid"].split("::")[-1]: t for t in data["tests"]}


def test_sigterm_stops_calls_and_writes_every_report_marked_interrupted(pytester):
    pytester.makepyfile(test_suite=SUITE)
    # test_first's 4 calls are answered; test_second's 4 concurrent calls hang
    with FaultServer("hang", script=["ok"] * 4) as server:
        proc, out, signalled = _cancel(pytester, server, 8, [], group=True)
        tests = _assert_stopped_and_reported(pytester, server, proc, out, signalled)
    assert tests["test_first"]["run"] == 4 and tests["test_first"]["interrupted"] is False
    second = tests["test_second"]
    assert second["interrupted"] is True and second["verdict"]["outcome"] == "interrupted"
    assert "test_second interrupted after 0 of 8 samples" in out
    assert "Traceback" not in out


def test_sigterm_under_xdist_stops_every_worker(pytester):
    pytester.makepyfile(test_suite=SUITE)
    # each worker holds one test: test_first's 1 call and test_second's 4 hang
    with FaultServer("hang") as server:
        proc, out, signalled = _cancel(pytester, server, 5, ["-n", "2"], group=False)
        tests = _assert_stopped_and_reported(pytester, server, proc, out, signalled)
    assert set(tests) <= {"test_first", "test_second"}
    assert all(t["interrupted"] for t in tests.values())
