"""The tool loop runner: call the model, run the tools it asks for, feed the results
back, until a final answer, ``max_steps`` or the episode's budget; the whole loop is
one :class:`~llmcheck.episodes.episode.Episode` (and, inside a test, one sample).

Every model call goes through the given :class:`~llmcheck.model.client.LLMClient`
(``llm.chat(messages, tools=[...])``): deadline, retries, the session's budget, the
cache, provider faults and the call records apply to each step as to any call. What
the tools do is the loop's own: a tool that raises, times out (``tool_timeout``), is
unknown, gets arguments that do not fit its signature, or gets an injected tool fault
(:mod:`llmcheck.episodes.faults`) becomes a ``role: tool`` message
``error: <type>: <message>`` that the model may react to, never a crash.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

import pydantic_core

from llmcheck.core.context import SampleContext, current_sample
from llmcheck.episodes.episode import Episode, Step, StopReason, ToolInvocation
from llmcheck.episodes.faults import ToolFaultPlan, garbage, tool_fault_plan
from llmcheck.episodes.tools import Tool, as_tools, check_timeout
from llmcheck.errors import UsageError
from llmcheck.model.client import LLMClient
from llmcheck.model.completion import Completion, chat_messages
from llmcheck.model.failures import short

__all__ = ["EpisodeBudget", "arun_tool_loop", "run_tool_loop"]

ERROR_LIMIT = 500
"""Characters of a tool error's message the model gets (redacted first)."""


@dataclass(frozen=True)
class EpisodeBudget:
    """Limits on one episode, checked before each model call; the loop stops
    (``budget_calls``, ``budget_tokens``, ``budget_cost``, ``budget_time``) once the
    episode has made ``calls`` model calls, used ``tokens`` tokens (prompt plus
    completion, as the provider reported them, over all its calls), cost ``cost``
    dollars (litellm's price of its calls; an unpriced call counts 0) or run ``seconds``
    wall seconds (model calls and tools alike). None: no limit."""

    calls: int | None = None
    tokens: int | None = None
    cost: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "tokens"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise UsageError(f"EpisodeBudget({name}={value!r}): give a whole number >= 1 "
                                 "or None")
        for name in ("cost", "seconds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))
                                      or not value > 0 or not math.isfinite(value)):
                raise UsageError(f"EpisodeBudget({name}={value!r}): give a number > 0 or "
                                 "None")


class _Loop:
    """One episode being built: what both the sync and the async loop do around their
    model calls and tool runs."""

    def __init__(self, prompt: Any, tools: Iterable[Any], *, max_steps: int,
                 budget: EpisodeBudget | None, state: Any,
                 tool_faults: str | ToolFaultPlan | None, tool_timeout: float | None,
                 params: dict[str, Any]) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise UsageError(f"run_tool_loop: max_steps={max_steps!r} must be a whole number "
                             ">= 1")
        if budget is not None and not isinstance(budget, EpisodeBudget):
            raise UsageError(f"run_tool_loop: budget={budget!r} must be an "
                             "llmcheck.EpisodeBudget(calls=, tokens=, cost=, seconds=) or None")
        if "tools" in params or "messages" in params:
            raise UsageError("run_tool_loop: pass the tools as its third argument (functions "
                             "or @llmcheck.tool objects), not as a model parameter")
        self.tools = as_tools(tools)
        self.schemas = [t.schema() for t in self.tools.values()]
        self.params = {**params, "tools": self.schemas} if self.schemas else dict(params)
        self.max_steps = max_steps
        self.budget = budget
        self.timeout = check_timeout(tool_timeout, "run_tool_loop: tool_timeout")
        self.sample: SampleContext | None = current_sample()
        self.plan = (tool_fault_plan(tool_faults) if tool_faults is not None
                     else getattr(self.sample, "tool_faults", None))
        self.key = self.sample.seed if self.sample is not None else 0
        self.episode = Episode(messages=chat_messages(prompt, "run_tool_loop"), state=state,
                               source="loop")
        self.cost = 0.0
        self.invocations = 0
        self.started = time.perf_counter()

    # -- before and after each model call -----------------------------------
    def stop_reason(self) -> StopReason | None:
        """Why the loop stops before its next model call, or None to go on."""
        steps, budget = len(self.episode.steps), self.budget
        if steps >= self.max_steps:
            return "max_steps"
        if budget is None:
            return None
        if budget.calls is not None and steps >= budget.calls:
            return "budget_calls"
        if budget.tokens is not None and (self.episode.usage.total_tokens or 0) >= budget.tokens:
            return "budget_tokens"
        if budget.cost is not None and self.cost >= budget.cost:
            return "budget_cost"
        if budget.seconds is not None and time.perf_counter() - self.started >= budget.seconds:
            return "budget_time"
        return None

    def messages(self) -> list[dict[str, Any]]:
        return list(self.episode.messages)  # a copy: the call's records keep what was sent

    def answered(self, completion: Completion) -> list[tuple[ToolInvocation, Tool | None, Any]]:
        """Take the model's answer as a step; the tool calls it asks for, each with its
        tool and validated arguments (or already settled: an unknown tool, arguments
        that do not fit, an injected fault)."""
        for earlier in self.episode.tool_calls:
            earlier.handled = True  # the model has had a turn after every earlier error
        self.cost += completion.cost or 0.0
        index = len(self.episode.steps) + 1  # 1-based, as every episode source counts
        step = Step(index=index, text=completion.text, completion=completion,
                    usage=completion.usage, latency=completion.latency)
        self.episode.steps.append(step)
        message: dict[str, Any] = {"role": "assistant", "content": completion.text or None}
        pending = []
        for n, call in enumerate(completion.tool_calls):
            inv = ToolInvocation(name=call.name, arguments=call.arguments,
                                 id=call.id or f"call_{index}_{n}", step=index)
            step.tool_calls.append(inv)
            pending.append(self._prepare(inv))
        if step.tool_calls:
            message["tool_calls"] = [{"id": inv.id, "type": "function", "function": {
                "name": inv.name, "arguments": inv.arguments}} for inv in step.tool_calls]
        self.episode.messages.append(message)
        return pending

    def _prepare(self, inv: ToolInvocation) -> tuple[ToolInvocation, Tool | None, Any]:
        number = self.invocations
        self.invocations += 1
        tool = self.tools.get(inv.name)
        if tool is None:
            known = ", ".join(self.tools) or "none"
            self._error(inv, "UnknownTool", f"no tool named {inv.name!r}; the tools are {known}")
            return inv, None, None
        try:
            inv.args, kwargs = tool.parse(inv.arguments)
        except ValueError as exc:
            self._error(inv, type(exc).__name__, str(exc))
            return inv, None, None
        kind = self.plan.draw_for(inv.name, self.key, number) if self.plan else None
        if kind is None:
            return inv, tool, kwargs
        inv.fault = kind
        if self.sample is not None:
            self.sample.note_fault(number, kind, "tool")
        if kind == "tool_error":
            self._error(inv, "RuntimeError", f"{inv.name} failed")
        elif kind == "tool_timeout":
            timeout = self.timeout_of(tool)
            self._error(inv, "ToolTimeout", f"{inv.name} did not return within {timeout:g} s"
                        if timeout else f"{inv.name} timed out")
        else:
            assert self.plan is not None
            inv.result = garbage(self.plan, self.key, number)
        return inv, None, None

    def timeout_of(self, tool: Tool) -> float | None:
        return tool.timeout if tool.timeout is not None else self.timeout

    def _error(self, inv: ToolInvocation, kind: str, message: str) -> None:
        inv.error = f"{kind}: {short(message, ERROR_LIMIT)}"
        inv.handled = False  # until the model gets a turn after it

    def ran(self, inv: ToolInvocation, started: float, result: Any = None,
            error: BaseException | None = None) -> None:
        inv.duration = time.perf_counter() - started
        if error is None:
            inv.result = result
        else:
            self._error(inv, type(error).__name__, str(error) or repr(error))

    def replied(self, step_calls: list[ToolInvocation]) -> None:
        """One ``role: tool`` message per call of the step, in order."""
        for inv in step_calls:
            content = None
            if inv.error is None:
                try:
                    content = _text(inv.result)
                except (TypeError, ValueError, RecursionError) as exc:  # e.g. a circular dict
                    self._error(inv, "ToolResultError", f"{inv.name} returned a value that "
                                f"cannot be sent to the model as JSON: {exc}")
            if content is None:
                content = f"error: {inv.error}"
            self.episode.messages.append({"role": "tool", "tool_call_id": inv.id,
                                          "content": content})

    def finish(self, reason: StopReason) -> Episode:
        """Close the episode and note it on the running sample (a no-op outside one)."""
        episode = self.episode
        episode.stop_reason = reason
        episode.duration = time.perf_counter() - self.started
        last = episode.steps[-1] if episode.steps else None
        episode.final_text = last.text if reason == "final_answer" and last else ""
        if self.sample is not None:
            from llmcheck.records.schema import EpisodeRecord

            self.sample.note_episode(EpisodeRecord(**episode.summary()))
            self.sample.record_duration("episode", episode.duration)
        return episode


def _text(result: Any) -> str:
    """A tool's result as the model reads it: a str as it is, anything else as JSON."""
    if isinstance(result, str):
        return result
    return json.dumps(pydantic_core.to_jsonable_python(result, fallback=repr),
                      ensure_ascii=False)


def _client(llm: Any, method: str) -> None:
    if not callable(getattr(llm, method, None)):
        raise UsageError(f"run_tool_loop: the first argument must be the llm client "
                         f"(llmcheck.LLMClient, the llm fixture), got {type(llm).__name__}")


def _episode(loop: _Loop) -> Generator[tuple[str, Any], Any, Episode]:
    """The loop itself, free of I/O: it yields ``("chat", messages)`` and
    ``("tool", (tool, kwargs))`` and is sent the answer or thrown the error, so the sync
    and the async runner drive the same steps."""
    try:
        while (reason := loop.stop_reason()) is None:
            pending = loop.answered((yield "chat", loop.messages()))
            if not pending:
                return loop.finish("final_answer")
            for inv, tool, kwargs in pending:
                if tool is None:
                    continue  # settled already: unknown, bad arguments, injected fault
                started = time.perf_counter()
                try:
                    result = yield "tool", (tool, kwargs)
                except Exception as exc:  # noqa: BLE001 - the model is told
                    loop.ran(inv, started, error=exc)
                else:
                    loop.ran(inv, started, result)
            loop.replied([inv for inv, _, _ in pending])
    except BaseException:
        loop.finish("error")
        raise
    return loop.finish(reason)


class _Sent:
    """What a runner hands back to :func:`_episode`: the answer to its last request, or the
    error that request raised."""

    value: Any = None
    error: BaseException | None = None

    def into(self, steps: Generator[tuple[str, Any], Any, Episode]) -> tuple[str, Any] | Episode:
        """Send it; the loop's next request, or the finished episode."""
        value, error, self.value, self.error = self.value, self.error, None, None
        try:
            return steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


def run_tool_loop(llm: LLMClient, prompt_or_messages: str | list[dict[str, Any]],
                  tools: Iterable[Any], *, max_steps: int = 10,
                  budget: EpisodeBudget | None = None, state: Any = None,
                  tool_faults: str | ToolFaultPlan | None = None,
                  tool_timeout: float | None = None, **params: Any) -> Episode:
    """Run a tool loop: call the model with ``tools`` (functions or ``@llmcheck.tool``
    objects), run every tool call of its answer in order, send the results back, and
    repeat until the model answers without a tool call (``final_answer``), it has made
    ``max_steps`` calls (``max_steps``; the tools of the last call still run) or the
    ``budget`` (:class:`EpisodeBudget`) is spent. Returns the :class:`Episode`.

    ``state`` is handed to every tool with a ``state`` parameter (the world the tools
    change; it ends on ``episode.state``). ``tool_faults`` (``"tool_error:0.2"`` or a
    plan) overrides the test's ``@llmcheck.tool_faults``; ``tool_timeout`` is the
    seconds a tool without its own timeout may take. ``params`` go to every model call
    (``temperature=...``). A model call that fails for good raises as any call does (the
    sample is an error), after the partial episode is noted on the sample. Async tools
    run in an event loop of their own: in async code use :func:`arun_tool_loop`.
    """
    _client(llm, "chat")
    loop = _Loop(prompt_or_messages, tools, max_steps=max_steps, budget=budget, state=state,
                 tool_faults=tool_faults, tool_timeout=tool_timeout, params=params)
    steps, sent = _episode(loop), _Sent()
    while not isinstance(request := sent.into(steps), Episode):
        kind, what = request
        try:
            sent.value = (llm.chat(what, **loop.params) if kind == "chat" else
                          what[0].invoke(what[1], state, loop.timeout_of(what[0])))
        except BaseException as exc:  # noqa: BLE001 - thrown into the loop, which decides
            sent.error = exc
    return request


async def arun_tool_loop(llm: LLMClient, prompt_or_messages: str | list[dict[str, Any]],
                         tools: Iterable[Any], *, max_steps: int = 10,
                         budget: EpisodeBudget | None = None, state: Any = None,
                         tool_faults: str | ToolFaultPlan | None = None,
                         tool_timeout: float | None = None, **params: Any) -> Episode:
    """Awaitable :func:`run_tool_loop`: model calls through ``llm.achat``, async tools
    awaited, sync tools in a worker thread (so the event loop is never blocked)."""
    _client(llm, "achat")
    loop = _Loop(prompt_or_messages, tools, max_steps=max_steps, budget=budget, state=state,
                 tool_faults=tool_faults, tool_timeout=tool_timeout, params=params)
    steps, sent = _episode(loop), _Sent()
    while not isinstance(request := sent.into(steps), Episode):
        kind, what = request
        try:
            sent.value = await (llm.achat(what, **loop.params) if kind == "chat" else
                                what[0].ainvoke(what[1], state, loop.timeout_of(what[0])))
        except BaseException as exc:  # noqa: BLE001 - thrown into the loop, which decides
            sent.error = exc
    return request
