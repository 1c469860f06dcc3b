"""The one JSON reader for model output (llmcheck/model/jsontext.py), and its entry
points agreeing: ``Completion.json()``, ``ToolCall.args()``, ``assert_json`` (strict
and lenient), ``assert_golden(method="json")`` and ``strategies.strict_json_object``
accept and refuse the same texts, with the same reason and place."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcheck import strategies
from llmcheck.checks import CheckFailed, assert_golden, assert_json
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion, ToolCall
from llmcheck.model.jsontext import MAX_DEPTH, JSONTextError, loads, read_json

DEEP = 2005

# name, text, what the bare reading gives: the value, or (reason, line, column) of the error
TABLE: list[tuple[str, str, Any]] = [
    ("object", '{"name": "Ada", "age": 36}', {"name": "Ada", "age": 36}),
    ("NaN", '{"a": NaN}', ("NaN is not valid JSON", 1, 7)),
    ("Infinity", '{"a": 1,\n "b": Infinity}', ("Infinity is not valid JSON", 2, 7)),
    ("-Infinity", "[1, -Infinity]", ("-Infinity is not valid JSON", 1, 5)),
    ("number beyond a double", '{"a": 1e999}', ("the number 1e999 is too large", 1, 7)),
    ("duplicated key", '{"a": 1, "a": 2}', ("duplicated key 'a'", 1, 10)),
    ("duplicated key, escaped", '{"a": 1, "\\u0061": 2}', ("duplicated key 'a'", 1, 10)),
    ("duplicated key, nested", '{"x": {"b": 1,\n"b": 2}}', ("duplicated key 'b'", 2, 1)),
    ("same key in two objects", '[{"a": 1}, {"a": 2}]', [{"a": 1}, {"a": 2}]),
    ("fenced", '```json\n{"a": 1}\n```', ("Expecting value", 1, 1)),
    ("trailing text", '{"a": 1} Hope this helps!', ("text after the JSON value", 1, 10)),
    ("leading prose", 'Sure: {"a": 1}', ("Expecting value", 1, 1)),
    (f"{DEEP} deep", "[" * DEEP + "]" * DEEP, (f"nested deeper than {MAX_DEPTH}", 1, 513)),
    (f"{MAX_DEPTH} deep", "[" * MAX_DEPTH + "]" * MAX_DEPTH, json.loads("[" * 512 + "]" * 512)),
    ("brackets in a string", '{"a": "' + "[" * DEEP + '"}', {"a": "[" * DEEP}),
    ("empty", "", ("the text is empty", None, None)),
    ("whitespace", " \n\t", ("the text is only whitespace", None, None)),
    ("leading BOM", '\ufeff{"a": 1}', {"a": 1}),
    ("BOM inside", '{"a": 1}\ufeff', ("text after the JSON value", 1, 9)),
    ("no-break space around", '\xa0{"a": 1}', ("Expecting value", 1, 1)),
    ("single quotes", "{'a': 1}", ("Expecting property name", 1, 2)),
    ("trailing comma", '{"a": 1,}', ("Expecting property name", 1, 9)),
    ("top-level number", "42", 42),
]
IDS = [row[0] for row in TABLE]


def outcome(read: Any, text: str) -> Any:
    """What an entry point makes of ``text``: ("ok", value) or ("error", message)."""
    try:
        return "ok", read(text)
    except (ValueError, CheckFailed) as exc:
        return "error", str(exc)


def assert_json_strict(text: str) -> Any:
    return assert_json(text)


BARE_ENTRY_POINTS = {
    "Completion.json(allow_fence=False)": lambda t: Completion(t, "m").json(allow_fence=False),
    "ToolCall.args()": lambda t: ToolCall("f", t).args(),
    "assert_json": assert_json_strict,
    # the text as both answer and reference: read twice, by the same rules
    "assert_golden(json)": lambda t: assert_golden(t, t, "json") == 1.0 and loads(t),
}


@pytest.mark.parametrize(("name", "text", "expected"), TABLE, ids=IDS)
def test_the_reader_follows_the_rules(name: str, text: str, expected: Any) -> None:
    if not isinstance(expected, tuple):
        assert loads(text) == expected
        return
    reason, line, column = expected
    with pytest.raises(JSONTextError) as info:
        loads(text)
    assert info.value.reason.startswith(reason)
    assert (info.value.line, info.value.column) == (line, column)
    if line is not None:
        assert f"at line {line} column {column}" in str(info.value)


@pytest.mark.parametrize(("name", "text", "expected"), TABLE, ids=IDS)
def test_every_entry_point_agrees_with_the_reader(name: str, text: str, expected: Any) -> None:
    for entry, read in BARE_ENTRY_POINTS.items():
        kind, got = outcome(read, text)
        if isinstance(expected, tuple):
            reason = expected[0]
            assert kind == "error", f"{entry} accepted {name}: {got!r}"
            if entry.startswith("assert_") and not text.strip():
                reason = "the output is empty"  # the checks speak of the model's output
            assert reason in got, f"{entry}: {got}"
        else:
            assert (kind, got) == ("ok", expected), entry
    kind, got = outcome(strategies.strict_json_object, text)
    if isinstance(expected, dict):
        assert (kind, got) == ("ok", expected)
    else:
        assert kind == "error"  # not JSON, or not an object


@pytest.mark.parametrize(("name", "text", "expected"), TABLE, ids=IDS)
def test_a_fence_or_prose_never_loosens_the_rules(name: str, text: str, expected: Any) -> None:
    """Wrapped in a fence (Completion.json()'s default) or in prose (lenient=True), a text
    is read by the same rules: what breaks one (NaN, a duplicated key, depth) breaks both."""
    fenced = f"```json\n{text}\n```"
    in_prose = f"Here you go:\n{text}\nAnything else?"
    broke_rule = isinstance(expected, tuple) and any(
        expected[0].startswith(r) for r in ("NaN", "Infinity", "-Infinity", "the number",
                                             "duplicated", "nested"))
    if not isinstance(expected, tuple):
        assert Completion(fenced, "m").json() == expected
        assert read_json(fenced, wrapping="fence").source == "fence"
    if broke_rule:
        readers = [(lambda t: Completion(t, "m").json(), (text, fenced)),
                   (assert_json_strict, (text, fenced, in_prose)),
                   (lambda t: assert_json(t, lenient=True), (text, fenced, in_prose))]
        for read, texts in readers:
            for wrapped in texts:
                kind, got = outcome(read, wrapped)
                assert kind == "error" and expected[0] in got, (wrapped[:40], got)


def test_fence_and_prose_are_accepted_where_documented() -> None:
    fenced = '```json\n{"a": 1}\n```'
    assert Completion(fenced, "m").json() == {"a": 1}
    with pytest.raises(ValueError, match="Expecting value at line 1 column 1"):
        Completion(fenced, "m").json(allow_fence=False)
    with pytest.raises(CheckFailed, match="would pass with lenient=True"):
        assert_json(fenced)
    assert assert_json(fenced, lenient=True) == {"a": 1}
    with pytest.raises(ValueError, match="not an object|Expecting value"):
        strategies.strict_json_object(fenced)
    # prose around a fence is prose: only lenient reads it
    chatty = 'Sure!\n```json\n{"a": 1}\n```\nAnything else?'
    with pytest.raises(ValueError, match="Expecting value at line 1 column 1"):
        Completion(chatty, "m").json()
    assert assert_json(chatty, lenient=True) == {"a": 1}
    # a fence whose body is not JSON says so, pointing into the whole text
    with pytest.raises(ValueError, match="the code fence does not hold JSON: "
                                         "Expecting property name .* at line 2 column 9"):
        Completion('```json\n{"a": 1,}\n```', "m").json()


def test_lenient_does_not_settle_for_a_piece_of_a_broken_object() -> None:
    """Before one reader, lenient parsing of an object with a NaN returned an inner
    object that happened to parse; now the rule the object breaks is the answer."""
    text = 'Result: {"inner": {"a": 1}, "score": NaN}'
    with pytest.raises(CheckFailed, match="NaN is not valid JSON"):
        assert_json(text, lenient=True)
    with pytest.raises(CheckFailed, match="duplicated key 'k'"):
        assert_json('Result: {"k": {"a": 1}, "k": 2}', lenient=True)
    with pytest.raises(CheckFailed, match="the code fence does not hold JSON: NaN"):
        assert_json('Sure:\n```json\n{"inner": {"a": 1}, "x": NaN}\n```\nBye', lenient=True)


def test_golden_json_refuses_an_expected_value_that_breaks_the_rules() -> None:
    with pytest.raises(UsageError, match="expected is not JSON.*NaN is not valid JSON"):
        assert_golden('{"a": 1}', '{"a": NaN}', "json")


def test_a_long_text_shows_where_it_broke() -> None:
    text = json.dumps({"items": list(range(200))})[:-1] + ', "x": NaN}'
    with pytest.raises(JSONTextError) as info:
        loads(text)
    assert info.value.near.endswith('"x": NaN}') and len(info.value.near) < 60
    assert "near" in str(info.value) and text not in str(info.value)


def test_deep_nesting_is_an_error_even_on_a_nearly_full_stack() -> None:
    """Never a RecursionError: within the depth limit, a caller whose stack is nearly
    used up still gets a JSONTextError."""
    def at_depth(n: int) -> Any:
        if n:
            return at_depth(n - 1)
        return outcome(loads, "[" * MAX_DEPTH + "]" * MAX_DEPTH)

    kind, message = at_depth(sys.getrecursionlimit() - 60)
    assert kind == "error" and "nested too deeply" in message


def test_wrapping_must_be_one_of_three() -> None:
    with pytest.raises(ValueError, match="wrapping must be one of bare, fence, prose"):
        read_json("{}", wrapping="loose")  # type: ignore[arg-type]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, database=None)
@given(JSON_VALUES, st.sampled_from([None, 2]))
def test_what_json_dumps_writes_reads_back(value: Any, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    assert loads(text) == value
    assert Completion(f"```json\n{text}\n```", "m").json() == value


@settings(max_examples=200, deadline=None, database=None)
@given(strategies.malformed_text() | strategies.malformed_json())
def test_entry_points_agree_on_malformed_input(text: str) -> None:
    """Whatever the text, the bare entry points all accept it (with one value) or all
    refuse it."""
    results = {entry: outcome(read, text) for entry, read in BARE_ENTRY_POINTS.items()}
    kinds = {kind for kind, _ in results.values()}
    assert len(kinds) == 1, results
    if kinds == {"ok"}:
        values = [json.dumps(got, sort_keys=True) for _, got in results.values()]
        assert len(set(values)) == 1, results
