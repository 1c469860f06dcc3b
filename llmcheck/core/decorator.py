"""``@llmcheck.repeat`` and ``@llmcheck.faults``: mark a test as an LLM test that runs many
times, and inject provider faults into its samples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from llmcheck.config.settings import validate_marker_kwargs
from llmcheck.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def repeat(
    runs: int | Callable[..., Any] | None = None,
    min_pass_rate: float | None = None,
    confidence: float | None = None,
    **options: Any,
) -> Any:
    """Run the decorated test many times and judge it by its pass rate.

    Equivalent to ``@pytest.mark.llm(...)`` with the same keywords:

    - ``runs``: samples to run (``--llm-runs`` on the command line overrides it;
      default 10, or the sequential policy's fixed-sample size);
    - ``min_pass_rate``: required pass rate (default ``--llm-min-pass-rate``, 0.9);
    - ``confidence``: confidence level of the interval (default 0.95);
    - ``concurrency``, ``verdict`` (``threshold``, ``sequential``, ``interval``),
      ``margin``, ``alpha``, ``beta``, ``interval`` (``wilson`` or
      ``clopper-pearson``), ``early_stop``.

    Values are checked here, so a bad one fails at import with a message that
    names it. Usable bare (``@llmcheck.repeat``) or called.
    """
    __tracebackhide__ = True  # a bad value points at the decorated test, not at llmcheck
    if callable(runs) and min_pass_rate is None and confidence is None and not options:
        return repeat()(runs)
    kwargs = validate_marker_kwargs(
        {"runs": runs, "min_pass_rate": min_pass_rate, "confidence": confidence, **options},
        "@llmcheck.repeat",
    )

    def decorate(fn: F) -> F:
        import pytest  # lazily: the library does not need pytest until a test is marked

        return pytest.mark.llm(**kwargs)(fn)

    return decorate


def faults(spec: str | None = None, *, seed: int = 0, retry_after: float = 1.0,
           slow_s: float = 2.0, timeout_s: float = 600.0, **rates: float) -> Any:
    """Inject provider faults into every model request the test's samples make.

    ``@llmcheck.faults(rate_limit=0.3, timeout=0.1, seed=1)`` or
    ``@llmcheck.faults("rate_limit:0.3,timeout:0.1")``; composes with
    ``@llmcheck.repeat`` (in either order). Each rate is the chance that one request
    gets that fault (the kinds are :data:`llmcheck.injection.KINDS`); which request
    gets which fault is a function of ``seed``, the sample's seed and the request's
    number in the sample, so ``--llm-seed`` reproduces a run. ``retry_after`` is a
    rate limit's Retry-After, ``slow_s`` the latency a ``slow`` fault adds and
    ``timeout_s`` how long the proxy holds a ``timeout`` before dropping it.

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
