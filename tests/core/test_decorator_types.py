"""Every public decorator checks the type of each argument a user gives it in Python:
a string is never read as a number (``runs="20"``), a bool is not a number and a
number is not a bool. The error names the decorator, the argument, the value and
what is accepted, and a misspelt keyword gets the nearest real one."""

from __future__ import annotations

import pytest

import llmcheck
from llmcheck.errors import UsageError


@pytest.mark.parametrize(("keyword", "value", "accepted"), [
    ("runs", "20", "an integer >= 1"),
    ("runs", True, "an integer >= 1"),
    ("runs", 20.0, "an integer >= 1"),
    ("concurrency", "4", "an integer >= 1"),
    ("max_tokens", 1.5, "an integer >= 1"),
    ("min_pass_rate", "0.9", "a number >= 0 and <= 1"),
    ("min_pass_rate", True, "a number >= 0 and <= 1"),
    ("confidence", "0.95", "a number > 0 and < 1"),
    ("temperature", "0.7", "a number >= 0 and <= 2"),
    ("early_stop", 1, "true or false"),
    ("early_stop", "false", "true or false"),
    ("verdict", 3, "one of threshold, sequential, interval"),
    ("interval", b"wilson", "one of wilson, clopper-pearson"),
    ("model", 5, "a non-empty string"),
])
def test_repeat_refuses_a_value_of_the_wrong_type(keyword, value, accepted):
    with pytest.raises(UsageError) as info:
        llmcheck.repeat(**{keyword: value})
    message = str(info.value)
    assert message.startswith(f"@llmcheck.repeat({keyword}={value!r}) is invalid")
    assert accepted in message
    assert f"(got {type(value).__name__})" in message


def test_repeat_still_takes_values_of_the_right_type():
    def test_x() -> None:
        pass

    marked = llmcheck.repeat(runs=20, min_pass_rate=1, confidence=0.9, early_stop=False,
                             verdict="threshold", model="openai/gpt-4o-mini")(test_x)
    (mark,) = marked.pytestmark
    assert mark.kwargs == {"runs": 20, "min_pass_rate": 1.0, "confidence": 0.9,
                           "early_stop": False, "verdict": "threshold",
                           "model": "openai/gpt-4o-mini"}


def test_a_misspelt_repeat_keyword_names_the_nearest_one():
    with pytest.raises(UsageError, match=r"unknown keyword min_pass_rat=0\.9 \(did you mean "
                                         r"min_pass_rate\?\)"):
        llmcheck.repeat(min_pass_rat=0.9)  # type: ignore[call-overload]


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"rate_limit": "0.3"}, "fault rate rate_limit='0.3' must be a number from 0 to 1"),
    ({"rate_limit": True}, "fault rate rate_limit=True must be a number from 0 to 1"),
    ({"rate_limit": 0.1, "seed": "1"}, "fault seed must be an integer, got '1'"),
    ({"rate_limit": 0.1, "seed": True}, "fault seed must be an integer, got True"),
    ({"rate_limit": 0.1, "retry_after": "2"}, "fault retry_after='2' must be a number"),
    ({"rate_limit": 0.1, "timeout_s": True}, "fault timeout_s=True must be a number"),
    ({"rate_limt": 0.3}, "unknown fault kind 'rate_limt' (did you mean rate_limit?)"),
])
def test_faults_refuses_a_value_of_the_wrong_type(kwargs, said):
    with pytest.raises(UsageError) as info:
        llmcheck.faults(**kwargs)
    assert str(info.value).startswith("@llmcheck.faults: ")
    assert said in str(info.value)


def test_faults_refuses_a_spec_that_is_not_text():
    with pytest.raises(UsageError, match=r"faults must be written like 'rate_limit:0\.3"):
        llmcheck.faults(0.3)  # type: ignore[call-overload]


@pytest.mark.parametrize("name", [3, "", True])
def test_check_refuses_a_name_that_is_not_text(name):
    with pytest.raises(UsageError, match="@check: name must be a non-empty string"):
        llmcheck.check(name=name)
