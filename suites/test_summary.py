"""A summary with length limits and required and forbidden content.

Against a real model:

    pytest suites/test_summary.py --llm-runs=20 \
        --llm-model=openai/gpt-4o-mini --llm-api-key-env=OPENAI_API_KEY
"""

from __future__ import annotations

import pytest

import llmcheck

PASSAGE = (
    "Apollo 11 was the spaceflight that first landed humans on the Moon. Commander Neil "
    "Armstrong and lunar module pilot Buzz Aldrin landed the Apollo Lunar Module Eagle on "
    "July 20, 1969, and Armstrong became the first person to step onto the lunar surface. "
    "Michael Collins flew the command module Columbia alone in lunar orbit. The astronauts "
    "returned to Earth and splashed down in the Pacific Ocean on July 24."
)
FORBIDDEN = ("as an ai language model", "i cannot", "i'm sorry")


def summarize(llm, limit: str):
    reply = llm(f"Summarize this passage about the Apollo 11 moon landing {limit}:\n\n{PASSAGE}")
    assert reply.finish_reason != "length", "the answer was cut off (finish_reason=length)"
    return reply


@llmcheck.repeat(min_pass_rate=0.65)
def test_summary_keeps_the_facts_and_the_tone(llm):
    reply = summarize(llm, "in one to three sentences")
    with llmcheck.soft():          # report every check a sample fails, not just the first
        llmcheck.assert_contains(reply, ["Apollo 11", "1969"])
        llmcheck.assert_contains(reply, FORBIDDEN, mode="none")
        llmcheck.assert_not_refusal(reply)
        llmcheck.assert_length(reply, max_words=60, max_sentences=3)


@pytest.mark.xfail(reason="the model ignores a 25-word limit in about half of its answers",
                   strict=False)
@llmcheck.repeat(min_pass_rate=0.9)
def test_summary_respects_a_25_word_limit(llm):
    llmcheck.assert_length(summarize(llm, "in at most 25 words"), max_words=25)
