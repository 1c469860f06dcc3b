"""Issue 18, item 20, through the real SampleRunner: "stopped early" and the early-stop
column mean the same under every policy (the verdict was settled before the last
planned sample), however many samples were already running; item 21: the usage line
cannot read as a contradiction.

Failing samples are slower than passing ones, so the samples after the deciding one
are all launched (and finish, uncounted) before it settles.
"""

from __future__ import annotations

import time

import pytest

from llmcheck.config.settings import session_defaults
from llmcheck.core.context import current_sample
from llmcheck.core.runner import RunSpec, SampleRunner
from llmcheck.records.resolve import resolve_test
from llmcheck.records.schema import UsageTotals
from llmcheck.reports.cells import early_stop_cell
from llmcheck.reports.terminal import usage_line


def body_failing_at(failures: set[int]):
    def body() -> None:
        index = current_sample().index
        time.sleep(0.3 if index in failures else 0.001)
        assert index not in failures, "wrong answer"
    return body


@pytest.mark.parametrize("marker, failures, decided", [
    # sequential at N=20: the failures at 0 and 16 leave no way to 19 passes at sample 17
    ({"verdict": "sequential", "runs": 20, "min_pass_rate": 0.9}, {0, 16}, 17),
    # threshold at N=20: three failures by sample 15 leave 17/20 < 0.9 at best
    ({"verdict": "threshold", "runs": 20, "min_pass_rate": 0.9}, {0, 7, 14}, 15),
])
def test_a_verdict_settled_before_the_last_sample_stopped_early_under_every_policy(
        marker, failures, decided) -> None:
    settings = resolve_test({**marker, "concurrency": 4}, session_defaults())
    spec = RunSpec(test_id="t.py::test_model", settings=settings, session_seed=1)
    r = SampleRunner(body_failing_at(failures), spec).run()
    v = r.verdict
    assert v.outcome == "failed" and v.decided_after == decided
    assert r.run == 20 and r.uncounted == 20 - decided  # every sample had been launched
    assert v.stopped_early is True
    assert early_stop_cell(r) == f"after {decided} (+{20 - decided})"
    assert v.stop_reason.startswith(f"decided at sample {decided} of 20 (all 20 were "
                                    "already running): ")


def test_the_usage_line_says_answered_failed_and_retried_apart() -> None:
    line = usage_line(UsageTotals(calls=42, failed_calls=20, retries=0, prompt_tokens=10,
                                  completion_tokens=5))
    assert line.startswith("model usage: 42 call(s): 22 answered, 20 failed; no call was "
                           "retried; 10 prompt + 5 completion tokens")
    assert "after retries" not in line
    line = usage_line(UsageTotals(calls=10, cached_calls=3, failed_calls=1, retries=1))
    assert "10 call(s): 9 answered (3 from cache), 1 failed; 1 retry in all" in line
