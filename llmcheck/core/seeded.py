"""Bodies that pass at a known rate: a stand-in model for proving statistics through
the real :class:`~llmcheck.core.runner.SampleRunner` (llmcheck's tests and benchmarks).

A sample's outcome is drawn from its own seed, so a run is reproducible and does
not depend on which sample finishes first; the async body can take longer to fail
than to pass (timeouts, long wrong answers), which makes completion order differ
from index order under concurrency. Not part of the public API.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from llmcheck.core import context


def passes(seed: int, p: float) -> bool:
    """Whether the sample with this seed passes, for a model at rate ``p``."""
    return random.Random(seed).random() < p


def sync_body(p: float) -> Callable[[], None]:
    """A body that passes with probability ``p``, at once."""
    def body() -> None:
        assert passes(context.current_sample().seed, p)

    return body


def async_body(p: float, pass_delay: float, fail_delay: float) -> Callable[[], Awaitable[None]]:
    """An async body that passes with probability ``p`` after ``pass_delay`` seconds,
    or fails after ``fail_delay``."""
    async def body() -> None:
        ok = passes(context.current_sample().seed, p)
        await asyncio.sleep(pass_delay if ok else fail_delay)
        assert ok

    return body
