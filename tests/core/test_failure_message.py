"""How a failing sample's message and traceback read (llmcheck.core.outcome): the
first line says what was wrong, a cut keeps the violation and shortens the excerpt of
the output at a word boundary, and only llmcheck's own exception chains are hidden."""

from __future__ import annotations

import json

import pytest

import llmcheck
from llmcheck.core.outcome import format_traceback, one_paragraph, shorten_message

SCHEMA_MESSAGE = ("schema(Person): 2 violations of Person in '{\"name\": \"Ada\", \"age\": "
                  "\"very old\"}':\n"
                  "  - $.age: Input should be a valid integer (got 'very old')\n"
                  "  - $.email: Field required")


def test_a_heading_and_its_violations_become_one_paragraph():
    assert one_paragraph(SCHEMA_MESSAGE) == (
        "schema(Person): 2 violations of Person: $.age: Input should be a valid integer "
        "(got 'very old'); $.email: Field required in '{\"name\": \"Ada\", \"age\": "
        "\"very old\"}'")


@pytest.mark.parametrize("message", [
    "assert 'Paris' in 'Lyon'\n +  where 'Lyon' = reply.text",  # pytest's introspection
    "under injected timeout: no answer\n(injected: timeout on call 0)",
    "just one line",
    "a heading:\nthat is not followed by a list",
])
def test_other_messages_keep_their_lines(message):
    assert one_paragraph(message) == message


def test_a_long_message_loses_its_excerpt_before_its_violation():
    output = " ".join(["Augusta Ada King, Countess of Lovelace"] * 20)
    message = (f"schema(Person): 1 violation of Person: $.age: Input should be a valid "
               f"integer (got 'very old') in {output!r}")
    short = shorten_message(message, 150)
    assert len(short) <= 150
    assert short.startswith("schema(Person): 1 violation of Person: $.age: Input should be "
                            "a valid integer (got 'very old') in 'Augusta Ada King")
    assert short.endswith("…'")
    last_word = short[:-2].split()[-1]
    assert last_word in output.split()  # cut between words


def test_short_quoted_values_and_apostrophes_are_not_taken_for_excerpts():
    message = ("judge('Names Paris'): score 0.10 < 0.7: the answer doesn't name the city; "
               "judged " + repr("Lyon is nice and it is quite a big city with lots to see."))
    short = shorten_message(message, 110)
    assert short.startswith("judge('Names Paris'): score 0.10 < 0.7: the answer doesn't name "
                            "the city; judged 'Lyon")
    assert short.endswith("…'") and len(short) <= 110


def test_the_end_is_cut_at_a_word_when_the_statement_alone_is_too_long():
    message = "the answer " + "really " * 40 + "misses the point"
    short = shorten_message(message, 60)
    assert len(short) <= 60 and short.endswith("…")
    assert short[:-1].split()[-1] in ("answer", "really")


def failure(body) -> BaseException:
    try:
        body()
    except BaseException as exc:  # noqa: BLE001 - the test looks at whatever was raised
        return exc
    raise AssertionError("no exception")


CHAIN = "During handling of the above exception"


def test_llmcheck_s_own_chain_is_hidden_and_full_trace_keeps_it():
    exc = failure(lambda: llmcheck.assert_json("not json {"))
    assert CHAIN not in format_traceback(exc)
    assert "CheckFailed: json: not valid JSON" in format_traceback(exc)
    assert CHAIN in format_traceback(exc, keep_chain=True)


def test_a_chain_through_the_user_s_code_is_kept():
    def parse(text: str) -> object:
        try:
            return json.loads(text)
        except ValueError:
            raise RuntimeError("the app could not read the model's answer")  # noqa: B904

    exc = failure(lambda: parse("not json"))
    assert CHAIN in format_traceback(exc)  # not llmcheck's exception: the user's story
