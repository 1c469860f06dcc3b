"""Text invariants: length, regex, contains, prefixes, numbers, labels, refusals."""

from __future__ import annotations

import re
import socket

import pytest

from llmcheck.checks import (
    REFUSAL_PHRASES,
    CheckFailed,
    assert_contains,
    assert_ends_with,
    assert_label,
    assert_length,
    assert_matches,
    assert_not_matches,
    assert_not_refusal,
    assert_number_in_range,
    assert_starts_with,
)
from llmcheck.checks.text import count_sentences, count_tokens, count_words, extract_number
from llmcheck.errors import UsageError

HUGE = "The quick brown fox jumps over the lazy dog. " * 22_300  # 1 MB


# --------------------------------------------------------------------------- length


def test_word_counts():
    assert count_words("") == 0
    assert count_words("Don't count e-mail twice: 3.14 and 1,000 are numbers.") == 9
    assert count_words("Café crème, naïve façade") == 4
    assert count_words("这是一个测试") == 6  # one word per Han character (best-effort)
    assert count_words("日本語のテキスト and English") == 10
    assert count_words("\U0001F600 \U0001F600") == 0


def test_sentence_counts():
    assert count_sentences("") == 0
    assert count_sentences("One. Two! Three? Four") == 4
    assert count_sentences("Pi is 3.14 and e is 2.72.") == 1
    assert count_sentences('He said "stop." Then left.') == 2
    assert count_sentences("第一句。第二句！") == 2
    assert count_sentences("Title\n\nParagraph without a period") == 2


def test_length_bounds_and_names(sample):
    counts = assert_length("one two three", min_words=1, max_words=3, max_chars=100)
    assert counts == {"chars": 13, "words": 3}
    assert_length("a\n\n b \n", max_lines=2)
    with pytest.raises(CheckFailed, match=r"expected at least 2 sentences, found 1"):
        assert_length("Just one.", min_sentences=2)
    with pytest.raises(CheckFailed, match="expected at least 1 word, found 0"):
        assert_length("", min_words=1)
    names = [(r.name, r.value) for r in sample.checks]
    assert names == [
        ("length(max_chars=100, min_words=1, max_words=3)", "chars=13 words=3"),
        ("max_lines(2)", 2),
        ("min_sentences(2)", 1),
        ("min_words(1)", 0),
    ]


def test_chars_are_counted_after_nfc():
    assert assert_length("cafe\u0301", max_chars=4) == {"chars": 4}


def test_length_usage_errors():
    with pytest.raises(UsageError, match="give at least one bound"):
        assert_length("x")
    with pytest.raises(UsageError, match="min_chars=5 is greater than max_chars=2"):
        assert_length("x", min_chars=5, max_chars=2)
    with pytest.raises(UsageError, match="non-negative integer"):
        assert_length("x", max_words=-1)
    with pytest.raises(UsageError, match="must be a number"):
        assert_length("x", max_words="10")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="model= only applies"):
        assert_length("x", max_words=3, model="gpt-4o")


def test_tokens_are_counted_offline(monkeypatch, sample):
    """Token counting (and importing litellm for it) must not touch the network."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    text = "Hello world, this is a tokenizer test."
    generic = count_tokens(text)
    assert 5 <= generic <= 15
    assert count_tokens(text, "gpt-4o") > 0
    # litellm would fetch Llama's tokenizer from the hub; offline it falls back
    assert count_tokens(text, "meta-llama/Llama-3-8b") == generic
    assert attempts == []
    assert_length(text, max_tokens=50)
    with pytest.raises(CheckFailed, match="expected at most 3 tokens"):
        assert_length(text, max_tokens=3, model="gpt-4o")
    assert sample.checks[-1].name == "max_tokens(3, gpt-4o)"


# --------------------------------------------------------------------------- regex


def test_matches_returns_the_match_and_records_it(sample):
    found = assert_matches("Order #A-1234 confirmed", r"#([A-Z])-(\d+)")
    assert found.group(2) == "1234"
    assert_matches("YES", "yes", re.IGNORECASE)
    assert_matches("2024-01-15", r"\d{4}-\d{2}-\d{2}", fullmatch=True)
    with pytest.raises(CheckFailed, match="does not fully match"):
        assert_matches("on 2024-01-15", r"\d{4}-\d{2}-\d{2}", fullmatch=True)
    assert [(r.name, r.value) for r in sample.checks] == [
        (r"matches(/#([A-Z])-(\d+)/)", "#A-1234"),
        ("matches(/yes/i)", "YES"),
        (r"fullmatch(/\d{4}-\d{2}-\d{2}/)", "2024-01-15"),
        (r"fullmatch(/\d{4}-\d{2}-\d{2}/)", None),
    ]


def test_not_matches_shows_where():
    assert_not_matches("all clear", r"\bTODO\b")
    with pytest.raises(CheckFailed) as info:
        assert_not_matches("line one\nTODO: fix\n", r"TODO")
    assert "found 'TODO' matching /TODO/" in str(info.value)
    assert "(at char 9)" in str(info.value)
    assert info.value.value == "TODO"


def test_regex_usage_errors():
    with pytest.raises(UsageError, match="invalid regular expression"):
        assert_matches("x", "(unclosed")
    with pytest.raises(UsageError, match="flags cannot be given"):
        assert_matches("x", re.compile("x"), re.I)


# --------------------------------------------------------------------------- contains


def test_contains_modes(sample):
    text = "Apollo 11 landed on the Moon in July 1969."
    assert assert_contains(text, ["apollo 11", "1969"]) == 2  # case-insensitive by default
    assert assert_contains(text, ["Mars", "moon"], mode="any") == 1
    assert assert_contains(text, ["Mars", "Venus"], mode="none") == 0
    with pytest.raises(CheckFailed, match=r"missing 1 of 2: \['1970'\]"):
        assert_contains(text, ["Apollo 11", "1970"])
    with pytest.raises(CheckFailed, match="none of"):
        assert_contains(text, ["Mars", "Venus"], mode="any")
    with pytest.raises(CheckFailed, match=r"found 1 forbidden: 'moon'"):
        assert_contains(text, ["moon", "Mars"], mode="none")
    assert sample.checks[0].name == "contains_all(['apollo 11', '1969'])"
    assert sample.checks[2].name == "contains_none(['Mars', 'Venus'])"


def test_contains_options():
    with pytest.raises(CheckFailed):
        assert_contains("PARIS", "Paris", case_sensitive=True)
    assert_contains("concatenate", "cat")
    with pytest.raises(CheckFailed) as info:
        assert_contains("concatenate", "cat", whole_word=True)
    assert info.value.name == "contains_all(['cat'], whole_word=True)"
    assert_contains("the cat.", "cat", whole_word=True)
    assert_contains("C++ and C#", ["C++", "c#"], whole_word=True)
    assert_contains("Stra\u00dfe", "STRASSE")  # casefold: ß == ss
    assert_contains("\ufb01nal", "final")  # NFKC: the ligature is two letters
    assert_contains("cafe\u0301", "café")  # decomposed vs composed accent


def test_contains_usage_errors():
    with pytest.raises(UsageError, match="mode must be"):
        assert_contains("x", "x", mode="some")
    with pytest.raises(UsageError, match="at least one item"):
        assert_contains("x", [])
    with pytest.raises(UsageError, match="non-empty str"):
        assert_contains("x", ["x", ""])


# --------------------------------------------------------------------------- prefixes


def test_starts_and_ends_with(sample):
    assert_starts_with("\n  Answer: 42", "answer:")
    assert_starts_with("No.", ["Yes", "No"])
    assert_ends_with("Is that right?  \n", "?")
    with pytest.raises(CheckFailed, match="it starts with 'Sure! Answer: 42'"):
        assert_starts_with("Sure! Answer: 42", "Answer:")
    with pytest.raises(CheckFailed, match="the output is empty"):
        assert_ends_with("", ".")
    with pytest.raises(CheckFailed):
        assert_starts_with("answer: 1", "Answer:", case_sensitive=True)
    assert sample.checks[0].name == "starts_with('answer:')"
    assert sample.checks[0].value == "Answer: 42"
    assert sample.checks[1].name == "starts_with(['Yes', 'No'])"


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("text, number", [
    ("The answer is 42.", 42),
    ("Total: $1,234.50 (incl. tax)", 1234.5),
    ("It fell by -3.5% overall", -3.5),
    ("temperature \u22127 \u00b0C", -7),
    ("about 2.5e3 units", 2500.0),
    ("v2 has 3 parts", 3),
    ("between 1,2 and 3", 1),
    (".5 of it", 0.5),
])
def test_extract_number(text, number):
    value, _ = extract_number(text)
    assert value == number
    assert isinstance(value, type(number))


def test_number_in_range(sample):
    assert assert_number_in_range("I am 36 years old", 0, 120) == 36
    assert assert_number_in_range(0.5, low=0) == 0.5
    assert assert_number_in_range("score: 7/10, rank 2", high=10, pattern=r"score:\s*(\d+)") == 7
    with pytest.raises(CheckFailed, match=r"found 150 \(written '150'\), outside 0\.\.120"):
        assert_number_in_range("150", 0, 120)
    with pytest.raises(CheckFailed, match="no number in 'I do not know'"):
        assert_number_in_range("I do not know", 0, 120)
    with pytest.raises(CheckFailed, match="which is not a number"):
        assert_number_in_range("age: unknown", 0, 120, pattern=r"age: (\w+)")
    assert [r.name for r in sample.checks[:3]] == [
        "number_in_range(0..120)", "number_in_range(>=0)", "number_in_range(<=10)"]
    assert sample.checks[3].value == 150


def test_number_usage_errors():
    with pytest.raises(UsageError, match="give low, high or both"):
        assert_number_in_range("1")
    with pytest.raises(UsageError, match="low=5 is greater than high=1"):
        assert_number_in_range("1", 5, 1)
    with pytest.raises(UsageError, match="invalid regular expression"):
        assert_number_in_range("1", 0, 2, pattern="(")


# --------------------------------------------------------------------------- labels


def test_label_normalization(sample):
    labels = ["positive", "negative", "neutral"]
    for output in ("positive", " Positive.\n", "**POSITIVE**", '"positive"', "positive!"):
        assert assert_label(output, labels) == "positive"
    assert assert_label("Not sure", ["Not sure", "Yes"]) == "Not sure"
    with pytest.raises(CheckFailed) as info:
        assert_label("The sentiment is positive.", labels)
    assert "it mentions ['positive'] but is not just a label" in str(info.value)
    assert info.value.value == "the sentiment is positive"
    with pytest.raises(CheckFailed):
        assert_label("Positive", labels, case_sensitive=True)
    assert sample.checks[0].name == "label(['positive', 'negative', 'neutral'])"


def test_label_usage_errors():
    with pytest.raises(UsageError, match="same after normalization"):
        assert_label("yes", ["Yes", "yes"])
    with pytest.raises(UsageError, match="empty after normalization"):
        assert_label("yes", ["yes", "..."])
    with pytest.raises(UsageError, match="at least one label"):
        assert_label("yes", [])


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("text", [
    "I'm sorry, but I cannot help with that request.",
    "I\u2019m sorry but I can\u2019t do that.",
    "As an AI language model, I don't have opinions.",
    "Unfortunately I can not assist with creating malware.",
    "I am unable to help with this.",
    "I must decline to answer.",
    "'I can't help with that,' it said.",
])
def test_refusals_are_detected(text, sample):
    with pytest.raises(CheckFailed, match="looks like a refusal"):
        assert_not_refusal(text)
    assert sample.checks[0].name == "not_refusal"
    assert sample.checks[0].value in REFUSAL_PHRASES


@pytest.mark.parametrize("text", [
    "",
    "Sure! Here is the recipe.",
    "I can help with that: first, preheat the oven.",
    "The cannot-fail approach is to test twice.",
    "I'm sorry to hear that your flight was delayed. Here are your options.",
])
def test_non_refusals_pass(text):
    assert_not_refusal(text)


def test_custom_refusal_phrases():
    with pytest.raises(CheckFailed) as info:
        assert_not_refusal("Je ne peux pas vous aider.", extra_phrases=["je ne peux pas"])
    assert info.value.name.startswith("not_refusal(['As an AI language model', ")
    assert_not_refusal("I'm sorry, but I can't.", phrases=["nope"])
    with pytest.raises(UsageError):
        assert_not_refusal("x", phrases=[])


# --------------------------------------------------------------------------- huge outputs


def test_huge_outputs_run_in_linear_time():
    """1 MB answers through every text check (no timing assert: this must just finish)."""
    assert assert_length(HUGE, min_words=100_000, max_chars=2_000_000)["words"] > 190_000
    assert_length(HUGE, max_lines=1, min_sentences=20_000)
    assert_matches(HUGE, r"lazy dog\.\s*$")
    assert_not_matches(HUGE, r"cat")
    assert_contains(HUGE, ["quick", "dog"], whole_word=True)
    assert_contains(HUGE, ["zebra"], mode="none")
    assert_starts_with(HUGE, "the quick")
    assert_number_in_range(HUGE + " 7", 0, 10)
    assert_not_refusal(HUGE)
    with pytest.raises(CheckFailed):
        assert_label(HUGE, ["yes", "no"])
    pathological = "a" * 500_000 + "!" * 500_000
    assert_not_refusal(pathological)
    assert_contains(pathological, "a!", whole_word=False)
    assert extract_number("." * 1_000_000)[0] is None
