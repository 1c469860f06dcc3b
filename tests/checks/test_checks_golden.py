"""assert_golden: every method, its messages, its options, and normalization properties."""

from __future__ import annotations

import difflib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcheck.checks import CheckFailed, assert_golden, normalize_text, soft
from llmcheck.checks.golden import JsonComparer, first_difference, parse_json_path, split_items
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

# --------------------------------------------------------------------------- exact / normalized


def test_exact_shows_a_diff(sample):
    assert assert_golden("Paris", "Paris") == 1.0
    with pytest.raises(CheckFailed) as info:
        assert_golden("line one\nline 2\nline three", "line one\nline two\nline three")
    message = str(info.value)
    assert "first difference at char 14" in message
    assert "-line two\n+line 2" in message
    assert "--- expected\n+++ output" in message
    assert [(r.name, r.value) for r in sample.checks] == [("golden.exact", 1.0),
                                                          ("golden.exact", 0.0)]


def test_exact_is_exact():
    with pytest.raises(CheckFailed):
        assert_golden("Paris\n", "Paris")


@pytest.mark.parametrize("output, expected", [
    ("  Hello,   WORLD! ", "hello world"),
    ("The U.S.A. is big.", "the usa is big"),
    ("Don\u2019t stop", "dont stop"),
    ("e-mail", "email"),
    ("yes\u2014really", "yes \u2014 really"),
    ("\uff21\uff22\uff23 \ufb01le", "abc file"),  # full-width letters, fi ligature (NFKC)
    ("cafe\u0301", "caf\u00e9"),
    ("STRASSE", "stra\u00dfe"),
    ("Price: $5 (50% off)", "price $5 50% off"),
])
def test_normalized_equal(output, expected):
    assert assert_golden(output, expected, "normalized") == 1.0


@pytest.mark.parametrize("output, expected", [
    ("3.14", "314"),
    ("1,000", "1000"),
    ("caf\u00e9", "cafe"),  # accents are meaning, not formatting
    ("$5", "5"),
])
def test_normalized_not_equal(output, expected):
    with pytest.raises(CheckFailed, match="normalized texts differ"):
        assert_golden(output, expected, "normalized")


# --------------------------------------------------------------------------- fuzzy


def test_fuzzy_threshold_and_names(sample):
    score = assert_golden("The quick brown fox jumps", "the quick brown fox jumped", "fuzzy")
    assert 0.85 <= score < 1
    assert assert_golden("kitten", "sitting", "fuzzy", 0.5) == pytest.approx(0.615, abs=1e-3)
    with pytest.raises(CheckFailed) as info:
        assert_golden("kitten", "sitting", "fuzzy", threshold=0.9, normalize=False)
    assert "similarity 0.615 < 0.9" in str(info.value)
    assert [r.name for r in sample.checks] == ["golden.fuzzy(>=0.85)", "golden.fuzzy(>=0.5)",
                                               "golden.fuzzy(>=0.9, raw)"]
    assert sample.checks[1].value == pytest.approx(0.615385, abs=1e-6)


def test_fuzzy_score_is_close_to_difflib():
    a = "The Eiffel Tower is in Paris, France, and was completed in 1889."
    b = "The Eiffel tower, located in Paris, was finished in 1889."
    score = assert_golden(a, b, "fuzzy", 0.5, normalize=False)
    assert abs(score - difflib.SequenceMatcher(None, b, a).ratio()) < 0.1


def test_huge_texts_exact_and_normalized():
    expected = "".join(f"Line {i}: the quick brown fox.\n" for i in range(40_000))
    assert len(expected) > 1_000_000
    actual = expected.replace("Line 39999:", "Line 39999 ->").upper()
    assert assert_golden(expected.upper(), expected, "normalized") == 1.0
    with pytest.raises(CheckFailed) as info:
        assert_golden(actual, expected, "exact")
    message = str(info.value)
    assert message.startswith("golden.exact: first difference at char 1:")
    assert "(diff of the first 400 lines)" in message
    assert len(message) < 5000
    with pytest.raises(CheckFailed, match="first difference at char 1,228,870: .*line 39999 > the"):
        assert_golden(actual, expected, "normalized")


def test_fuzzy_huge_output_against_a_short_reference():
    huge = "lorem ipsum dolor sit amet " * 40_000
    assert len(huge) > 1_000_000
    with pytest.raises(CheckFailed):
        assert_golden(huge, "lorem ipsum dolor sit amet", "fuzzy")


# --------------------------------------------------------------------------- numeric


def test_numeric(sample):
    assert assert_golden("It is about 42.3 km away.", 42, "numeric", rel_tol=0.01) == 42.3
    assert assert_golden(Completion(text="1,000 people", model="m"), "1000", "numeric") == 1000
    assert assert_golden(0.1 + 0.2, 0.3, "numeric") == pytest.approx(0.3)
    assert assert_golden("x = 9.99", 10, "numeric", abs_tol=0.05) == 9.99
    with pytest.raises(CheckFailed) as info:
        assert_golden("roughly 45", 42, "numeric", rel_tol=0.05)
    assert "expected 42 (rel_tol=0.05, abs_tol=0), got 45" in str(info.value)
    assert "off by 3 (7.14%)" in str(info.value)
    with pytest.raises(CheckFailed, match="no number"):
        assert_golden("I don't know", 42, "numeric")
    assert assert_golden("Answer: 7 (from 3 + 4)", 7, "numeric", pattern=r"Answer: (\d+)") == 7
    names = [r.name for r in sample.checks]
    assert names[:4] == ["golden.numeric(rel_tol=0.01)", "golden.numeric", "golden.numeric",
                         "golden.numeric(abs_tol=0.05)"]


def test_numeric_usage_errors():
    with pytest.raises(UsageError, match="rel_tol must be a number >= 0"):
        assert_golden("1", 1, "numeric", rel_tol=-1)
    with pytest.raises(UsageError, match="holds no number"):
        assert_golden("1", "many", "numeric")
    with pytest.raises(UsageError, match="got a bool"):
        assert_golden("1", True, "numeric")
    with pytest.raises(UsageError, match="finite number"):
        assert_golden("1", math.inf, "numeric")


# --------------------------------------------------------------------------- json


def test_json_equal_with_ignored_paths_and_unordered_lists(sample):
    output = json.dumps({"id": "a1", "total": 3.0, "items": [
        {"sku": "B", "qty": 2, "ts": "2024-01-02"}, {"sku": "A", "qty": 1, "ts": "2024-01-01"}]})
    expected = {"id": "zz", "total": 3, "items": [{"sku": "A", "qty": 1, "ts": "x"},
                                                  {"sku": "B", "qty": 2, "ts": "y"}]}
    assert assert_golden(output, expected, "json", ignore_paths=["$.id", "$.items[*].ts"],
                         unordered_lists=True) == 1.0
    assert sample.checks[0].name == (
        "golden.json(unordered_lists, ignore=['$.id', '$.items[*].ts'])")
    with pytest.raises(CheckFailed) as info:
        assert_golden(output, expected, "json", ignore_paths=["$.id", "$.items[*].ts"])
    message = str(info.value)
    assert "$.items[0].sku: expected \"A\", got \"B\"" in message
    assert "$.items[1].qty: expected 2, got 1" in message


def test_json_differences_list_paths(sample):
    output = {"name": "Ada", "age": "36", "extra": True, "langs": ["en"], "nested": {"a": [1, 2]}}
    expected = {"name": "Ada", "age": 36, "langs": ["en", "fr"], "nested": {"a": [1, 3]},
                "born": 1815}
    with pytest.raises(CheckFailed) as info:
        assert_golden(json.dumps(output), json.dumps(expected), "json")
    message = str(info.value)
    for line in ('$.age: expected number 36, got string "36"',
                 "$.langs[1]: missing (expected \"fr\")",
                 "$.nested.a[1]: expected 3, got 2",
                 "$.born: missing (expected 1815)",
                 "$.extra: unexpected key (got true)"):
        assert line in message
    assert message.split(":")[1].strip().startswith("5 difference(s)")


def test_json_numbers_and_bools():
    assert assert_golden("[1.0, 2]", [1, 2.0], "json") == 1.0
    with pytest.raises(CheckFailed, match="expected boolean true, got number 1"):
        assert_golden("[1]", [True], "json")


def test_json_unordered_reports_missing_and_extra_items():
    with pytest.raises(CheckFailed) as info:
        assert_golden("[1, 2, 2, 4]", [2, 1, 3, 2], "json", unordered_lists=True)
    message = str(info.value)
    assert "$: 1 item(s) missing (any order): 3" in message
    assert "$: 1 unexpected item(s) (any order): 4" in message


def test_json_deep_ignore_and_not_json_output():
    out = {"a": {"ts": 1, "b": [{"ts": 2, "v": 1}]}, "ts": 3}
    exp = {"a": {"ts": 9, "b": [{"ts": 8, "v": 1}]}, "ts": 7}
    assert assert_golden(out, exp, "json", ignore_paths=["$..ts"]) == 1.0
    with pytest.raises(CheckFailed, match="lenient=True would parse it"):
        assert_golden('```json\n{"a": 1}\n```', {"a": 1}, "json")
    assert assert_golden('```json\n{"a": 1}\n```', {"a": 1}, "json", lenient=True) == 1.0


def test_json_paths():
    assert parse_json_path("$") == ()
    assert parse_json_path("$['a key'][0]")[0] == "a key"
    comparer = JsonComparer(["$.items[*].ts", "$['odd key']", "$[0]"])
    assert comparer.ignored(("items", 3, "ts"))
    assert comparer.ignored(("odd key",))
    assert not comparer.ignored(("items", "ts"))
    with pytest.raises(UsageError, match="not a JSON path"):
        parse_json_path("items.ts")
    with pytest.raises(UsageError, match="cannot parse"):
        parse_json_path("$.items[x]")


def test_json_huge():
    big = {"rows": [{"i": i, "v": "x" * 40} for i in range(15_000)]}
    text = json.dumps(big)
    assert len(text) > 800_000
    assert assert_golden(text, big, "json", unordered_lists=True,
                         ignore_paths=["$.rows[*].v"]) == 1.0


# --------------------------------------------------------------------------- set


def test_set_items():
    assert split_items("- Apples\n* bananas\n1. Cherries\n2) dates") == [
        "apples", "bananas", "cherries", "dates"]
    assert split_items("apples, bananas, and cherries") == ["apples", "bananas", "cherries"]
    assert split_items("") == []


def test_set(sample):
    assert assert_golden("Paris, London and Rome", ["paris", "london and rome"], "set") == 1.0
    assert assert_golden("- red\n- green\n- blue", "blue, green, red", "set") == 1.0
    with pytest.raises(CheckFailed) as info:
        assert_golden("red, green, purple", ["red", "green", "blue"], "set")
    message = str(info.value)
    assert "Jaccard 0.500, need equal sets" in message
    assert "missing 1: ['blue']" in message and "extra 1: ['purple']" in message
    assert assert_golden("red, green, purple", ["red", "green", "blue"], "set", 0.5) == 0.5
    assert [r.name for r in sample.checks][-1] == "golden.set(>=0.5)"


# --------------------------------------------------------------------------- semantic


class FakeEmbedder:
    """Bag-of-letters vectors: deterministic, no model, no I/O."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        return [[float(t.lower().count(ch)) for ch in "abcdefghijklmnopqrstuvwxyz"]
                for t in texts]


def test_semantic_with_a_custom_embedder(sample):
    embed = FakeEmbedder()
    score = assert_golden("The cat sat on the mat", "the mat had a cat on it", "semantic",
                          embed=embed)
    assert 0.8 < score <= 1
    assert embed.calls == [["The cat sat on the mat", "the mat had a cat on it"]]
    with pytest.raises(CheckFailed, match="cosine similarity 0.000 < 0.5"):
        assert_golden("aaaa", "zzzz", "semantic", 0.5, embed=embed)
    assert sample.checks[0].name == "golden.semantic(>=0.8)"
    assert sample.checks[1].name == "golden.semantic(>=0.5)"


def test_semantic_rejects_malformed_embeddings():
    with pytest.raises(UsageError, match="2 vectors of the same non-zero length"):
        assert_golden("a", "b", "semantic", embed=lambda texts: [[1.0]])
    with pytest.raises(UsageError, match="one list of floats"):
        assert_golden("a", "b", "semantic", embed=lambda texts: [["x"], ["y"]])


# --------------------------------------------------------------------------- usage / soft


def test_usage_errors():
    with pytest.raises(UsageError, match="unknown method 'close'"):
        assert_golden("a", "a", "close")
    with pytest.raises(UsageError, match=r"does not take threshold \(only fuzzy, semantic, set"):
        assert_golden("a", "a", "exact", 0.5)
    with pytest.raises(UsageError, match=r"does not take ignore_paths \(only json\)"):
        assert_golden("a", "a", "normalized", ignore_paths=["$.a"])
    with pytest.raises(UsageError, match="threshold must be a number between 0 and 1"):
        assert_golden("a", "a", "fuzzy", 1.5)
    with pytest.raises(UsageError, match="expected must be a str"):
        assert_golden("a", 5, "exact")
    with pytest.raises(UsageError, match="expected is not JSON"):
        assert_golden("{}", "{oops", "json")


def test_in_soft_a_failed_comparison_still_returns_its_score():
    with pytest.raises(CheckFailed):
        with soft():
            assert assert_golden("kitten", "sitting", "fuzzy") == pytest.approx(0.615, 1e-3)


def test_first_difference():
    assert first_difference("abc", "abc") == 3
    assert first_difference("abc", "abd") == 2
    assert first_difference("", "x") == 0
    long = "x" * 1_000_000
    assert first_difference(long + "a", long + "b") == 1_000_000


# --------------------------------------------------------------------------- properties

_letters = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "M"))
_words = st.lists(st.text(_letters, min_size=1, max_size=8), min_size=1, max_size=8)
_space = st.text(st.sampled_from([" ", "\t", "\n", "\r", "\u00a0", "\u3000"]), min_size=1,
                 max_size=3)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_normalized_equality_is_reflexive(text):
    assert assert_golden(text, text, "normalized") == 1.0
    assert normalize_text(normalize_text(text)) == normalize_text(text)


@settings(max_examples=300, deadline=None)
@given(words=_words, gaps=st.lists(_space, min_size=9, max_size=9),
       edges=st.tuples(st.text(st.sampled_from(" \t\n"), max_size=3),
                       st.text(st.sampled_from(" \t\n"), max_size=3)),
       case=st.sampled_from(["upper", "lower", "title", "swapcase"]))
def test_normalized_equality_ignores_whitespace_and_case(words, gaps, edges, case):
    text = " ".join(words)
    changed = edges[0] + "".join(w + g for w, g in zip(words, gaps, strict=False)).rstrip()
    changed = getattr(changed, case)() + edges[1]
    assert normalize_text(changed) == normalize_text(text)
    assert assert_golden(changed, text, "normalized") == 1.0
