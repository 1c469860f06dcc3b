"""A LangChain app tested through ``llm_endpoint``.

The chain is built the way an app builds it (``ChatOpenAI(base_url=..., api_key=...,
model=...)``), pointed at ``llm_endpoint``: llmcheck's proxy attributes each of its calls
to the sample that made it, so the table counts them (calls, tokens, cost), seeds them
and injects the test's faults. Needs ``pip install -e ".[suites]"`` (langchain-openai).
"""

from __future__ import annotations

import pytest

import llmcheck

chain_module = pytest.importorskip(
    "sentiment_app.chain", reason="the LangChain example needs: pip install -e '.[suites]'")

REVIEW = "Terrible. It arrived broken and support ignored my refund request."


@pytest.fixture(scope="module")
def chain(llm_endpoint):
    """Built once, before any sample runs, as an app builds it at start-up."""
    return chain_module.build_chain(base_url=llm_endpoint.base_url,
                                    api_key=llm_endpoint.api_key, model=llm_endpoint.model)


@llmcheck.repeat(min_pass_rate=0.9)
def test_chain_labels_a_negative_review(chain):
    assert chain_module.classify(chain, REVIEW) == "negative"


@llmcheck.repeat(min_pass_rate=0.9)
@llmcheck.faults(rate_limit=0.2, server_error=0.05, retry_after=0.05)
def test_chain_rides_out_rate_limits_with_its_own_retries(chain):
    """ChatOpenAI(max_retries=2) retries 429 and 5xx itself: three attempts per call."""
    assert chain_module.classify(chain, REVIEW) == "negative"
