"""The same test at three temperatures: the pass rate falls as the temperature rises.

The answer must name Paris. Measured: 1.00 at temperature 0.0 (every answer the
same) and 0.94 at 0.7 (400 answers; 95% interval 0.91-0.96); 0.77 at 1.2 (1043 of
1350 answers in 10 sessions, 0.75-0.79; one 400-answer session gave 0.73). Against
the required 0.85 the first two pass and 1.2 fails: an xfail. (At a required 0.8 the
rate at 1.2 sits inside the sequential test's indifference zone, 0.75-0.85, and
passed one session in our trials.) It is not strict: a session that draws a lucky
run at 1.2 is not an error in the suite."""

from __future__ import annotations

import pytest

import llmcheck

SWEEP = [
    pytest.param(0.0, id="t0.0"),
    pytest.param(0.7, id="t0.7"),
    pytest.param(1.2, id="t1.2", marks=pytest.mark.xfail(
        reason="at temperature 1.2 the model answers off-script too often")),
]


@pytest.mark.parametrize("temperature", SWEEP)
@llmcheck.repeat(min_pass_rate=0.85)
def test_capital_of_france_by_temperature(llm, temperature):
    reply = llm("What is the capital of France? Answer with one word.",
                temperature=temperature, max_tokens=8)
    llmcheck.assert_contains(reply, "Paris", whole_word=True)
