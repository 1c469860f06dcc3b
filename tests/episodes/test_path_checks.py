"""Path checks over an episode: what passes, what fails, the step each failure is recorded
at (what reports group failing samples by), the messages a user reads, and bad input."""

from __future__ import annotations

import dataclasses
import re

import pytest
from pydantic import BaseModel

import llmcheck
from llmcheck import redact
from llmcheck.episodes.episode import Episode, Step, ToolInvocation


def call(name: str, arguments: str = "{}", **kwargs) -> ToolInvocation:
    import json

    try:
        args = json.loads(arguments)
    except ValueError:
        args = None
    return ToolInvocation(name=name, arguments=arguments, args=args, **kwargs)


def episode(*steps: list[ToolInvocation], final: str = "Done.", start: int = 1,
            **kwargs) -> Episode:
    """Model steps with these tool calls, then a final answer (``start``: the first
    step's index, as the source numbers them)."""
    built = [Step(index=start + i, tool_calls=calls) for i, calls in enumerate(steps)]
    built.append(Step(index=start + len(steps), text=final))
    return Episode(steps=built, final_text=final, **kwargs)


SUPPORT = episode([call("find_order", '{"order_id": 42}')],
                  [call("cancel_order", '{"order_id": 42, "reason": "late"}')],
                  final="Your order 42 is cancelled.")


def failed(sample) -> tuple[str, str, str]:
    """(name, step, message) of the sample's last check, which failed."""
    result = sample.checks[-1]
    assert not result.passed
    return result.name, result.step, result.message


# --------------------------------------------------------------------------- which tools


def test_tools_called_in_exact_order(sample):
    assert llmcheck.assert_tools_called(SUPPORT, ["find_order", "cancel_order"]) == [
        "find_order", "cancel_order"]
    assert sample.checks[-1].passed and sample.checks[-1].step is None
    assert sample.checks[-1].name == "tools_called(find_order, cancel_order)"

    with pytest.raises(llmcheck.CheckFailed, match="call 2 was 'cancel_order' instead of"):
        llmcheck.assert_tools_called(SUPPORT, ["find_order", "refund_order"])
    name, step, message = failed(sample)
    assert step == "step 2: cancel_order"
    assert message.endswith("the episode called find_order → cancel_order")

    with pytest.raises(llmcheck.CheckFailed, match="ended before refund_order"):
        llmcheck.assert_tools_called(SUPPORT, ["find_order", "cancel_order", "refund_order"])
    assert failed(sample)[1] == "final"

    with pytest.raises(llmcheck.CheckFailed, match="expected only find_order"):
        llmcheck.assert_tools_called(SUPPORT, ["find_order"])
    assert failed(sample)[1] == "step 2: cancel_order"


def test_tools_called_as_a_subsequence_and_as_a_set(sample):
    path = episode([call("search")], [call("find_order")], [call("log")],
                   [call("cancel_order")])
    llmcheck.assert_tools_called(path, ["find_order", "cancel_order"], order="subsequence")
    assert sample.checks[-1].name == "tools_called(find_order, cancel_order; subsequence)"
    with pytest.raises(llmcheck.CheckFailed, match="'refund' was not called after 'find"):
        llmcheck.assert_tools_called(path, ["find_order", "refund"], order="subsequence")
    assert failed(sample)[1] == "step 3: log", "where the path went elsewhere"
    with pytest.raises(llmcheck.CheckFailed):
        llmcheck.assert_tools_called(path, ["cancel_order", "refund"], order="subsequence")
    assert failed(sample)[1] == "final", "nothing came after the last match"

    llmcheck.assert_tools_called(path, ["cancel_order", "search"], order="set")
    with pytest.raises(llmcheck.CheckFailed, match="never called: refund; the episode"):
        llmcheck.assert_tools_called(path, ["search", "refund"], order="set")
    assert failed(sample)[1] == "final"


def test_tool_not_called(sample):
    assert llmcheck.assert_tool_not_called(SUPPORT, "refund_order") is True
    with pytest.raises(llmcheck.CheckFailed, match=r"'cancel_order' was called 1 time\(s\), "
                       r"first at step 2: cancel_order\('\{\"order_id\": 42"):
        llmcheck.assert_tool_not_called(SUPPORT, "cancel_order")
    assert failed(sample)[:2] == ("tool_not_called(cancel_order)", "step 2: cancel_order")


# --------------------------------------------------------------------------- arguments


class Cancel(BaseModel):
    order_id: int
    reason: str


def test_tool_called_with_values_a_schema_or_a_predicate(sample):
    found = llmcheck.assert_tool_called_with(SUPPORT, "cancel_order", {"order_id": 42})
    assert found is SUPPORT.steps[1].tool_calls[0]
    llmcheck.assert_tool_called_with(SUPPORT, "cancel_order",
                                     {"order_id": 42.0, "reason": lambda r: "late" in r})
    llmcheck.assert_tool_called_with(SUPPORT, "cancel_order", Cancel)
    llmcheck.assert_tool_called_with(SUPPORT, "cancel_order", {
        "type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}})
    llmcheck.assert_tool_called_with(SUPPORT, "cancel_order", lambda a: a["order_id"] == 42)
    assert all(c.passed for c in sample.checks)
    assert sample.checks[2].name == "tool_called_with(cancel_order, Cancel)"


def test_a_dict_with_a_type_value_is_expected_values_not_a_schema(sample):
    """The rule: "type" makes a schema only when it says "object"."""
    path = episode([call("file", '{"type": "refund", "amount": 5}')])
    llmcheck.assert_tool_called_with(path, "file", {"type": "refund"})
    with pytest.raises(llmcheck.CheckFailed, match=r"\$\.type: expected \"refund\", got"):
        llmcheck.assert_tool_called_with(
            episode([call("file", '{"type": "return"}')]), "file", {"type": "refund"})


def test_a_mismatch_lists_every_call_seen_with_its_step_and_arguments(sample):
    key = "sk-live-TESTKEY-1234567890abcdef"
    redact.register_secret(key)
    try:
        path = episode([call("cancel_order", '{"order_id": 41}')], [call("search")],
                       [call("cancel_order", f'{{"order_id": "42", "token": "{key}"}}')],
                       [call("cancel_order", "{order_id: 42")])
        with pytest.raises(llmcheck.CheckFailed) as info:
            llmcheck.assert_tool_called_with(path, "cancel_order",
                                             {"order_id": 42, "reason": lambda r: r})
    finally:
        redact.forget_secrets()
    name, step, message = failed(sample)
    assert step == "step 1: cancel_order", "the first call of the tool"
    lines = message.splitlines()
    assert lines[0] == "'cancel_order' was called 3 time(s), never with matching arguments:"
    assert "step 1: cancel_order" in lines[1] and "$.order_id: expected 42, got 41" in message
    assert "step 3: cancel_order" in message and "expected number 42, got string" in message
    assert "step 4: cancel_order" in message and "arguments are" in message
    assert key not in message and key[:12] not in str(info.value)
    assert "[REDACTED]" in message


def test_predicates_that_break_on_odd_arguments_are_mismatches(sample):
    path = episode([call("pay", '{"amount": "ten"}')])
    with pytest.raises(llmcheck.CheckFailed, match=r"amount: positive raised TypeError"):
        def positive(x):
            return x > 0
        llmcheck.assert_tool_called_with(path, "pay", {"amount": positive})
    with pytest.raises(llmcheck.CheckFailed, match=r"\$\.currency: missing \(expected a "
                       r"value passing <lambda>\)"):
        llmcheck.assert_tool_called_with(path, "pay", {"currency": lambda c: True})
    with pytest.raises(llmcheck.CheckFailed, match="'pay' was never called"):
        llmcheck.assert_tool_called_with(episode(), "pay", {})
    assert failed(sample)[1] == "final"


# --------------------------------------------------------------------------- length, errors


def test_max_steps(sample):
    assert llmcheck.assert_max_steps(SUPPORT, 3) == 3
    with pytest.raises(llmcheck.CheckFailed, match="took 3 model steps, at most 2 allowed"):
        llmcheck.assert_max_steps(SUPPORT, 2)
    assert failed(sample)[:2] == ("max_steps(2)", "step 3")
    with pytest.raises(llmcheck.CheckFailed):
        llmcheck.assert_max_steps(SUPPORT, 1)
    assert failed(sample)[1] == "step 2: cancel_order"


def test_steps_are_labelled_from_1_whatever_index_the_source_gave(sample):
    zero_based = episode([call("a")], [call("b")], start=0)
    with pytest.raises(llmcheck.CheckFailed):
        llmcheck.assert_tool_not_called(zero_based, "b")
    assert failed(sample)[1] == "step 2: b"


def test_no_tool_errors(sample):
    path = episode([call("lookup", error="raised KeyError: 'x'")],
                   [call("cancel_order", error="timed out after 2.0 s", handled=False)])
    with pytest.raises(llmcheck.CheckFailed, match=r"1 unhandled tool error\(s\):\n  - step 2: "
                       r"cancel_order\('\{\}'\): 'timed out after 2.0 s' \(unhandled\)"):
        llmcheck.assert_no_tool_errors(path)
    assert failed(sample)[:2] == ("no_tool_errors", "step 2: cancel_order")
    with pytest.raises(llmcheck.CheckFailed, match=r"2 tool error\(s\)"):
        llmcheck.assert_no_tool_errors(path, unhandled_only=False)
    assert failed(sample)[1] == "step 1: lookup"
    assert llmcheck.assert_no_tool_errors(SUPPORT) is True
    with pytest.raises(llmcheck.UsageError, match="recorded episode .* carries no tool errors"):
        llmcheck.assert_no_tool_errors(episode(source="recorded"))


# --------------------------------------------------------------------------- final state


@dataclasses.dataclass
class Order:
    id: int
    status: str
    items: list[str]


def test_final_state_equality_with_a_readable_difference(sample):
    state = {"orders": [Order(42, "open", ["lamp"])]}
    run = episode(state=state)
    assert llmcheck.assert_final_state(run, {"orders": [Order(42, "open", ["lamp"])]}) is state
    with pytest.raises(llmcheck.CheckFailed) as info:
        llmcheck.assert_final_state(Order(42, "open", ["lamp", "bulb"]),
                                    Order(42, "cancelled", ["lamp"]))
    name, step, message = failed(sample)
    assert (name, step) == ("final_state", "final")
    assert "$.status: expected \"cancelled\", got \"open\"" in message
    assert "$.items[1]: unexpected item (got \"bulb\")" in message
    assert str(info.value).startswith("final_state: the final state differs")


def test_final_state_of_a_model_against_its_fields_or_a_predicate(sample):
    class Account(BaseModel):
        balance: int

    llmcheck.assert_final_state(Account(balance=5), {"balance": 5})

    def refunded(state):
        assert state.balance == 0, f"balance is {state.balance}, not 0"
        return True

    with pytest.raises(llmcheck.CheckFailed, match="balance is 5, not 0"):
        llmcheck.assert_final_state(Account(balance=5), refunded)
    assert failed(sample)[:2] == ("final_state(refunded)", "final")
    assert failed(sample)[2].endswith("\nthe state: Account(balance=5)")
    with pytest.raises(llmcheck.CheckFailed, match="<lambda> returned false"):
        llmcheck.assert_final_state(Account(balance=5), lambda s: s.balance > 9)


def test_final_state_refuses_an_episode_without_state():
    with pytest.raises(llmcheck.UsageError, match="this recorded episode carries no state; "
                       "pass the state object"):
        llmcheck.assert_final_state(episode(source="recorded"), {})
    with pytest.raises(llmcheck.UsageError, match="got the class Order"):
        llmcheck.assert_final_state({}, Order)


# --------------------------------------------------------------------------- everywhere


def test_soft_collects_path_failures_with_their_steps(sample):
    with pytest.raises(llmcheck.CheckFailed, match="2 checks failed: tools_called"):
        with llmcheck.soft():
            assert llmcheck.assert_tools_called(SUPPORT, ["refund"]) == [
                "find_order", "cancel_order"]
            assert llmcheck.assert_tool_called_with(SUPPORT, "find_order", {"x": 1}) is None
            assert llmcheck.assert_max_steps(SUPPORT, 5) == 3
    assert [(c.name, c.passed, c.step) for c in sample.checks] == [
        ("tools_called(refund)", False, "step 1: find_order"),
        ("tool_called_with(find_order, {'x': 1})", False, "step 1: find_order"),
        ("max_steps(5)", True, None)]


class Reply(BaseModel):
    order_id: int
    status: str


def test_every_check_reads_an_episodes_final_answer(sample):
    run = episode(final='{"order_id": 42, "status": "cancelled"}')
    assert llmcheck.assert_schema(run, Reply).status == "cancelled"
    llmcheck.assert_contains(run, "cancelled")
    llmcheck.assert_length(run, max_words=5)
    with pytest.raises(llmcheck.CheckFailed):
        llmcheck.assert_matches(run, r"refund")
    assert sample.checks[-1].step is None, "a text check has no step"


@pytest.mark.parametrize("check, args, accepted", [
    (llmcheck.assert_tools_called, (["a"],), "must be an Episode"),
    (llmcheck.assert_tool_not_called, ("a",), "must be an Episode"),
    (llmcheck.assert_max_steps, (2,), "must be an Episode"),
    (llmcheck.assert_no_tool_errors, (), "must be an Episode"),
    (llmcheck.assert_tool_called_with, ("a", {}), "must be an Episode"),
])
def test_a_non_episode_is_refused_by_type(check, args, accepted):
    with pytest.raises(llmcheck.UsageError, match=f"{accepted} .*got Completion"):
        check(llmcheck.Completion(text="hi", model="m"), *args)


@pytest.mark.parametrize("call_it, words", [
    (lambda: llmcheck.assert_tools_called(SUPPORT, "find_order"), "names must be a list"),
    (lambda: llmcheck.assert_tools_called(SUPPORT, ["a"], order="any"),
     "order must be one of exact, subsequence, set, got 'any'"),
    (lambda: llmcheck.assert_max_steps(SUPPORT, 0), "at least 1, got 0"),
    (lambda: llmcheck.assert_max_steps(SUPPORT, True), "at least 1, got True"),
    (lambda: llmcheck.assert_tool_not_called(SUPPORT, ""), "(a non-empty str), got ''"),
    (lambda: llmcheck.assert_tool_called_with(SUPPORT, "a", 42), "args must be a dict"),
    (lambda: llmcheck.assert_contains(42, "x"), "a Completion, an Episode or a str, got int"),
])
def test_bad_arguments_name_the_value_and_what_is_accepted(call_it, words):
    with pytest.raises(llmcheck.UsageError, match=re.escape(words)):
        call_it()
