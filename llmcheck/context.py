"""The current sample: which run of a test is executing, and what it recorded.

The runner sets a :class:`SampleContext` in a context variable around each
sample (threads get a copied context, async samples their own task context),
so that code deep inside the test body (checks, the model client) can record
what happened without being handed anything. Outside a sample,
:func:`current_sample` returns ``None`` and recording is a no-op.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

_current: contextvars.ContextVar[SampleContext | None] = contextvars.ContextVar(
    "llmcheck_current_sample", default=None
)


@dataclass
class SampleContext:
    """What one sample is and what it has recorded so far."""

    index: int
    """0-based index of the sample within its test."""
    seed: int
    """Seed derived from the session seed, the test id and the index."""
    test_id: str = ""
    checks: list[Any] = field(default_factory=list)
    """Check results recorded by ``llmcheck.assert_*`` during the sample."""
    calls: list[Any] = field(default_factory=list)
    """Model calls recorded by the model client during the sample."""
    extra: dict[str, Any] = field(default_factory=dict)


def current_sample() -> SampleContext | None:
    """The sample being run in this thread or task, or ``None`` outside one."""
    return _current.get()


def _set(ctx: SampleContext | None) -> contextvars.Token:
    return _current.set(ctx)


def _reset(token: contextvars.Token) -> None:
    _current.reset(token)
