"""What every model call gets, whichever way it is made: the one accounting path.

A model is called two ways in a session: by llmcheck's own client (the ``llm``
fixture, judges, embeddings) and by an app's own client through the session's
recording proxy (``llm_endpoint``). Both go through this module, and neither keeps
a copy of what it does:

- **admission**: :meth:`ModelSession.admit` holds a request to the session's limits
  before it is sent. ``--llm-max-calls`` counts every request that goes to the
  provider (a retry is a request; an answer from the replay cache, or a fault the
  proxy serves without asking the provider, is not); ``--llm-max-cost`` refuses new
  requests once the dollars spent reach it. A refused request is never sent, and
  the sample that made it is marked (:attr:`SampleContext.budget_refusal
  <llmcheck.core.context.SampleContext.budget_refusal>`): the runner records it as
  budget-stopped, never as an error or a failure;
- **pacing**: ``--llm-rpm`` spaces the requests to each model, across threads, event
  loops and both paths (:class:`RateLimiter`);
- **replay key**: :func:`replay_key` names a call for the replay cache the same way
  on both paths;
- **price**: :func:`price` in dollars, from litellm's bundled map ($0 for the
  simulator and local servers, ``None`` when unknown);
- **call record**: :func:`record_call` adds the one
  :class:`~llmcheck.records.schema.CallRecord` of a call to the sample that made it,
  its error text redacted, with the messages sent and the answer (kept only if the
  sample fails), and notes a usable answer for the fault blame
  (:meth:`~llmcheck.core.context.SampleContext.note_answer`).

Under pytest-xdist each worker holds an even share of ``--llm-max-calls``,
``--llm-max-cost`` and ``--llm-rpm`` (:func:`budget_split`, :func:`calls_split`);
there is no coordinator.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmcheck.core import context
from llmcheck.model.cache import ResponseCache, cache_key
from llmcheck.model.deadline import asleep, sleep
from llmcheck.model.provider import import_litellm
from llmcheck.redact import redact

if TYPE_CHECKING:
    from llmcheck.records.schema import CallRecord




class RateLimiter:
    """Spaces requests to at most ``rpm`` per minute (per model), across threads
    and event loops: each caller reserves the next free slot, then waits for it."""

    def __init__(self, rpm: float | None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def _reserve(self, model: str) -> float:
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(model, now))
            self._next[model] = slot + self.interval
            return slot - now

    def wait(self, model: str) -> None:
        delay = self._reserve(model)
        if delay > 0:
            sleep(delay)

    async def await_slot(self, model: str) -> None:
        delay = self._reserve(model)
        if delay > 0:
            await asleep(delay)


class Budget:
    """Session limits on requests and dollars. A request is admitted (and counted)
    before it is sent; once the limit is reached no request is admitted and no new
    sample starts."""

    def __init__(self, max_cost: float | None = None, max_calls: int | None = None) -> None:
        self.max_cost = max_cost
        self.max_calls = max_calls
        self.cost = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def admit(self) -> str | None:
        """Count one request about to be sent; or, past a limit, the reason it may not
        be (and nothing is counted)."""
        with self._lock:
            reason = self._spent()
            if reason is None:
                self.calls += 1
            return reason

    def spend(self, cost: float | None) -> None:
        """Add what an answered request cost (``None``: unknown, counted as 0)."""
        if cost:
            with self._lock:
                self.cost += cost

    def _spent(self) -> str | None:
        if self.max_calls is not None and self.calls >= self.max_calls:
            return f"--llm-max-calls={self.max_calls} reached ({self.calls} requests sent)"
        if self.max_cost is not None and self.cost >= self.max_cost:
            return f"--llm-max-cost={self.max_cost:g} reached (${self.cost:.4f} spent)"
        return None

    @property
    def exhausted(self) -> str | None:
        """Why the budget is spent, or ``None``."""
        with self._lock:
            return self._spent()


@dataclass
class ModelSession:
    """What every call of a session shares, whichever path it takes: pacing, budget,
    replay cache."""

    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(None))
    budget: Budget = field(default_factory=Budget)
    cache: ResponseCache | None = None

    def admit(self, ctx: context.SampleContext | None) -> str | None:
        """Admit one request to the provider, or say why the budget refuses it (and mark
        the sample that made it as budget-stopped)."""
        reason = self.budget.admit()
        if reason is not None and ctx is not None:
            ctx.refuse(reason)
        return reason

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def replay_key(model: str, messages: Any, params: dict[str, Any],
               ctx: context.SampleContext | None) -> str:
    """The replay-cache key of a call: what shapes the answer (the caller leaves out
    the derived per-sample seed, so a recording replays under any session seed), the
    sample, and which identical call of the sample this is (a judge asked three times
    replays three answers)."""
    if ctx is None:
        return cache_key(model, messages, params, -1)
    first = cache_key(model, messages, params, ctx.index)
    ordinal = ctx.count_call(first)
    return first if ordinal == 0 else cache_key(model, messages, params, ctx.index, ordinal)


def price(model: str, prompt_tokens: int | None, completion_tokens: int | None, *,
          free: bool = False) -> float | None:
    """Dollars for a call from litellm's bundled price map: 0.0 for a free model (the
    simulator, a local server), ``None`` when the tokens or the price are unknown."""
    if free:
        return 0.0
    if prompt_tokens is None and completion_tokens is None:
        return None
    try:
        prompt, completion = import_litellm().cost_per_token(
            model=model, prompt_tokens=prompt_tokens or 0,
            completion_tokens=completion_tokens or 0)
    except Exception:  # noqa: BLE001 - an unknown price is None, not an error
        return None
    return float(prompt + completion)


def record_call(ctx: context.SampleContext | None, *, model: str, latency: float,
                error: str | None = None, prompt_tokens: int | None = None,
                completion_tokens: int | None = None, cost: float | None = None,
                retries: int = 0, cached: bool = False,
                time_to_first_token: float | None = None, via: str | None = None,
                fault: str | None = None, params: dict[str, Any] | None = None,
                answered: int | None = None, usable: bool = True, messages: Any = None,
                answer: str | None = None, role: context.Role | None = None,
                tool_calls: tuple[tuple[str, str, str | None], ...] = (),
                chunks: int | None = None, max_gap: float | None = None
                ) -> CallRecord | None:
    """Add one call's record to the sample that made it (``None`` outside a sample).

    ``messages`` (what the request sent) and ``answer`` (the answer's text, None if none
    came) go with it, as they are: the runner keeps them, redacted and cut, only if the
    sample fails (:mod:`llmcheck.core.exchanges`); so do the answer's ``tool_calls``
    (``(name, arguments, id)`` each), which a recorded episode is rebuilt from.
    ``error`` is redacted here (a provider may echo the request, key included). A call
    without an error that was not damaged by a fault (``usable``) is noted as an
    answer the app could use, for request ``answered`` (the proxy knows its request
    number; llmcheck's client passes ``None``: its last request).

    ``role`` says who made the call (``app``, ``user``, ``judge``); None: the role of the
    :func:`~llmcheck.core.context.call_role` block the call was made in (the proxy, which
    runs in its own thread, passes the role its request named). A user's or judge's call
    that took no fault-call number notes no answer: the answers blame the app's faults.

    A streamed call passes its ``chunks`` and ``max_gap``; the first streamed app call of
    a sample that got tokens from the model (not from the replay cache: a replay is no
    evidence of speed) gives the sample its ``ttft`` duration, what a latency
    requirement on time to first token judges."""
    if ctx is None:
        return None
    from llmcheck.records.schema import CallRecord

    if role is None:
        role, numbered = context.current_role()
    else:
        numbered = role == "app" or (answered is not None and answered >= 0)

    record = CallRecord(
        model=model, latency=latency, prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens, cost=cost, retries=retries, cached=cached,
        time_to_first_token=time_to_first_token,
        error=None if error is None else redact(error), via=via, fault=fault,
        params=params or {}, role=role, chunks=chunks, max_gap=max_gap)
    ctx.add_call(record, messages, answer, tool_calls)
    if (chunks and time_to_first_token is not None and error is None and not cached
            and role == "app"):
        ctx.record_duration("ttft", time_to_first_token, first=True)
    if error is None and usable and numbered:
        ctx.note_answer(answered)
    return record


def budget_split(value: float | None, workers: int) -> float | None:
    """A per-worker share of a session limit (pytest-xdist splits limits evenly)."""
    if value is None or workers <= 1:
        return value
    return value / workers


def calls_split(value: int | None, workers: int) -> int | None:
    """A per-worker share of ``--llm-max-calls``: the floor of an even split, at least 1."""
    if value is None or workers <= 1:
        return value
    return max(1, math.floor(value / workers))
