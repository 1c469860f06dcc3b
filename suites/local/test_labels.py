"""A label from a fixed set, the way an app would parse it (case and a trailing full
stop ignored).

A 135M model keeps to the format only about half the time: over 400 answers at
temperature 0.7 the reply is one of the three labels in 0.58 (95% interval
0.53-0.63) and the right one, `positive`, in 0.55 (0.50-0.60). The required rates,
0.45 and 0.4, say what this model can be held to; a bigger model would be held to
more."""

from __future__ import annotations

import llmcheck

LABELS = {"positive", "negative", "neutral"}
REVIEW = "I absolutely love this phone, the battery lasts for days!"


def prompt(review: str) -> str:
    return ("Classify the sentiment of this review. Reply with exactly one of: positive, "
            f"negative, neutral.\nReview: {review}\nSentiment:")


@llmcheck.repeat(min_pass_rate=0.45)
def test_answers_with_one_of_the_labels(llm):
    llmcheck.assert_label(llm(prompt(REVIEW), temperature=0.7, max_tokens=5), LABELS)


@llmcheck.repeat(min_pass_rate=0.4)
def test_labels_a_glowing_review_positive(llm):
    reply = llm(prompt(REVIEW), temperature=0.7, max_tokens=5)
    assert llmcheck.assert_label(reply, LABELS) == "positive"
