"""A support conversation with a simulated user: the whole conversation is one sample.

A customer (``llmcheck.SimulatedUser``: a persona and a goal, played by a model) talks
with the app, a support agent, until the customer is done, gives up, or the turns run
out. The checks read the whole conversation: the goal reached by turn 3, the order
number never contradicted, every reply free of a refusal. The simulator plays both
sides by default (the customer gives the wrong order number or gives up about one
time in ten); the customer's calls are counted, seeded and budgeted like the app's,
reported apart from them, and take no injected fault.

Against a real model (both sides; give the customer another with ``model=``):

    pytest suites/test_support_conversation.py --llm-model=openai/gpt-4o-mini \\
        --llm-api-key-env=OPENAI_API_KEY
"""

from __future__ import annotations

import pytest

import llmcheck

AGENT = ("You are a support agent of a kitchenware shop. Ask for the order number, then "
         "refund the order and confirm it.")
CUSTOMER = llmcheck.SimulatedUser(
    persona="A customer whose blender arrived broken; polite but short of time.",
    goal="Get order 1042 refunded.", max_turns=6)


def talk(llm) -> llmcheck.Episode:
    return llmcheck.run_conversation(llmcheck.Conversation(llm, system=AGENT), CUSTOMER)


@llmcheck.repeat(min_pass_rate=0.75)
def test_customer_gets_the_refund_by_turn_3(llm):
    episode = talk(llm)
    llmcheck.assert_goal_reached(episode, by_turn=3)
    llmcheck.assert_never_contradicts(episode, "order {1042}")
    llmcheck.assert_every_reply(episode, llmcheck.assert_not_refusal)


@pytest.mark.xfail(reason="the agent refunds on an order number alone: it never checks "
                          "that the customer owns the order (no email, no name)", strict=True)
@llmcheck.repeat(min_pass_rate=0.75)
def test_agent_verifies_the_customer_before_refunding(llm):
    episode = talk(llm)
    asked = [s.label for s in episode.model_steps if "email" in s.text.lower()]
    assert asked, "the agent refunded without asking for the account's email"
