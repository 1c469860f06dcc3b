"""Conversations without a model: a scripted user drives an app, the conversation becomes
one episode, and the conversation checks judge it turn by turn (in process, no HTTP)."""

from __future__ import annotations

import pytest

import llmcheck
from llmcheck.checks import CheckFailed
from llmcheck.episodes.episode import Episode, Step, ToolInvocation
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion, ToolCall

SCRIPT = ["Hi, I want a refund.", "It's order 1042.", "Thanks, bye."]


def support_bot(messages: list[dict]) -> str:
    """A tiny app: asks for the order number, then refunds the number it is given."""
    last = messages[-1]["content"]
    if "1042" in last:
        return "I have refunded order 1042."
    if "refund" in last:
        return "What is your order number?"
    return "Anything else?"


def customer(**kwargs) -> llmcheck.SimulatedUser:
    return llmcheck.SimulatedUser("a customer", "get order 1042 refunded",
                                  **{"script": SCRIPT, **kwargs})


def test_a_scripted_user_drives_the_app_to_one_episode(sample):
    seen: list[list[dict]] = []

    def app(messages):
        seen.append(messages)
        return support_bot(messages)

    conversation = llmcheck.Conversation(app, system="You are a support agent.")
    episode = llmcheck.run_conversation(conversation, customer())

    assert episode.source == "conversation" and episode.stop_reason == "user_stopped"
    assert episode.ended_by == "script_end"
    assert [(s.role, s.turn) for s in episode.steps] == [
        ("user", 1), ("assistant", 1), ("user", 2), ("assistant", 2), ("user", 3),
        ("assistant", 3)]
    assert [s.label for s in episode.steps[:2]] == ["turn 1 (user)", "turn 1"]
    assert conversation.replies == ["What is your order number?",
                                    "I have refunded order 1042.", "Anything else?"]
    assert episode.final_text == "Anything else?" and conversation.turns == 3
    # the app saw the system prompt and the whole conversation so far, each turn
    assert seen[0] == [{"role": "system", "content": "You are a support agent."},
                       {"role": "user", "content": SCRIPT[0]}]
    assert len(seen[2]) == 6 and episode.messages[-1] == {"role": "assistant",
                                                          "content": "Anything else?"}
    # the sample's record keeps the episode and its duration
    assert sample.episode.source == "conversation" and sample.episode.turns == 3
    assert sample.episode.steps == 3 and sample.durations["episode"] == episode.duration


def test_the_turn_limit_and_the_stop_condition_end_a_conversation():
    looping = llmcheck.SimulatedUser("a customer", "talk", script=["hi"] * 10, max_turns=4)
    episode = llmcheck.run_conversation(support_bot, looping)
    assert episode.stop_reason == "max_turns" and len(episode.model_steps) == 4
    assert llmcheck.run_conversation(support_bot, looping, max_turns=2).summary()["turns"] == 2
    with pytest.raises(CheckFailed, match="not done after 4 turn") as info:
        llmcheck.assert_goal_reached(episode)  # the user never said it was done
    assert info.value.results[0].step == "turn 4"

    refunded = customer(stop=lambda c: "refunded" in c.replies[-1])
    episode = llmcheck.run_conversation(support_bot, refunded)
    assert (episode.stop_reason, episode.ended_by) == ("user_stopped", "stop")
    assert episode.final_text == "I have refunded order 1042." and len(episode.model_steps) == 2


def test_a_conversation_by_hand_and_replies_of_every_kind():
    tool_step = Step(index=1, tool_calls=[])
    loop = Episode(steps=[tool_step], final_text="Looked it up: shipped.")
    loop.steps[0].tool_calls.append(ToolInvocation(name="track", arguments="{}", step=1))
    replies = iter(["plain", Completion(text="from a model", model="m",
                                        tool_calls=(ToolCall("lookup", '{"id": 1}', "c1"),)),
                    loop])
    conversation = llmcheck.Conversation(lambda messages: next(replies))
    assert [conversation.say(t) for t in ("a", "b", "c")] == [
        "plain", "from a model", "Looked it up: shipped."]
    episode = conversation.episode()
    assert episode.tool_names == ["lookup", "track"]
    assert [c.step for c in episode.tool_calls] == [4, 6]  # the steps that made them
    assert episode.steps[3].completion is not None and episode.stop_reason == "user_stopped"


def test_a_crashing_app_leaves_the_episode_so_far(sample):
    def app(messages):
        if len(messages) > 2:
            raise RuntimeError("backend down")
        return "What is your order number?"

    with pytest.raises(RuntimeError, match="backend down"):
        llmcheck.run_conversation(app, customer())
    assert sample.episode.stop_reason == "error" and sample.episode.turns == 2


@pytest.mark.parametrize(("make", "message"), [
    (lambda: llmcheck.SimulatedUser(42, "goal", script=["hi"]), "persona must be .* got 42"),
    (lambda: llmcheck.SimulatedUser("p", "", script=["hi"]), "goal must be .* got ''"),
    (lambda: llmcheck.SimulatedUser("p", "g", max_turns=0), "max_turns must be .* got 0"),
    (lambda: llmcheck.SimulatedUser("p", "g", script="hello"), "script must be .* 'hello'"),
    (lambda: llmcheck.SimulatedUser("p", "g", script=["a"], model="m"), "model or script"),
    (lambda: llmcheck.SimulatedUser("p", "g", model=3.5), "model must be .* 3.5"),
    (lambda: llmcheck.SimulatedUser("p", "g", stop="done"), "stop must be a callable"),
    (lambda: llmcheck.run_conversation(support_bot, customer(), max_turns=True),
     "max_turns must be .* True"),
    (lambda: llmcheck.run_conversation(support_bot, "a user"), "user must be a SimulatedUser"),
    (lambda: llmcheck.Conversation(5), "app must be an LLMClient .* got int 5"),
    (lambda: llmcheck.Conversation(support_bot, system=["x"]), "system must be a str"),
    (lambda: llmcheck.Conversation(support_bot).say(None), "text must be a str, got NoneType"),
    (lambda: llmcheck.run_conversation(lambda m: 7, customer()),
     "the app returned int 7; it must return a str, a Completion or an Episode"),
])
def test_bad_input_is_a_usage_error_naming_it(make, message):
    with pytest.raises(UsageError, match=message):
        make()


# ------------------------------------------------------------------------ the checks


def refund_episode(script=SCRIPT) -> Episode:
    return llmcheck.run_conversation(support_bot, customer(script=script))


def test_goal_reached_by_a_predicate_finds_the_turn(sample):
    episode = refund_episode()
    refunded = lambda ep: "refunded order 1042" in ep.final_text  # noqa: E731
    assert llmcheck.assert_goal_reached(episode, check=refunded) == 2
    assert llmcheck.assert_goal_reached(episode, by_turn=2, check=refunded) == 2
    with pytest.raises(CheckFailed, match="goal not reached by turn 1") as info:
        llmcheck.assert_goal_reached(episode, by_turn=1, check=refunded)
    failed = info.value.results[0]
    assert failed.name == "goal_reached(by turn 1)" and failed.step == "turn 1"
    # a predicate written with llmcheck's own checks records nothing of its own
    llmcheck.assert_goal_reached(
        episode, check=lambda ep: llmcheck.assert_contains(ep.final_text, "refunded"))
    assert [c.name for c in sample.checks] == ["goal_reached", "goal_reached(by turn 2)",
                                               "goal_reached(by turn 1)", "goal_reached"]
    assert [c.passed for c in sample.checks] == [True, True, False, True]


def test_goal_never_reached_fails_at_the_last_turn():
    episode = refund_episode(["Hi, I want a refund.", "I forgot my order number."])
    with pytest.raises(CheckFailed) as info:
        llmcheck.assert_goal_reached(episode, check=lambda ep: "refunded" in ep.final_text)
    assert info.value.results[0].step == "turn 2"
    assert "never held in 2 turn(s)" in str(info.value)
    # no check given and no simulated user to say so: the test must say what the goal is
    by_hand = llmcheck.Conversation(support_bot)
    by_hand.say("hi")
    with pytest.raises(UsageError, match="give check="):
        llmcheck.assert_goal_reached(by_hand.episode())
    with pytest.raises(UsageError, match="by_turn must be a turn number >= 1 .* got 0"):
        llmcheck.assert_goal_reached(episode, by_turn=0, check=lambda ep: True)


def test_every_reply_names_the_first_failing_turn_inside_soft(sample):
    episode = refund_episode()
    assert llmcheck.assert_every_reply(episode, lambda r: llmcheck.assert_not_refusal(r)) == 3

    def no_questions(reply: str) -> bool:
        return "?" not in reply

    with pytest.raises(CheckFailed, match="2 checks failed"), llmcheck.soft():
        assert llmcheck.assert_every_reply(episode, no_questions) == 0
        llmcheck.assert_every_reply(episode, lambda r: llmcheck.assert_not_matches(r, r"\d"),
                                    name="no_digits")
    results = {c.name: c for c in sample.checks}
    assert set(results) == {"every_reply", "every_reply(no_questions)", "every_reply(no_digits)"}
    assert results["every_reply(no_questions)"].step == "turn 1"
    assert "the reply of turn 1 failed: returned False" in results[
        "every_reply(no_questions)"].message
    digits = results["every_reply(no_digits)"]
    assert digits.step == "turn 2" and "I have refunded order 1042." in digits.message


def test_never_contradicts_a_fact_with_its_value_marked(sample):
    episode = refund_episode()
    assert llmcheck.assert_never_contradicts(episode, "order {1042}") == 3
    wrong = refund_episode(["Hi, I want a refund.", "Refund order 1042 please"])
    wrong.steps[3].text = "Done: I have refunded order 1024."
    with pytest.raises(CheckFailed, match="it says '1024' where the fact says '1042'") as info:
        llmcheck.assert_never_contradicts(wrong, "refunded order {1042}")
    assert info.value.results[0].step == "turn 2"
    assert info.value.results[0].name == "never_contradicts('refunded order 1042')"
    # a predicate decides instead: False (or an AssertionError) is a contradiction
    with pytest.raises(CheckFailed, match="turn 1 contradicts the fact"):
        llmcheck.assert_never_contradicts(episode, "we never ask for the order number",
                                          judge=lambda reply, fact: "order number" not in reply)
    with pytest.raises(UsageError, match="mark the fact's value with braces"):
        llmcheck.assert_never_contradicts(episode, "order 1042")
    with pytest.raises(UsageError, match="judge must be False, True or a predicate"):
        llmcheck.assert_never_contradicts(episode, "order {1042}", judge="yes")
    with pytest.raises(UsageError, match="episode must be an Episode .* got str"):
        llmcheck.assert_every_reply("hello", bool)
