"""Short factual answers from a 135M-parameter model, at temperature 1.0.

Measured over 400 samples each (the command in conftest.py), the model names the capital
of France in 0.81 of its answers (95% interval 0.77-0.84), of Japan in 0.79 (0.75-0.83)
and of Italy in only 0.67 (0.62-0.71). Each case requires a rate whose upper
indifference point (required + the sequential margin, 0.05) sits below that interval, so
a good model passes it: 0.7, and 0.55 for Italy (a mark on the case: a per-case required
rate). Arithmetic is beyond the model: not one of 400 answers gave 17 x 23 = 391, so
that test is a strict xfail, the weakness the suite documents."""

from __future__ import annotations

import pytest

import llmcheck

CAPITALS = [
    pytest.param("France", "Paris", id="france"),
    pytest.param("Japan", "Tokyo", id="japan"),
    pytest.param("Italy", "Rome", id="italy", marks=pytest.mark.llm(min_pass_rate=0.55)),
]


@pytest.mark.parametrize(("country", "capital"), CAPITALS)
@llmcheck.repeat(min_pass_rate=0.7)
def test_names_the_capital(llm, country, capital):
    reply = llm(f"What is the capital of {country}? Answer with one word.", temperature=1.0,
                max_tokens=8)
    llmcheck.assert_contains(reply, capital, whole_word=True)


@pytest.mark.xfail(strict=True, reason="a 135M model cannot multiply two-digit numbers")
@llmcheck.repeat(min_pass_rate=0.5)
def test_multiplies_two_digit_numbers(llm):
    reply = llm("What is 17 times 23? Answer with the number only.", max_tokens=12,
                temperature=0.7)
    llmcheck.assert_contains(reply, "391", whole_word=True)
