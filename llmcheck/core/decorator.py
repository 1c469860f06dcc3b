"""``@llmcheck.repeat``: mark a test as an LLM test that runs many times
(``@llmcheck.faults`` is :mod:`llmcheck.injection.decorator`).

It spells out its keywords, so editors complete them and type checkers reject a
misspelt one; it returns the test function itself (marked), so the decorated test
keeps its type. At run time a bad value or keyword still fails with llmcheck's own
message naming it and what is accepted (also for untyped callers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from llmcheck.config.settings import validate_marker_kwargs

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
    latency: str | Sequence[str] | None = None,
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
    - ``latency``: latency requirements, e.g. ``"p95 ttft <= 1.5s"`` or a list of them:
      a quantile of a per-sample duration (``total``, ``ttft``, ``episode`` or a name the
      test records with :func:`llmcheck.record_duration`) at most a limit, each judged
      with its own exact verdict (see docs/latency.md).

    Values are checked here, so a bad one fails at import with a message that
    names it. Usable bare (``@llmcheck.repeat``) or called.
    """
    __tracebackhide__ = True  # a bad value points at the decorated test, not at llmcheck
    if callable(runs) and not options:
        return repeat()(runs)
    kwargs = validate_marker_kwargs({"runs": runs, **options}, "@llmcheck.repeat")
    if "latency" in kwargs:  # the mark keeps the strings as written (resolved per test)
        kwargs["latency"] = options["latency"]

    def decorate(fn: F) -> F:
        import pytest  # lazily: the library does not need pytest until a test is marked

        return pytest.mark.llm(**kwargs)(fn)

    return decorate
