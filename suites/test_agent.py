"""A plain-Python agent: two tools, a tool loop, and checks on the path and the world.

One sample is one whole episode: the model looks the order up, cancels it, and says
so. ``llmcheck.run_tool_loop`` runs it through the ``llm`` client (so every call is
retried, budgeted, cached and recorded like any other) and returns the episode; the
checks look at the path (which tools, in which order, with which arguments) and at the
store the tools changed. The simulator plays the agent's model: about 8 episodes in 10
take the right path; the others cancel without a lookup or cancel the wrong order.

Against a real model:

    pytest suites/test_agent.py --llm-model=openai/gpt-4o-mini \\
        --llm-api-key-env=OPENAI_API_KEY
"""

from __future__ import annotations

import pytest
from order_agent.shop import SYSTEM, TOOLS, Store

import llmcheck

REQUEST = "Please cancel order 1042, the blender arrived damaged."


def run_agent(llm, **options) -> llmcheck.Episode:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": REQUEST}]
    return llmcheck.run_tool_loop(llm, messages, TOOLS, state=Store.example(), max_steps=6,
                                  **options)


@llmcheck.repeat(min_pass_rate=0.7)
def test_agent_cancels_the_right_order(llm):
    episode = run_agent(llm)
    llmcheck.assert_tools_called(episode, ["lookup_order", "cancel_order"], order="exact")
    llmcheck.assert_tool_called_with(episode, "cancel_order", {"order_id": "1042"})
    llmcheck.assert_no_tool_errors(episode)
    llmcheck.assert_max_steps(episode, 3)
    llmcheck.assert_contains(episode, "cancelled")
    llmcheck.assert_final_state(
        episode, lambda store: store.orders["1042"].status == "cancelled"
        and store.orders["1024"].status == "shipped")


@llmcheck.repeat(min_pass_rate=0.7)
def test_agent_never_touches_another_order(llm):
    """A weaker promise that should hold more often: whatever the path, no other order
    is cancelled (the 'wrong arguments' episodes break it)."""
    episode = run_agent(llm)
    llmcheck.assert_final_state(episode, lambda store: store.orders["1024"].status == "shipped")


@pytest.mark.xfail(reason="the agent reports success whatever cancel_order answered: when "
                          "the tool fails, the customer is told the order is cancelled",
                   strict=True)
@llmcheck.repeat(min_pass_rate=0.7)
@llmcheck.tool_faults("tool_error:0.5", tools=["cancel_order"])
def test_agent_under_a_failing_cancel_tool(llm):
    episode = run_agent(llm)
    llmcheck.assert_final_state(episode, lambda store: store.orders["1042"].status ==
                                "cancelled")
