"""Tool faults: a tool raises, times out, or returns garbage, at a seeded rate.

Provider faults (``@llmcheck.faults``) test the code around a model call; tool faults
test what an agent does when its own tools misbehave. They share the fault catalogue's
plan (:class:`~llmcheck.injection.catalogue.FaultPlan`: its ``KIND:RATE`` parsing and
its seeded draw) with their own kinds, :data:`~llmcheck.config.faults.TOOL_FAULT_KINDS`:

- ``tool_error``: the tool raises instead of running;
- ``tool_timeout``: the call is reported as timed out (no time is spent waiting);
- ``tool_garbage``: the tool does not run; the model gets garbage text as its result
  (cut-off JSON, an HTML error page, or random bytes).

Which invocation gets which fault is a function of the plan's seed, the sample's seed
(so of ``--llm-seed``) and the invocation's number in the episode: never of timing or
thread order. Each injected fault is recorded on the sample as a ``FaultRecord`` with
``via="tool"``, so reports count tool faults per kind beside provider faults. A tool
fault is never marked recovered: the point is to see how the app fares under it.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

from llmcheck.config.faults import TOOL_FAULT_KINDS
from llmcheck.errors import UsageError
from llmcheck.injection.catalogue import FaultPlan

__all__ = ["TOOL_FAULT_KINDS", "ToolFaultPlan", "garbage", "tool_fault_plan", "tool_faults"]

F = TypeVar("F", bound=Callable[..., Any])

GARBAGE_FORMS = 3
"""How many kinds of garbage a ``tool_garbage`` fault chooses from."""


@dataclass(frozen=True)
class ToolFaultPlan(FaultPlan):
    """Rates of tool faults per tool invocation, a seed, and the tools they apply to
    (``tools=None``: every tool)."""

    KINDS: ClassVar[Any] = TOOL_FAULT_KINDS

    tools: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        tools = self.tools
        if tools is not None:
            if isinstance(tools, str) or not isinstance(tools, Iterable) \
                    or not all(isinstance(t, str) and t for t in tools):
                raise UsageError(f"tool faults: tools={tools!r} must be a list of tool names "
                                 "(or None for every tool)")
            object.__setattr__(self, "tools", tuple(tools))

    def draw_for(self, tool: str, key: Any, invocation: int) -> str | None:
        """The fault of invocation number ``invocation`` of the episode (a call of
        ``tool``) in the sample whose seed is ``key``, or None."""
        if self.tools is not None and tool not in self.tools:
            return None
        return self.draw(("tool", key), invocation)

    def __repr__(self) -> str:
        only = "" if self.tools is None else f", tools={list(self.tools)}"
        return f"ToolFaultPlan({self.spec() or 'none'}, seed={self.seed}{only})"


def tool_fault_plan(spec: str | ToolFaultPlan | None = None, *, seed: int | None = None,
                    tools: Iterable[str] | None = None,
                    **rates: float) -> ToolFaultPlan | None:
    """A tool fault plan from ``"tool_error:0.2,tool_garbage:0.1"`` or from
    ``tool_error=0.2`` keywords (not both); None when it injects nothing."""
    if isinstance(spec, ToolFaultPlan) and seed is None and tools is None and not rates:
        return spec or None
    if isinstance(spec, FaultPlan):
        raise UsageError(f"tool faults: {spec!r} is a provider fault plan; give tool faults "
                         "as 'tool_error:0.2' or llmcheck tool_faults keywords")
    if spec is not None and not isinstance(spec, str):
        raise UsageError(f"tool faults must be written like 'tool_error:0.2,tool_garbage:0.1',"
                         f" got {spec!r}")
    plan = ToolFaultPlan.build(spec, seed=0 if seed is None else seed, **rates)
    assert isinstance(plan, ToolFaultPlan)
    if tools is not None:
        plan = dataclasses.replace(plan, tools=cast(Any, tools))  # checked by the plan
    return plan or None


def tool_faults(spec: str | None = None, /, *, seed: int | None = None,
                tools: Iterable[str] | None = None, tool_error: float = 0.0,
                tool_timeout: float = 0.0, tool_garbage: float = 0.0) -> Callable[[F], F]:
    """Inject tool faults into the tool loops of a test's samples.

    ``@llmcheck.tool_faults("tool_error:0.2,tool_garbage:0.1")`` or
    ``@llmcheck.tool_faults(tool_error=0.2, tools=["get_weather"])``; composes with
    ``@llmcheck.repeat``. Each rate is the chance that one tool invocation gets that
    fault; which one gets which is a function of ``seed``, the sample's seed and the
    invocation's number in the episode, so ``--llm-seed`` reproduces a run. ``tools``
    limits the faults to the tools of those names. ``run_tool_loop(tool_faults=...)``
    overrides it for one loop.
    """
    __tracebackhide__ = True
    if callable(spec):
        raise UsageError("@llmcheck.tool_faults needs rates, e.g. "
                         "@llmcheck.tool_faults(tool_error=0.2)")
    rates = {k: v for k, v in (("tool_error", tool_error), ("tool_timeout", tool_timeout),
                               ("tool_garbage", tool_garbage)) if v}
    try:
        plan = tool_fault_plan(spec, seed=seed, tools=tools, **rates)
    except UsageError as exc:
        raise UsageError(f"@llmcheck.tool_faults: {exc}") from None

    def decorate(fn: F) -> F:
        import pytest

        marked: F = pytest.mark.llm_tool_faults(plan)(fn)
        return marked

    return decorate


def garbage(plan: FaultPlan, key: Any, invocation: int) -> str:
    """The garbage a ``tool_garbage`` fault returns instead of the tool's result: cut-off
    JSON, an HTML error page, or random bytes read as text; chosen and filled from the
    plan's seed, ``key`` and ``invocation``, so a seeded run repeats it."""
    form = plan.variant(("tool", key), invocation, GARBAGE_FORMS)
    if form == 0:
        return '{"status": "ok", "data": {"items": [{"id": 1, "value": "4'
    if form == 1:
        return ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 "
                "Bad Gateway</h1></center><hr><center>nginx</center></body></html>")
    rng = random.Random(plan.variant(("tool-bytes", key), invocation, 2 ** 32))
    return bytes(rng.randrange(256) for _ in range(48)).decode("latin-1")
