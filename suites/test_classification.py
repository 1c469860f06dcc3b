"""Classification into a fixed label set: one item per review, each with its own
pass rate.

Against a real model:

    pytest suites/test_classification.py --llm-runs=20 \
        --llm-model=openai/gpt-4o-mini --llm-api-key-env=OPENAI_API_KEY
"""

from __future__ import annotations

import pytest

import llmcheck

LABELS = {"positive", "negative", "neutral"}

REVIEWS = [
    pytest.param("I love this kettle, it boils in a minute and looks great.", "positive",
                 id="positive"),
    pytest.param("Terrible. It arrived broken and support ignored my refund request.",
                 "negative", id="negative"),
    pytest.param("The kettle holds 1.7 litres and comes in grey.", "neutral", id="neutral"),
]


def prompt(review: str) -> str:
    return ("Classify the sentiment of this product review as exactly one word: "
            f"positive, negative or neutral.\n\nReview: {review}")


@pytest.mark.parametrize(("review", "expected"), REVIEWS)
@llmcheck.repeat(min_pass_rate=0.7)
def test_label_is_correct_after_normalizing(llm, review, expected):
    """Tolerant of case and a trailing full stop, as most apps' parsers are."""
    reply = llm(prompt(review), temperature=0.7)
    llmcheck.assert_label(reply, LABELS)       # normalizes case, spaces, a trailing "."
    llmcheck.assert_golden(reply, expected, method="normalized")


@pytest.mark.xfail(reason="a few answers in a hundred explain themselves, capitalise, or "
                          "use a label outside the set ('mixed')", strict=False)
@llmcheck.repeat(min_pass_rate=0.99)
def test_label_is_exactly_one_allowed_word(llm):
    """Strict format: exactly one lower-case label and nothing else."""
    reply = llm(prompt("Great value, I would buy it again."))
    llmcheck.assert_golden(reply, "positive", method="exact")
