"""Golden cases from a data file: each case is its own item with its own pass rate,
and the summary pools them into one rate for the whole test.

Add a case by adding four lines to ``data/capitals.yaml``. Against a real model:

    pytest suites/test_golden_cases.py --llm-runs=20 \
        --llm-model=openai/gpt-4o-mini --llm-api-key-env=OPENAI_API_KEY
"""

from __future__ import annotations

import pytest

import llmcheck


@pytest.mark.parametrize("case", llmcheck.cases("data/capitals.yaml"))
@llmcheck.repeat(min_pass_rate=0.75)
def test_capital_city(llm, case):
    reply = llm(case.input, temperature=0.7)
    # normalized: case, whitespace, punctuation and unicode forms do not matter
    llmcheck.assert_golden(reply, case.expected, method="normalized")
    llmcheck.assert_length(reply, max_words=3)
