"""One call's retry policy: which failures are retried, how long to wait (what the
provider asked in Retry-After, capped, or exponential backoff with full jitter),
and when to give up (the retries are spent, calls were stopped, or the next wait
would end past the call's retry budget)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tenacity

from llmcheck.model.deadline import calls_stopped
from llmcheck.model.failures import is_retryable, retry_after

if TYPE_CHECKING:
    from llmcheck.model.client import ModelConfig

MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is capped (and the call likely fails)


def attempts_of(attempt: Any) -> int:
    return attempt.retry_state.attempt_number if attempt is not None else 1


def _backoff(initial: float, attempt_number: int) -> float:
    """Exponential backoff from ``initial`` seconds, up to 30 s, with full jitter."""
    base = min(30.0, initial * 2 ** (attempt_number - 1))
    return base * random.uniform(0.5, 1.5)


def _secs(value: float) -> str:
    value = max(0.0, value)
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


class CallPolicy:
    """One call's tenacity policy: retryable errors only, ``retries`` extra attempts,
    waiting what the server asked (Retry-After, capped) or exponential backoff with
    jitter; no retry once calls are stopped or when the next wait would end past the
    ``retry_budget`` (``gave_up`` then says why). Counts the requests it lets start."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.started = time.monotonic()
        self.requests = 0
        self.gave_up: str | None = None
        self._delays: dict[int, tuple[float, float | None]] = {}

    def retrying(self, kind: Any, *, sleep: Callable[[float], Any]) -> Any:
        return kind(retry=tenacity.retry_if_exception(is_retryable), stop=self.stop,
                    wait=self.wait, sleep=sleep, reraise=True)

    def _delay(self, state: Any) -> tuple[float, float | None]:
        """(the wait before the next attempt, the Retry-After asked), once per attempt:
        tenacity asks ``stop`` and ``wait`` in an order that varies across versions."""
        n = state.attempt_number
        if n not in self._delays:
            exc = state.outcome.exception() if state.outcome is not None else None
            asked = retry_after(exc) if exc is not None else None
            wait = (min(asked, MAX_RETRY_AFTER) if asked is not None
                    else _backoff(self.config.backoff, n))
            self._delays[n] = (wait, asked)
        return self._delays[n]

    def wait(self, state: Any) -> float:
        return self._delay(state)[0]

    def stop(self, state: Any) -> bool:
        if state.attempt_number > self.config.retries or calls_stopped() is not None:
            return True
        wait, asked = self._delay(state)
        budget = self.config.retry_budget
        left = budget - (time.monotonic() - self.started)
        needed = asked if asked is not None else wait
        if needed <= left:
            return False
        what = (f"the provider asked to wait {asked:g} s (Retry-After)" if asked is not None
                else f"the next retry would wait {_secs(wait)} s (backoff)")
        self.gave_up = (f"gave up retrying: {what}, more than the {_secs(left)} s left of "
                        f"the {budget:g} s retry budget (--llm-retry-budget)")
        return True


