"""A streamed answer, judged on its text and on how fast its first token comes.

``latency="p95 ttft <= 1.5s"`` makes the 95th percentile of the time to first token a
requirement beside the pass rate, with a verdict of its own from exact order
statistics: the test fails if either fails (docs/latency.md). The simulator paces its
streams (first token after about 20 ms, then a chunk every 2 ms, seeded), so the
requirement holds with room; the strict xfail asks for a first token within 5 ms, which
no stream of the simulator's gives.

Against a real model:

    pytest suites/test_streaming.py --llm-model=openai/gpt-4o-mini \\
        --llm-api-key-env=OPENAI_API_KEY
"""

from __future__ import annotations

import pytest

import llmcheck

QUESTION = ("Classify the sentiment of this review as positive, negative or neutral. "
            "Review: I love this blender, works great!")


@llmcheck.repeat(min_pass_rate=0.8, latency="p95 ttft <= 1.5s")
def test_streamed_label_arrives_fast(llm):
    reply = llm(QUESTION, stream=True)
    label = llmcheck.assert_label(reply, ["positive", "negative", "neutral"])
    assert label == "positive"


@llmcheck.repeat(min_pass_rate=0.9)
def test_streamed_answer_equals_the_unstreamed_one(llm):
    """Streaming must not change the answer: the same seed gives the same text."""
    reply = llmcheck.assert_stream_matches(llm, QUESTION)
    assert reply.time_to_first_token is not None


@pytest.mark.xfail(reason="a first token within 5 ms: the simulator's streams take about "
                          "20 ms to start", strict=True)
@llmcheck.repeat(min_pass_rate=0.8, latency="p95 ttft <= 5ms")
def test_first_token_within_5ms(llm):
    llm(QUESTION, stream=True)
