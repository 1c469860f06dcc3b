"""What a new user meets on a first run: replay across sessions, a simulator they
started themselves, a table that fits the terminal, tests that forgot the
marker."""

from __future__ import annotations

import re

from helpers import EXTRACT_SUITE, by_name

# -- replay ---------------------------------------------------------------------


def test_replay_works_across_sessions_without_pinning_the_seed(pytester, report,
                                                              model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    pytester.runpytest("--llm-cache=write", "--llm-no-early-stop").assert_outcomes(passed=1)
    written = by_name(report())["test_extract"]
    result = pytester.runpytest("--llm-cache=read", "--llm-no-early-stop")
    result.assert_outcomes(passed=1)
    data = report()
    assert data["seed"] != written["samples"][0]["seed"]  # another random session seed
    replayed = by_name(data)["test_extract"]
    assert replayed["usage"]["cached_calls"] == replayed["usage"]["calls"] == 8
    assert [s["outcome"] for s in replayed["samples"]] == \
        [s["outcome"] for s in written["samples"]]
    assert data["cache"]["hits"] == 8 and data["cache"]["misses"] == 0
    result.stdout.fnmatch_lines(["llmcheck cache (read, *cache.sqlite): 8 of 8 call(s) "
                                 "replayed, 0 missed"])


def test_a_read_session_that_never_hits_says_so_with_the_likely_cause(pytester, report,
                                                                     model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    pytester.runpytest("--llm-cache=write").assert_outcomes(passed=1)
    pytester.makepyfile(EXTRACT_SUITE.replace("Ada Lovelace as JSON", "Ada Lovelace, as JSON"))
    result = pytester.runpytest("--llm-cache=read", "--llm-runs=4")
    result.stdout.fnmatch_lines(["llmcheck cache (read, *): 0 of * call(s) replayed, * missed; "
                                 "nothing matched: the prompts or the parameters *"])
    assert report()["cache"]["hits"] == 0


def test_zero_hits_against_another_model_names_both(pytester, model_stack, simulator):
    pytester.makepyfile(EXTRACT_SUITE)
    pytester.runpytest("--llm-cache=write", "--llm-runs=2").assert_outcomes(passed=1)
    result = pytester.runpytest("--llm-cache=read", "--llm-runs=2", "--llm-model=openai/other",
                                f"--llm-api-base={simulator.url}")
    result.stdout.fnmatch_lines(["*nothing matched: the cache holds answers of "
                                 "openai/llmcheck-sim, but this session called openai/other"])


# -- a simulator the user started is not "no model configured" ---------------------


def test_a_model_named_like_the_simulator_is_a_configured_model(pytester, report, simulator):
    pytester.makepyfile(EXTRACT_SUITE)
    result = pytester.runpytest("--llm-model=openai/llmcheck-sim", "--llm-runs=4",
                                f"--llm-api-base={simulator.url}")
    result.assert_outcomes(passed=1)
    data = report()
    assert data["simulated"] is False and data["model"] == "openai/llmcheck-sim"
    assert by_name(data)["test_extract"]["simulated"] is False
    out = result.stdout.str()
    assert "no model configured" not in out
    calls = data["usage"]["calls"]
    # the sequential rule may settle after 2 passes (curtailed at N=4): every call, counted
    # or in flight at the decision, went to the user's server
    assert calls >= 2 and simulator.request_count == calls
    # the name carries a price of 0: cost is known, not "?"
    assert data["usage"]["cost"] == 0.0 and data["usage"]["unpriced_calls"] == 0
    assert "no known price" not in out


def test_the_simulator_the_plugin_starts_is_reported_as_simulated(pytester, report,
                                                                  model_stack):
    pytester.makepyfile(EXTRACT_SUITE)
    result = pytester.runpytest("--llm-runs=2")
    data = report()
    assert data["simulated"] is True and by_name(data)["test_extract"]["simulated"] is True
    result.stdout.fnmatch_lines(["llmcheck: no model configured, so these tests ran against "
                                 "the built-in simulator*"])


# -- the table fits the terminal ----------------------------------------------------


LONG_IDS = """
import pytest, llmcheck

@pytest.mark.parametrize("case", ["a-rather-long-parameter-naming-a-golden-case-%d" % i
                                  for i in range(3)])
@llmcheck.repeat(runs=6, min_pass_rate=0.9)
def test_a_descriptive_name_for_an_extraction_that_users_would_write(case, llm_sample):
    assert llm_sample.index != 2
"""


def _table(out: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "llmcheck pass rates" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("llmcheck report:"))
    return lines[start + 1:end]


def test_the_summary_fits_pytests_terminal_width(pytester, monkeypatch):
    pytester.makepyfile(test_a_module_with_a_long_name_for_llm_extraction_checks=LONG_IDS)
    monkeypatch.setenv("COLUMNS", "100")
    result = pytester.runpytest("--llm-no-early-stop")
    table = _table(result.stdout.str())
    rows = [line for line in table if "::test_a_desc" in line or "…" in line]
    assert len(rows) >= 3
    prose = ("warning", "llmcheck:")  # sentences wrap like any text; the table must not
    too_wide = [line for line in table if len(line) > 100 and not line.startswith(prose)
                and "inconclusive:" not in line]
    assert not too_wide, too_wide
    header = table[0]
    for column in ("n", "rate", r"95% (?:interval|CI)", "req", "verdict"):
        assert re.search(rf"\b{column}\b", header), header
    assert all("5/6" not in row or "FAIL" in row for row in rows)


def test_a_log_without_a_width_keeps_the_whole_table(pytester, monkeypatch):
    pytester.makepyfile(test_a_module_with_a_long_name_for_llm_extraction_checks=LONG_IDS)
    monkeypatch.delenv("COLUMNS")
    out = pytester.runpytest_subprocess("--llm-no-early-stop").stdout.str()
    table = _table(out)
    assert "early stop" in table[0]
    assert any("test_a_descriptive_name_for_an_extraction_that_users_would_write["
               "a-rather-long-parameter-naming-a-golden-case-0]" in line for line in table)


# -- a test that uses the llm fixture without the marker ------------------------------


UNMARKED = """
def test_forgot_the_marker(llm):
    assert llm("What is the capital of France?").text

def test_also_forgot(llm):
    llm("hi")
"""


def test_an_unmarked_test_using_llm_is_warned_about_by_name(pytester, model_stack):
    pytester.makepyfile(UNMARKED)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines([
        "*warnings summary*",
        "*test_forgot_the_marker*",
        "*test_also_forgot*",
        "*LLMCheckWarning: this test uses the llm fixture but is not marked with "
        "@llmcheck.repeat(...) or @pytest.mark.llm(...), so it ran once, with no pass rate*",
    ])


def test_the_unmarked_warning_can_be_made_an_error(pytester, model_stack):
    pytester.makepyfile(UNMARKED)
    result = pytester.runpytest("-W", "error::llmcheck.LLMCheckWarning")
    result.assert_outcomes(errors=2)
