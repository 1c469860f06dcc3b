"""Path checks: what an episode did on its way to the answer, judged per sample.

Each check reads an :class:`~llmcheck.episodes.episode.Episode` (from the loop runner, a
conversation, or :func:`~llmcheck.episodes.recorded.recorded_episode` for an app's own
loop), records one :class:`~llmcheck.records.schema.CheckResult` in the running sample
like every ``llmcheck.assert_*``, and raises :class:`~llmcheck.checks.CheckFailed` when the
path is wrong (inside ``soft()`` it is collected instead). A failed path check also
records *where* the episode went wrong, as ``CheckResult.step``: ``step 2: cancel_order``
(the step and the tool at fault), ``step 6`` (a step with no tool call) or ``final`` (the
episode ended without doing what was expected, or its final state is wrong); reports
group failing samples by the first such step.

The final answer is checked with the existing checks: each takes an Episode where it
takes a Completion and reads its :attr:`~llmcheck.episodes.episode.Episode.final_text`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from llmcheck.checks.base import conclude, excerpt, listing, short_repr, type_label
from llmcheck.checks.golden import JsonComparer
from llmcheck.checks.schema import compile_schema, render_path
from llmcheck.checks.tools import _rejection
from llmcheck.episodes.episode import Episode, Step, ToolInvocation
from llmcheck.errors import UsageError
from llmcheck.model.completion import ToolCall, parse_json_text

__all__ = ["assert_final_state", "assert_max_steps", "assert_no_tool_errors",
           "assert_tool_called_with", "assert_tool_not_called", "assert_tools_called"]

Order = Literal["exact", "subsequence", "set"]
ORDERS = ("exact", "subsequence", "set")
FINAL = "final"
"""The step of a check about the end of the episode: a tool never called, a wrong state."""
PREDICATE_ERRORS = (AssertionError, KeyError, IndexError, TypeError, ValueError,
                    AttributeError)
"""What a predicate on model-written arguments may raise for arguments it did not expect
(a missing key, a wrong type): a mismatch, not a broken test."""


def _episode(episode: Any, check: str) -> Episode:
    if not isinstance(episode, Episode):
        raise UsageError(f"{check}: episode must be an Episode (from the loop runner, a "
                         f"conversation or llmcheck.recorded_episode()), got "
                         f"{type(episode).__name__} {short_repr(episode)}")
    return episode


def _tool_name(check: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise UsageError(f"{check}: name must be a tool's name (a non-empty str), got "
                         f"{short_repr(name)}")
    return name


def _where(step: Step | None, *names: str) -> str:
    """How a failure's step is recorded: ``step 2: cancel_order``, ``step 6``, ``final``."""
    if step is None:
        return FINAL
    return f"{step.label}: {', '.join(names)}" if names else step.label


def _numbered(episode: Episode) -> list[Step]:
    """The episode's steps, each labelled by its place (the first model step is
    ``step 1``; a conversation's steps keep their turns), whatever index its source gave."""
    out, n = [], 0
    for step in episode.steps:
        n += step.role == "assistant"
        out.append(step if step.turn is not None or step.index == n
                   else dataclasses.replace(step, index=n))
    return out


def _calls(episode: Episode) -> list[tuple[Step, ToolInvocation]]:
    """Every tool invocation with the step that asked for it, in order."""
    return [(step, call) for step in _numbered(episode) for call in step.tool_calls]


def _shown(call: ToolInvocation) -> str:
    """``name('{"arguments": ...}')``: secrets masked, cut to a line."""
    return f"{call.name}({excerpt(call.arguments, 80)})"


def _path(names: Sequence[str]) -> str:
    return " → ".join(names) if names else "no tool"


# --------------------------------------------------------------------------- which tools


def assert_tools_called(episode: Episode, names: Sequence[str], *,
                        order: Order = "exact") -> list[str]:
    """Check which tools the episode called; return the names it called, in order.

    ``order="exact"``: the sequence of tool calls is ``names``, nothing more or less;
    ``"subsequence"``: ``names`` were called in this order, other calls may come between
    and after them; ``"set"``: each name was called at least once, in any order.
    Recorded as ``tools_called(search, cancel_order)`` (plus ``; subsequence`` or
    ``; set``); on a failure, the step is where the path left the expected one (the
    first wrong call) or ``final`` when the episode ended before an expected call.
    """
    __tracebackhide__ = True
    check = "assert_tools_called"
    ep = _episode(episode, check)
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(
            isinstance(n, str) and n for n in names):
        raise UsageError(f"{check}: names must be a list of tool names (non-empty strs), "
                         f"got {short_repr(names)}")
    if order not in ORDERS:
        raise UsageError(f"{check}: order must be one of {', '.join(ORDERS)}, got "
                         f"{short_repr(order)}")
    wanted = list(names)
    calls = _calls(ep)
    called = [call.name for _, call in calls]
    label = f"tools_called({', '.join(wanted)}" + (")" if order == "exact" else f"; {order})")
    value = ",".join(called)[:200]
    if order == "set":
        missing = [n for n in dict.fromkeys(wanted) if n not in called]
        step, problem = FINAL, f"never called: {', '.join(missing)}" if missing else None
    elif order == "exact":
        step, problem = _exact(wanted, calls)
    else:
        step, problem = _subsequence(wanted, calls)
    if problem is None:
        conclude(label, True, value=value)
    else:
        conclude(label, False, f"{problem}; the episode called {_path(called)}", value,
                 step=step)
    return called


def _exact(wanted: list[str], calls: list[tuple[Step, ToolInvocation]]
           ) -> tuple[str, str | None]:
    for i, (step, call) in enumerate(calls):
        if i >= len(wanted):
            return _where(step, call.name), (f"expected only {_path(wanted)}, then "
                                             f"{_where(step, call.name)} called more")
        if call.name != wanted[i]:
            return _where(step, call.name), (f"expected {_path(wanted)}; call {i + 1} was "
                                             f"{call.name!r} instead of {wanted[i]!r}")
    if len(calls) < len(wanted):
        return FINAL, (f"expected {_path(wanted)}; the episode ended before "
                       f"{_path(wanted[len(calls):])}")
    return FINAL, None


def _subsequence(wanted: list[str], calls: list[tuple[Step, ToolInvocation]]
                 ) -> tuple[str, str | None]:
    """Match ``wanted`` greedily; a miss is blamed on the first call after the last match
    (the point where the path went elsewhere), or on ``final`` if none came after it."""
    position = 0
    for i, name in enumerate(wanted):
        found = next((j for j in range(position, len(calls)) if calls[j][1].name == name),
                     None)
        if found is None:
            after = (f" after {wanted[i - 1]!r}" if i else "")
            problem = (f"expected {_path(wanted)} in this order (other calls may come "
                       f"between); {name!r} was not called{after}")
            if position < len(calls):
                step, call = calls[position]
                return _where(step, call.name), problem
            return FINAL, problem
        position = found + 1
    return FINAL, None


def assert_tool_not_called(episode: Episode, name: str) -> bool:
    """Check that the episode never called tool ``name`` (a refund it must not give, a
    delete it must not do). Recorded as ``tool_not_called(name)``; a failure's step is
    the first call of it."""
    __tracebackhide__ = True
    check = "assert_tool_not_called"
    ep = _episode(episode, check)
    name = _tool_name(check, name)
    seen = [(step, call) for step, call in _calls(ep) if call.name == name]
    label = f"tool_not_called({name})"
    if not seen:
        return conclude(label, True, value=0)
    step, call = seen[0]
    return conclude(label, False, f"{name!r} was called {len(seen)} time(s), first at "
                    f"{step.label}: {_shown(call)}", len(seen), step=_where(step, name))


# --------------------------------------------------------------------------- arguments


def _is_json_schema(args: Mapping[str, Any]) -> bool:
    """The documented rule: a dict is a JSON Schema (not expected values) when it has
    ``$schema``, ``"type": "object"`` or a ``properties`` dict: a tool's arguments are a
    JSON object, so its schema says so."""
    return ("$schema" in args or args.get("type") == "object"
            or isinstance(args.get("properties"), dict))


def _matcher(check: str, args: Any) -> tuple[str, Callable[[ToolInvocation], str | None]]:
    """A label for ``args`` and a function giving why a call does not match (None: it
    matches)."""
    comparer = JsonComparer()
    if isinstance(args, type) or (isinstance(args, Mapping) and _is_json_schema(args)):
        compiled = compile_schema(args)

        def by_schema(call: ToolInvocation) -> str | None:
            return _rejection(ToolCall(call.name, call.arguments, call.id), compiled, None,
                              comparer)

        return compiled.label, by_schema
    if isinstance(args, Mapping):
        values = {k: v for k, v in args.items() if not callable(v)}
        tests = {k: v for k, v in args.items() if callable(v)}

        def by_values(call: ToolInvocation) -> str | None:
            reason = _rejection(ToolCall(call.name, call.arguments, call.id), None, values,
                                comparer)
            if reason is not None or not tests:
                return reason
            parsed = parse_json_text(call.arguments, allow_fence=False)
            problems = [line for key, test in tests.items()
                        if (line := _predicate_problem(render_path((key,)), test, parsed,
                                                       key)) is not None]
            return f"{_shown(call)}:\n" + listing(problems).replace("  - ", "    - ") \
                if problems else None

        shown = ", ".join(f"{k!r}: {_name(v) if callable(v) else short_repr(v)}"
                          for k, v in args.items())
        return "{" + (shown if len(shown) <= 60 else shown[:57] + "...") + "}", by_values
    if callable(args):
        def by_predicate(call: ToolInvocation) -> str | None:
            try:
                parsed = parse_json_text(call.arguments, allow_fence=False)
            except ValueError as exc:
                return f"{_shown(call)}: arguments are {exc}"
            problem = _predicate_problem("arguments", args, {"": parsed}, "")
            return None if problem is None else f"{_shown(call)}: {problem}"

        return getattr(args, "__name__", "predicate"), by_predicate
    raise UsageError(f"{check}: args must be a dict of expected values (a value may be a "
                     f"predicate), a pydantic model class, a JSON Schema dict or a predicate "
                     f"on the parsed arguments, got {short_repr(args)}")


def _predicate_problem(where: str, test: Callable[[Any], Any], parsed: dict[str, Any],
                       key: str) -> str | None:
    if key not in parsed:
        return f"{where}: missing (expected a value passing {_name(test)})"
    try:
        ok = test(parsed[key])
    except PREDICATE_ERRORS as exc:
        return f"{where}: {_name(test)} raised {type(exc).__name__}: {short_repr(str(exc))}"
    if ok:
        return None
    return f"{where}: {short_repr(parsed[key], 60)} does not pass {_name(test)}"


def _name(test: Callable[..., Any]) -> str:
    return getattr(test, "__name__", None) or short_repr(test)


def assert_tool_called_with(episode: Episode, name: str, args: Any) -> ToolInvocation | None:
    """Check that the episode called tool ``name`` with acceptable arguments at least once;
    return the first call that was.

    ``args`` is one of: a dict of expected values (a subset: other arguments may be
    there; values compare as JSON, ``1 == 1.0``; a value may be a predicate, e.g.
    ``{"qty": lambda q: q > 0}``); a pydantic model class (or any type pydantic
    validates); a JSON Schema dict (a dict with ``"$schema"``, ``"type": "object"`` or a
    ``"properties"`` dict is read as a schema, any other dict as expected values); or a
    predicate on the parsed arguments dict. The failure lists each call of ``name`` seen,
    its step and arguments (secrets masked, cut), and why it did not match; its step is
    the first call of ``name``, or ``final`` when it was never called.
    """
    __tracebackhide__ = True
    check = "assert_tool_called_with"
    ep = _episode(episode, check)
    name = _tool_name(check, name)
    shown, mismatch = _matcher(check, args)
    label = f"tool_called_with({name}, {shown})"
    calls = _calls(ep)
    seen = [(step, call) for step, call in calls if call.name == name]
    value = ",".join(call.name for _, call in calls)[:200]
    if not seen:
        conclude(label, False, f"{name!r} was never called; the episode called "
                 f"{_path([c.name for _, c in calls])}", value, step=FINAL)
        return None
    reasons = []
    for step, call in seen:
        reason = mismatch(call)
        if reason is None:
            conclude(label, True, value=value)
            return call
        reasons.append(f"{step.label}: {reason}")
    conclude(label, False, f"{name!r} was called {len(seen)} time(s), never with matching "
             f"arguments:\n" + "\n".join(f"  - {r}" for r in reasons[:10]), value,
             step=_where(seen[0][0], name))
    return None


# --------------------------------------------------------------------------- length, errors


def assert_max_steps(episode: Episode, n: int) -> int:
    """Check that the episode took at most ``n`` model steps; return how many it took.
    A failure's step is the first step past the limit."""
    __tracebackhide__ = True
    check = "assert_max_steps"
    ep = _episode(episode, check)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"{check}: n must be a whole number of steps, at least 1, got "
                         f"{short_repr(n)}")
    steps = [s for s in _numbered(ep) if s.role == "assistant"]
    label = f"max_steps({n})"
    if len(steps) <= n:
        conclude(label, True, value=len(steps))
        return len(steps)
    over = steps[n]
    conclude(label, False, f"the episode took {len(steps)} model steps, at most {n} "
             f"allowed (stopped: {ep.stop_reason})", len(steps),
             step=_where(over, *(c.name for c in over.tool_calls)))
    return len(steps)


def assert_no_tool_errors(episode: Episode, *, unhandled_only: bool = True) -> bool:
    """Check that no tool call ended in an error (an unknown tool, arguments that do not
    parse or fit, a raise, a timeout, an injected tool fault). ``unhandled_only`` (the
    default) accepts errors the episode recovered from (reported back to the model, which
    went on); ``False`` accepts none. A failure's step is the first such error's.

    Only episodes that saw their tools run carry errors (the loop runner): a recorded
    episode is refused with a UsageError, since its tool errors were never seen."""
    __tracebackhide__ = True
    check = "assert_no_tool_errors"
    ep = _episode(episode, check)
    if ep.source == "recorded":
        raise UsageError(f"{check}: a recorded episode (an app's own loop) carries no tool "
                         "errors: llmcheck saw the model calls, not the tools running. Run "
                         "the tools with llmcheck's loop runner to check their errors")
    bad = [(step, call) for step, call in _calls(ep) if call.error is not None
           and not (unhandled_only and call.handled)]
    label = "no_tool_errors" + ("" if unhandled_only else "(all)")
    if not bad:
        return conclude(label, True, value=0)
    lines = [f"{step.label}: {_shown(call)}: {short_repr(call.error, 160)}"
             + ("" if call.handled else " (unhandled)") for step, call in bad]
    kind = "unhandled tool error(s)" if unhandled_only else "tool error(s)"
    step, call = bad[0]
    return conclude(label, False, f"{len(bad)} {kind}:\n{listing(lines, 10)}", len(bad),
                    step=_where(step, call.name))


# --------------------------------------------------------------------------- final state


def _plain(value: Any) -> Any:
    """A pydantic model or a dataclass as plain data, so a difference reads by field."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def assert_final_state(state_or_episode: Any, expected: Any) -> Any:
    """Check the state of the world after the episode (as in tau-bench); return it.

    ``state_or_episode``: the state object itself (what the app's tools changed) or an
    Episode from the loop runner, whose :attr:`~llmcheck.episodes.episode.Episode.state`
    is read. ``expected``: the state it should equal (dicts, lists, dataclasses and
    pydantic models compare field by field, and a failure lists each difference as
    ``$.orders[0].status: expected 'cancelled', got 'open'``) or a predicate on the state
    (a function returning true when it is acceptable; an AssertionError it raises fails
    the check with its message). Recorded as ``final_state`` (``final_state(predicate)``);
    a failure's step is ``final``.
    """
    __tracebackhide__ = True
    check = "assert_final_state"
    state = state_or_episode
    if isinstance(state_or_episode, Episode):
        if state_or_episode.source == "recorded" or state_or_episode.state is None:
            raise UsageError(f"{check}: this {state_or_episode.source} episode carries no "
                             "state; pass the state object your tools changed, or give the "
                             "loop runner a state")
        state = state_or_episode.state
    if callable(expected) and not isinstance(expected, type):
        label = f"final_state({_name(expected)})"
        try:
            ok, reason = bool(expected(state)), f"{_name(expected)} returned false"
        except AssertionError as exc:
            ok, reason = False, str(exc) or f"{_name(expected)} failed"
        conclude(label, ok, None if ok else f"{reason}\nthe state: {short_repr(state, 200)}",
                 step=FINAL)
        return state
    if isinstance(expected, type):
        raise UsageError(f"{check}: expected must be the state to compare with or a "
                         f"predicate, got the class {type_label(expected)}")
    differences: list[str] = []
    want, got = _plain(expected), _plain(state)
    if not (state == expected or want == got):  # a dict may stand for a model's fields
        differences = JsonComparer().diff(want, got) or [
            f"$: expected {short_repr(expected, 120)}, got {short_repr(state, 120)}"]
    conclude("final_state", not differences, "the final state differs from the expected "
             f"one:\n{listing(differences, 20)}" if differences else None, step=FINAL)
    return state
