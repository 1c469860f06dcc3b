"""``@llmcheck.repeat``: mark a test as an LLM test that runs many times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from llmcheck.settings import validate_marker_kwargs

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
