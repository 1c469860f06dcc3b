"""One seeded example per sample: :func:`draw` gives each sample of an
``@llmcheck.repeat`` test its own reproducible example of a strategy."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as _hypothesis_seed
from hypothesis import strategies as st

from llmcheck.errors import UsageError

# --------------------------------------------------------------------------- #
# One seeded example per sample
# --------------------------------------------------------------------------- #

_DRAW_SETTINGS = settings(
    max_examples=2,
    phases=[Phase.generate],
    database=None,
    deadline=None,
    derandomize=False,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def _mix(seed_value: int, counter: int) -> int:
    digest = hashlib.sha256(f"llmcheck.strategies:{seed_value}:{counter}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def draw(strategy: st.SearchStrategy[Any], *, seed: int | None = None) -> Any:
    """Draw one example of ``strategy``, reproducibly, from the running sample's seed.

    Inside an ``@llmcheck.repeat`` test each sample gets its own example (its seed is
    derived from the session seed, the test id and the sample index, so a rerun with
    the same ``--llm-seed`` sees the same inputs). Several draws in one sample get
    different examples (the n-th draw of a sample mixes n into the seed). Outside a
    sample pass ``seed=``.

    How: a tiny ``@given`` test run with ``@hypothesis.seed(...)``, two examples, only
    the generate phase and no example database, keeping the last example (hypothesis
    always tries the simplest example first). That is hypothesis's public API, so it
    emits no warning (unlike ``strategy.example()``, which warns and is not seeded),
    draws from exactly the same distribution as ``@given`` (no second, hand-written
    generator that could drift from the strategy), works for any strategy, and takes
    about a millisecond. It is not meant to be called inside a running ``@given``.
    """
    if seed is None:
        from llmcheck.core.context import current_sample

        ctx = current_sample()
        if ctx is None:
            raise UsageError("llmcheck.strategies.draw() outside a sample of an LLM test needs "
                             "seed=...; inside @llmcheck.repeat it uses the sample's seed")
        counter = getattr(ctx, "_strategy_draws", 0)
        ctx._strategy_draws = counter + 1  # type: ignore[attr-defined]
        mixed = _mix(ctx.seed, counter)
    else:
        mixed = _mix(seed, 0)

    drawn: list[Any] = []

    @_DRAW_SETTINGS
    @_hypothesis_seed(mixed)
    @given(strategy)
    def _one(value: Any) -> None:
        drawn.append(value)

    _one()
    return drawn[-1]
