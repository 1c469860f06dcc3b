"""A full disk fails files, never the session (issue 18, item 8): a report, journal or
cache write the disk refuses is a warning naming the path and the OS error; the tests
keep running and keep their verdicts, the exit status follows the verdicts, and the
summary lists every file that could not be written and why. And an output path that
is a FIFO is refused, not waited on (item 9)."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys

import pytest

from llmcheck.model.cache import ResponseCache

SUITE = """
import llmcheck

@llmcheck.repeat(runs=12, min_pass_rate=0.5, concurrency=2)
def test_one(llm_sample):
    pass

@llmcheck.repeat(runs=12, min_pass_rate=0.9, concurrency=2)
def test_two(llm_sample):
    assert llm_sample.index % 2 == 0, "odd sample"

@llmcheck.repeat(runs=12, min_pass_rate=0.5)
def test_three(llm):
    assert llm("Say hello.").text

@llmcheck.repeat(runs=12, min_pass_rate=0.5)
def test_four(llm_sample):
    pass
"""

# The disk is full under the reports folder: every report write fails with ENOSPC, and
# so does the journal's first flush; the cache refuses writes too (sqlite's own "disk
# is full" is shown below, on the cache alone: when it strikes depends on page fill).
FULL_DISK = """
import errno, io, os
import pytest
import llmcheck.files as files

def _no_space(path, *args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

class _FullDisk(io.StringIO):
    def flush(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

files.write_atomic = _no_space
files.open_private = lambda path, mode="a": _FullDisk()

@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    from llmcheck_pytest.session import SESSION_KEY

    cache = session.config.stash[SESSION_KEY].models.accounts.cache
    cache._db.execute("PRAGMA query_only = ON")
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_a_full_disk_is_a_warning_per_file_and_the_verdicts_stand(pytester, xdist):
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeconftest(FULL_DISK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--llm-cache=write",
                                           *xdist)
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "OSError" not in out, out
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the verdicts', as without a full disk
    assert "odd sample" in out  # the failing test still says why
    reports = pytester.path / "reports"
    json_report = reports / "llmcheck.json"
    assert f"warning: could not write the JSON report {json_report}: No space left on " \
           "device (ENOSPC)" in out
    journals = [line for line in out.splitlines()
                if line.startswith("warning: could not write the sample journal")]
    assert journals and all("No space left on device (ENOSPC); samples after it were not "
                            "journaled" in line for line in journals), out
    cache = pytester.path / ".llmcheck" / "cache.sqlite"
    assert f"warning: could not write the replay cache {cache}: attempt to write a readonly " \
           "database; answers after it were not recorded" in out
    assert "llmcheck report: not written (see the warning above)" in out
    table = out[out.index("llmcheck pass rates"):]
    for name in ("test_one", "test_two", "test_three", "test_four"):
        assert f"test_suite.py::{name}" in table
    assert not json_report.exists()


def test_a_cache_write_the_disk_refuses_stops_recording_not_the_sample(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite", "write")
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count = {pages}")  # sqlite's own "disk is full"
    payload = {"text": "x" * 2000, "model": "m"}
    for i in range(10):
        cache.put(f"key{i}", "m", payload)  # never raises
    assert cache.write_problem == ("database or disk is full; answers after it were not "
                                   "recorded")
    assert 0 < cache.writes < 10
    cache.close()
    rows = sqlite3.connect(tmp_path / "cache.sqlite").execute(
        "SELECT COUNT(*) FROM answers").fetchone()[0]
    assert rows == cache.writes


def test_a_report_path_that_is_a_fifo_is_refused_not_waited_on(pytester):
    pytester.makepyfile(test_suite=SUITE.split("@llmcheck.repeat(runs=12, min_pass_rate=0.5)\n"
                                               "def test_three")[0])
    (pytester.path / "reports").mkdir()
    fifo = pytester.path / "reports" / "llmcheck.json"
    os.mkfifo(fifo)
    # a writer that opened the FIFO would wait for a reader forever: the timeout guards
    # the suite against that hang, it is no measurement
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                          cwd=pytester.path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout
    assert (f"warning: could not write the JSON report {fifo}: it is a FIFO (named pipe), not "
            "a regular file; llmcheck writes only to a regular file or a new path"
            in proc.stdout), proc.stdout
    assert os.stat(fifo).st_mode & 0o170000 == 0o010000  # still the FIFO
    assert not (pytester.path / "reports" / "llmcheck.md").exists()


def test_a_failed_write_names_the_os_error():
    from llmcheck.files import write_error

    assert write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) == \
        "No space left on device (ENOSPC)"
    assert write_error(OSError(errno.EROFS, os.strerror(errno.EROFS), "/x")) == \
        "Read-only file system (EROFS)"
