"""Tool calls: ``assert_tool_call``.

A tool-calling test usually cares about three things: the model called the
right tool (rather than another one, or answering in prose), the arguments
are valid JSON, and they have the right shape or values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmcheck.checks.base import conclude, excerpt, listing, short_repr
from llmcheck.checks.golden import JsonComparer
from llmcheck.checks.schema import CompiledSchema, Loaded, compile_schema, render_path
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion, ToolCall, parse_json_text


def _calls(output: Any) -> tuple[list[ToolCall], str | None]:
    if isinstance(output, Completion):
        return list(output.tool_calls), output.text
    if isinstance(output, ToolCall):
        return [output], None
    if isinstance(output, str):
        raise UsageError("assert_tool_call: got a str; pass the Completion (plain text holds no "
                         "tool calls)")
    if isinstance(output, Iterable) and not isinstance(output, (bytes, Mapping)):
        calls = list(output)
        if all(isinstance(c, ToolCall) for c in calls):
            return calls, None
    raise UsageError(f"assert_tool_call: output must be a Completion, a ToolCall or a list of "
                     f"ToolCalls, got {type(output).__name__} {short_repr(output)}")


def _describe(call: ToolCall) -> str:
    return f"{call.name}({excerpt(call.arguments, 60)})"


def assert_tool_call(
    output: Completion | ToolCall | Iterable[ToolCall],
    name: str,
    args_schema: Any = None,
    args: Mapping[str, Any] | None = None,
) -> ToolCall | None:
    """Check that the model called tool ``name`` with acceptable arguments; return the call.

    The call's arguments must be a JSON object; with ``args_schema`` (a pydantic
    model class, a TypeAdapter-able type or a JSON Schema dict, as in
    :func:`~llmcheck.checks.schema.assert_schema`) they must validate; with
    ``args`` every given key must be present and equal (a subset match: other
    keys may be there; values compare as JSON, so ``1 == 1.0``). When the model
    called the tool several times, the first call that passes is returned; the
    message explains why each failed. Returns the :class:`ToolCall` (use
    ``.args()`` for the parsed arguments).

    Recorded as ``tool_call(get_weather)`` (plus ``schema=...``/``args=...``);
    ``value`` is the comma-separated names of the tools that were called.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    _check_arguments(name, args)
    compiled = compile_schema(args_schema) if args_schema is not None else None
    calls, prose = _calls(output)
    check_name = _check_name(name, compiled, args)
    called = ",".join(c.name for c in calls)[:200]

    matching = [c for c in calls if c.name == name]
    if not matching:
        conclude(check_name, False, _no_call_message(name, calls, prose), called)
        return None

    comparer = JsonComparer()
    reasons: list[str] = []
    for call in matching:
        reason = _rejection(call, compiled, args, comparer)
        if reason is None:
            conclude(check_name, True, value=called)
            return call
        reasons.append(reason)
    message = f"{name!r} was called, but not as expected:\n" + "\n".join(
        f"  - {r}" for r in reasons[:10])
    conclude(check_name, False, message, called)
    return None


def _check_arguments(name: Any, args: Any) -> None:
    """Reject a tool name that is not a non-empty str, or ``args`` that is not a mapping."""
    __tracebackhide__ = True
    if not isinstance(name, str) or not name:
        raise UsageError(f"assert_tool_call: name must be the tool's name (a non-empty str), "
                         f"got {name!r}")
    if args is not None and not isinstance(args, Mapping):
        raise UsageError(f"assert_tool_call: args must be a dict of expected argument values, "
                         f"got {short_repr(args)}")


def _check_name(name: str, compiled: CompiledSchema | None,
                args: Mapping[str, Any] | None) -> str:
    """``tool_call(get_weather)``, plus ``schema=...``/``args=...`` when given."""
    label = name
    if compiled is not None:
        label += f", schema={compiled.label}"
    if args:
        label += f", args={short_repr(dict(args), 60)}"
    return f"tool_call({label})"


def _no_call_message(name: str, calls: list[ToolCall], prose: str | None) -> str:
    """Why no call to ``name`` was found: no tool call at all (prose or nothing), or
    calls to other tools."""
    if calls:
        return (f"expected a call to {name!r}; the model called "
                + ", ".join(_describe(c) for c in calls[:10]))
    text = (prose or "").strip()
    if text:
        return (f"expected a call to {name!r}; the model made no tool call and answered in "
                f"prose: {excerpt(text)}")
    return f"expected a call to {name!r}; the model made no tool call and gave no text"


def _rejection(call: ToolCall, compiled: CompiledSchema | None,
               args: Mapping[str, Any] | None, comparer: JsonComparer) -> str | None:
    """Why ``call`` does not have acceptable arguments (``None`` when it does)."""
    __tracebackhide__ = True
    try:
        parsed = parse_json_text(call.arguments, allow_fence=False)
    except ValueError as exc:
        return f"{_describe(call)}: arguments are {exc}"
    if not isinstance(parsed, dict):
        return f"{_describe(call)}: arguments must be a JSON object, got {type(parsed).__name__}"
    problems = _argument_problems(call, parsed, compiled, args, comparer)
    if not problems:
        return None
    return f"{_describe(call)}:\n" + listing(problems).replace("  - ", "    - ")


def _argument_problems(call: ToolCall, parsed: dict[str, Any], compiled: CompiledSchema | None,
                       args: Mapping[str, Any] | None, comparer: JsonComparer) -> list[str]:
    """Schema violations, then expected arguments missing or different, as ``path: ...``."""
    __tracebackhide__ = True
    problems: list[str] = []
    if compiled is not None:
        _, violations = compiled.validate(Loaded(parsed, call.arguments, "as-is"))
        problems += violations
    for key, want in (args or {}).items():
        where = render_path((key,))
        if key not in parsed:
            problems.append(f"{where}: missing (expected {short_repr(want, 60)})")
        else:
            problems += [where + line[1:] for line in comparer.diff(want, parsed[key])]
    return problems
