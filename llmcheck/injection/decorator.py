"""``@llmcheck.faults``: inject provider faults into every model request of a test's
samples. It spells out its keywords (the fault kinds among them), so type checkers
reject a misspelt one, and returns the test function itself, marked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from llmcheck.errors import UsageError
from llmcheck.injection.catalogue import FaultPlan

F = TypeVar("F", bound=Callable[..., Any])
"""The decorated test function: returned as it came, marked."""


@overload
def faults(
    spec: str,
    /,
    *,
    seed: int = 0,
    retry_after: float = 1.0,
    slow_s: float = 2.0,
    timeout_s: float | None = None,
) -> Callable[[F], F]: ...
@overload
def faults(
    *,
    seed: int = 0,
    retry_after: float = 1.0,
    slow_s: float = 2.0,
    timeout_s: float | None = None,
    rate_limit: float = 0.0,
    timeout: float = 0.0,
    connection_error: float = 0.0,
    server_error: float = 0.0,
    malformed_json: float = 0.0,
    truncated: float = 0.0,
    empty: float = 0.0,
    refusal: float = 0.0,
    wrong_schema: float = 0.0,
    slow: float = 0.0,
    stream_cut: float = 0.0,
    bad_tool_call: float = 0.0,
) -> Callable[[F], F]: ...


def faults(spec: Any = None, *, seed: int = 0, retry_after: float = 1.0,
           slow_s: float = 2.0, timeout_s: float | None = None, **rates: float) -> Any:
    """Inject provider faults into every model request the test's samples make.

    ``@llmcheck.faults(rate_limit=0.3, timeout=0.1, seed=1)`` or
    ``@llmcheck.faults("rate_limit:0.3,timeout:0.1")`` (a spec or rates, not both; a
    kind not given has rate 0); composes with
    ``@llmcheck.repeat`` (in either order). Each rate is the chance that one request
    gets that fault (the kinds are :data:`llmcheck.injection.KINDS`); which request
    gets which fault is a function of ``seed``, the sample's seed and the request's
    number in the sample, so ``--llm-seed`` reproduces a run. ``retry_after`` is a
    rate limit's Retry-After, ``slow_s`` the latency a ``slow`` fault adds and
    ``timeout_s`` how long the proxy holds a ``timeout`` before answering 504 (default:
    ``--llm-timeout``).

    The faults reach every httpx request to a ``/chat/completions`` endpoint made in
    the sample (litellm, the openai SDK, LangChain...; see
    :mod:`llmcheck.injection.inprocess`) and the calls that come through
    ``llm_endpoint.base_url``. A test's own plan wins over ``--llm-faults``.
    """
    __tracebackhide__ = True
    if callable(spec):
        raise UsageError("@llmcheck.faults needs rates, e.g. "
                         "@llmcheck.faults(rate_limit=0.3, timeout=0.1)")
    try:
        plan = FaultPlan.build(spec, seed=seed, retry_after=retry_after, slow_s=slow_s,
                               timeout_s=timeout_s, **rates)
    except UsageError as exc:
        raise UsageError(f"@llmcheck.faults: {exc}") from None

    def decorate(fn: F) -> F:
        import pytest

        return pytest.mark.llm_faults(plan)(fn)

    return decorate
