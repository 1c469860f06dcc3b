"""Issue 18, items 20 to 23, through the real plugin: what the table says agrees with
itself, and a session cannot go green on errors.

The sequential suites decide each sample's outcome from a fixed string (a deterministic
model) and fail slowly (a wrong answer takes longer than a right one), at concurrency 32:
every planned sample is launched long before the slow failures finish, so a verdict
settled in index order at sample 59 leaves all 93 running.
"""

from __future__ import annotations

from fault_server import FaultServer
from helpers import by_name, load_report

# found by llmcheck.stats.make_policy("sequential", min_pass_rate=0.9) (N=93): the first
# is cut short at 77/86 (7 left, which could only end in a fail, at the boundary or at N),
# the second crosses the fail boundary at 50/59, the third reaches N=93 at 85/93 with no
# boundary (an inconclusive pass by the truncated test)
CURTAILED = ("PPPPPPPPPPPPPPPPPFFPPPFPPPPPPPPPPPPPPPPPFPPPPPFPPPPPFPPPPPPPPPPPPPPPPPPPPPFPPPPFP"
             "PPPPFPPPPFPP")
BOUNDARY = ("PPPPPPPPPPFPPPPPPPPPPPPPPPPPPPPFPPPFPPPPFPPPPPPPPFPFPFPPPFFPPPPPPPPFPPPPPPPPPPPPFF"
            "PFPPPPPPPPP")
TRUNCATED = ("PPPPPPPPPPPPPPPPPFPPPPFPPPPPPPPPPPPPPPPPFPPPPPFPPPPPFPPPPPPPPPPPPPPPPPPPPPPPPPPPFP"
             "PPPFPPPPPFPPPPFPP")

SEQUENTIAL_SUITE = f"""
import time

import llmcheck

def judged(outcomes, index):
    ok = outcomes[index] == "P"
    time.sleep(0.005 if ok else 0.4)  # a wrong answer is slower
    assert ok, "the answer is wrong"

@llmcheck.repeat(concurrency=32)
def test_cut_short(llm_sample):
    judged({CURTAILED!r}, llm_sample.index)

@llmcheck.repeat(concurrency=32)
def test_all_running(llm_sample):
    judged({BOUNDARY!r}, llm_sample.index)

@llmcheck.repeat(concurrency=32)
def test_to_the_end(llm_sample):
    judged({TRUNCATED!r}, llm_sample.index)
"""


def test_sequential_verdicts_say_what_happened(pytester) -> None:
    pytester.makepyfile(test_seq=SEQUENTIAL_SUITE)
    result = pytester.runpytest("--llm-seed=1", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    tests = by_name(load_report(pytester))

    # 23: cut short because the remaining samples could not change the outcome: a
    # conclusive FAIL that says so
    cut = tests["test_cut_short"]
    assert (cut["passed"], cut["failed"]) == (77, 9)
    v = cut["verdict"]
    assert v["outcome"] == "failed" and v["conclusive"] is True
    assert v["reason"].startswith("the remaining 7 samples could not change the outcome: "
                                  "77/86 passed")
    assert v["stopped_early"] is True and v["decided_after"] == 86

    # 23 and 20: settled at 59 while all 93 were running: early, and it says so
    running = tests["test_all_running"]
    v = running["verdict"]
    assert running["run"] == 93 and v["decided_after"] == 59 and v["conclusive"] is True
    assert v["stopped_early"] is True
    assert v["stop_reason"].startswith("decided at sample 59 of 93 (all 93 were already "
                                       "running): the SPRT's fail boundary was crossed")

    # 20: an inconclusive sequential verdict says how many samples would settle it
    end = tests["test_to_the_end"]
    v = end["verdict"]
    assert v["outcome"] == "passed" and v["conclusive"] is False
    assert v["stopped_early"] is False and v["samples_to_conclusive"] > 93
    n = v["samples_to_conclusive"]

    out = result.stdout.str()
    header = next(line for line in out.splitlines() if line.startswith("test "))
    assert "95% interval" in header  # 20: the interval says its confidence level
    rows = {line.split()[0].split("::")[-1]: line for line in out.splitlines()
            if line.startswith("test_seq.py::")}
    assert "after 86 (+7)" in rows["test_cut_short"]
    assert "FAIL " in rows["test_cut_short"] and "inconclusive" not in rows["test_cut_short"]
    assert "after 59 (+34)" in rows["test_all_running"]
    assert f"PASS (inconclusive, n≈{n})" in rows["test_to_the_end"]


ERRORS_SUITE = """
import llmcheck

@llmcheck.repeat(concurrency=4)
def test_answers(llm, llm_sample):
    # the samples whose answer would fail (a fifth of them) are exactly those on which
    # the provider errs: every answer that arrives passes
    would_fail = llm_sample.rng.random() < 0.2
    reply = llm("please fail" if would_fail else "please answer")
    assert not would_fail, reply.text

@llmcheck.repeat(concurrency=4)
def test_answers_again(llm, llm_sample):
    would_fail = llm_sample.rng.random() < 0.2
    reply = llm("please fail" if would_fail else "please answer")
    assert not would_fail, reply.text
"""


def test_errors_on_the_would_be_failures_do_not_turn_the_session_green(pytester,
                                                                         monkeypatch) -> None:
    """22: every scored sample passes, but counting the errors as failures each test
    would fail: pytest shows E for both and exits non-zero, and the report agrees."""
    monkeypatch.setenv("SHAPE_KEY", "sk-not-a-real-key-000000")
    pytester.makepyfile(test_shape=ERRORS_SUITE)
    with FaultServer("fail_on_ask") as provider:
        result = pytester.runpytest("--llm-seed=5", "--llm-model=openai/shape",
                                    f"--llm-api-base={provider.url}",
                                    "--llm-api-key-env=SHAPE_KEY", "--llm-retries=0",
                                    "-p", "no:randomly")
    result.assert_outcomes(errors=2)
    assert result.ret != 0
    for t in load_report(pytester)["tests"]:
        assert t["failed"] == 0 and t["errors"] > 0 and t["passed"] > 0
        v = t["verdict"]
        assert v["outcome"] == "error" and v["conclusive"] is False
        assert "may be hiding failures, so this is not a pass" in v["reason"]
    result.stdout.fnmatch_lines(["*may be hiding failures, so this is not a pass*"])


START_UP_SUITE = """
import sys

import llmcheck

@llmcheck.repeat(runs=4, concurrency=4, verdict="threshold", min_pass_rate=0.5)
def test_first_samples(llm):
    # the one-time start-up happened before this sample's clock started
    assert "litellm" in sys.modules, "litellm is imported inside the sample"
    llm("Return Ada Lovelace as JSON with name and age.")
"""


def test_start_up_is_not_in_the_first_samples_durations(pytester, monkeypatch) -> None:
    """21: litellm's import (seconds) happens once before the first sample, not inside
    it, and the summary shows it once. In a process of its own: this one preloaded it.
    With every installed plugin, as a user's session starts (conftest leaves some out)."""
    monkeypatch.delenv("PYTEST_ADDOPTS")
    pytester.makepyfile(test_start=START_UP_SUITE)
    result = pytester.runpytest_subprocess("--llm-seed=2", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    t = by_name(load_report(pytester))["test_first_samples"]
    assert t["failed"] == 0 and t["passed"] >= 2
    line = next(line for line in result.stdout.lines if line.startswith("llmcheck start-up:"))
    seconds = float(line.split()[2])
    assert max(s["duration"] for s in t["samples"]) < seconds
