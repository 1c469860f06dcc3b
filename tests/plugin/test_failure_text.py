"""What a user reads about failing samples, through the real plugin: each failure
group's message starts with what was wrong, in one paragraph (the check, what it
expected, an excerpt of what it got), never a dangling colon; llmcheck's own chained
tracebacks ("During handling of the above exception...") are left out unless
``--full-trace`` asks for everything; and a message that must be cut loses the
excerpt of the output, at a word boundary, not the statement of what was violated."""

from __future__ import annotations

import re

import pytest
from helpers import load_report

SUITE = '''
import llmcheck
from pydantic import BaseModel

LONG_NAME = " ".join(["Augusta Ada King Countess of Lovelace"] * 12)


class Person(BaseModel):
    name: str
    age: int
    email: str
    height_cm: float


class FixedJudge:
    def chat(self, messages, **params):
        return '{"score": 0.1, "reason": "the answer never names Paris"}'


@llmcheck.repeat(runs=2, verdict="threshold")
def test_json():
    llmcheck.assert_json('Sure! Here is the person: {"name": "Ada", "age": }')


@llmcheck.repeat(runs=2, verdict="threshold")
def test_schema():
    llmcheck.assert_schema('{"name": "%s", "age": "very old"}' % LONG_NAME, Person)


@llmcheck.repeat(runs=2, verdict="threshold")
def test_contains():
    llmcheck.assert_contains("The capital of France is Lyon, a lovely city. " * 30, "Paris")


@llmcheck.repeat(runs=2, verdict="threshold")
def test_judge():
    llmcheck.assert_judge("Lyon is nice.", "Names Paris as the capital", client=FixedJudge())
'''

CHAIN = "During handling of the above exception, another exception occurred"
VIOLATION = "$.age: Input should be a valid integer, unable to parse string as an integer"


@pytest.fixture
def failing_session(pytester):
    pytester.makepyfile(test_checks=SUITE)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=4)
    return pytester, result


def group_line(out: str, check: str) -> str:
    """The terminal's line of the failure group whose message starts with ``check``, in
    the failures section (under CI=true pytest's short summary repeats whole messages)."""
    out = out.split("short test summary info", 1)[0]
    lines = [line for line in out.splitlines()
             if re.match(rf"\s+\d+x llmcheck\.CheckFailed: {re.escape(check)}", line)]
    assert len(lines) == 1, out
    return lines[0]


def markdown_message(pytester: pytest.Pytester, test: str) -> str:
    """The message cell of ``test``'s row in the markdown report's top failure messages."""
    text = (pytester.path / "reports" / "llmcheck.md").read_text()
    section = text.split("### Top failure messages", 1)[1]
    rows = [row for row in section.splitlines() if f"`test_checks.py::{test}`" in row]
    assert rows, section
    return rows[0].split("|")[4].strip()


def test_a_failing_sample_says_what_was_wrong_first(failing_session):
    pytester, _ = failing_session
    samples = {t["nodeid"].split("::")[-1]: t["samples"][0]["message"]
               for t in load_report(pytester)["tests"]}
    first = {name: message.splitlines()[0] for name, message in samples.items()}
    assert first["test_json"].startswith("json: not valid JSON (Expecting value at line 1 "
                                         "column 1) in 'Sure! Here is the person:")
    # the violation, then the excerpt of the output: one paragraph, no dangling colon
    assert first["test_schema"].startswith(
        f"schema(Person): 3 violations of Person: {VIOLATION} (got 'very old'); "
        "$.email: Field required; $.height_cm: Field required in '{\"name\": \"Augusta Ada")
    assert first["test_contains"].startswith("contains_all(['Paris']): missing 1 of 1: "
                                             "['Paris'] in 'The capital of France is Lyon")
    assert first["test_judge"].startswith("judge('Names Paris as the capital'): score 0.10 < "
                                          "0.7: the answer never names Paris; judged 'Lyon")
    assert not any(line.rstrip().endswith(":") for line in first.values())


def test_the_terminal_shows_no_chained_traceback_of_llmcheck_itself(failing_session):
    _, result = failing_session
    out = result.stdout.str()
    assert CHAIN not in out
    assert "load_json" not in out  # the JSON parser's frame inside llmcheck
    assert "test_checks.py\", line" in out  # the user's own line is shown


def test_full_trace_keeps_the_chain(pytester):
    pytester.makepyfile(test_checks=SUITE)
    result = pytester.runpytest("-p", "no:randomly", "--full-trace", "-k", "test_json")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert CHAIN in out
    assert "NotJSON" in out


def test_a_grouped_message_keeps_the_violation_in_the_terminal_and_markdown(failing_session):
    pytester, result = failing_session
    line = group_line(result.stdout.str(), "schema(Person)")
    assert VIOLATION in line
    assert "(samples 0, 1)" in line
    cell = markdown_message(pytester, "test_schema")
    assert len(cell) <= 320  # 300 and markdown's escapes
    assert "$.height\\_cm: Field required in '" in cell  # the last violation, then the excerpt
    # the excerpt of the output was cut, at a word boundary, and says so
    excerpt = cell.split(" in '", 1)[1]
    assert "…'" in excerpt
    kept = excerpt.split("…", 1)[0]
    assert "Augusta Ada King Countess of Lovelace".startswith(kept.split()[-1]) or \
        kept.split()[-1] in "Augusta Ada King Countess of Lovelace".split()


def test_a_long_output_excerpt_is_cut_at_a_word_boundary(failing_session):
    pytester, result = failing_session
    for text in (group_line(result.stdout.str(), "contains_all"),
                 markdown_message(pytester, "test_contains")):
        assert "missing 1 of 1: \\['Paris'\\]" in text or "missing 1 of 1: ['Paris']" in text
        words = set("The capital of France is Lyon, a lovely city.".split())
        cut = re.search(r"in '([^…']*)…'", text)
        if cut is not None:  # the terminal has room for the whole excerpt; markdown may not
            assert cut.group(1).split()[-1] in words


def test_the_judge_failure_reads_in_one_line(failing_session):
    pytester, result = failing_session
    line = group_line(result.stdout.str(), "judge(")
    assert "score 0.10 < 0.7: the answer never names Paris; judged 'Lyon is nice.'" in line
    assert "the answer never names Paris" in markdown_message(pytester, "test_judge")
