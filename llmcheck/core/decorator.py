"""``@llmcheck.repeat`` and ``@llmcheck.faults``: mark a test as an LLM test that runs many
times, and inject provider faults into its samples.

Both spell out their keywords, so editors complete them and type checkers reject a
misspelt one; both return the test function itself (marked), so the decorated test
keeps its type. At run time a bad value or keyword still fails with llmcheck's own
message naming it and what is accepted (also for untyped callers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmcheck.config.settings import validate_marker_kwargs
from llmcheck.errors import UsageError

if TYPE_CHECKING:
    from llmcheck.config.names import IntervalMethod, PolicyName

F = TypeVar("F", bound=Callable[..., Any])
"""The decorated test function: returned as it came, marked."""


@overload
def repeat(runs: F, /) -> F: ...
@overload
def repeat(
    runs: int | None = None,
    *,
    min_pass_rate: float | None = None,
    confidence: float | None = None,
    concurrency: int | None = None,
    verdict: PolicyName | None = None,
    margin: float | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    interval: IntervalMethod | None = None,
    early_stop: bool | None = None,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Callable[[F], F]: ...


def repeat(runs: Any = None, **options: Any) -> Any:
    """Run the decorated test many times and judge it by its pass rate.

    Equivalent to ``@pytest.mark.llm(...)`` with the same keywords; ``None`` (the
    default of each) means "not set here": the session's setting applies
    (``--llm-*`` option, ``LLMCHECK_*`` variable, ini key, then the default).

    - ``runs``: samples to run. ``--llm-runs`` on the command line overrides it. By
      default, the design's N: the smallest fixed test that tells
      ``min_pass_rate - margin`` from ``min_pass_rate + margin`` at ``alpha`` and
      ``beta`` (93 at the defaults); the sequential policy usually stops sooner.
    - ``min_pass_rate``: the required pass rate (default 0.9).
    - ``confidence``: confidence level of the interval (default 0.95).
    - ``concurrency``: samples in flight at once (default 4).
    - ``verdict``: ``"sequential"`` (default), ``"threshold"`` or ``"interval"``;
      ``margin``, ``alpha``, ``beta`` (default 0.05 each) tune the sequential test.
    - ``interval``: ``"wilson"`` (default) or ``"clopper-pearson"``.
    - ``early_stop``: stop launching samples once the verdict is settled (default true).
    - ``model``, ``temperature``, ``max_tokens``: this test's model and call parameters.

    Values are checked here, so a bad one fails at import with a message that
    names it. Usable bare (``@llmcheck.repeat``) or called.
    """
    __tracebackhide__ = True  # a bad value points at the decorated test, not at llmcheck
    if callable(runs) and not options:
        return repeat()(runs)
    kwargs = validate_marker_kwargs({"runs": runs, **options}, "@llmcheck.repeat")

    def decorate(fn: F) -> F:
        import pytest  # lazily: the library does not need pytest until a test is marked

        return pytest.mark.llm(**kwargs)(fn)

    return decorate


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
    from llmcheck.injection.catalogue import FaultPlan

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
