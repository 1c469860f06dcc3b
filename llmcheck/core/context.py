"""The current sample: which run of a test is executing, and what it recorded.

The runner sets a :class:`SampleContext` in a context variable around each
sample (threads get a copied context, async samples their own task context),
so that code deep inside the test body (checks, the model client, the
``llm_sample`` fixture) can read and record what happened without being
handed anything. Outside a sample, :func:`current_sample` returns ``None``
and recording is a no-op.

This is the one view of "the current sample": the ``llm_sample`` fixture is a
late-binding handle (:class:`CurrentSample`) onto it, because a fixture is set
up once per item while the item's samples run many times, possibly at once.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import random
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from llmcheck.errors import UsageError

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
    runs: int = 1
    """Samples planned for the test."""
    test_id: str = ""
    checks: list[Any] = field(default_factory=list)
    """Check results recorded by ``llmcheck.assert_*`` during the sample."""
    calls: list[Any] = field(default_factory=list)
    """Model calls recorded by the model client during the sample."""
    call_counts: dict[str, int] = field(default_factory=dict)
    """How often each request (by cache key) was made in this sample, so that the
    n-th identical call replays the n-th recorded answer."""
    fault_plan: Any = None
    """The :class:`~llmcheck.injection.catalogue.FaultPlan` of this sample (the test's
    ``@llmcheck.faults``, ``--llm-faults``, or the ``llm_faults`` fixture), or None."""
    tool_faults: Any = None
    """The tool fault plan of this sample's tool loops (``@llmcheck.tool_faults``), or
    None; see :mod:`llmcheck.episodes.faults`."""
    faults: list[Any] = field(default_factory=list)
    """Faults injected into this sample's calls (:class:`~llmcheck.records.schema.FaultRecord`)."""
    provider_failures: list[str] = field(default_factory=list)
    """Real (not injected) provider failures the proxy saw in this sample."""
    answers: list[int] = field(default_factory=list)
    """Numbers of the requests of this sample that got a usable answer (see
    :meth:`note_answer`): a fault followed by one was recovered from."""
    exchanges: list[Any] = field(default_factory=list)
    """What each call sent and got back (:class:`~llmcheck.core.exchanges.Exchange`): the
    runner keeps them in the record only if the sample fails or errors."""
    budget_refusal: str | None = None
    """Why the session's budget refused a request of this sample (it was not sent),
    or None. Such a sample is budget-stopped: not evidence about the model."""
    episode: Any = None
    """What the sample's episode did (:class:`~llmcheck.records.schema.EpisodeRecord`), set
    by the tool loop, a conversation or a rebuilt app loop (the last one set is kept)."""
    durations: dict[str, float] = field(default_factory=dict)
    """Named durations of the sample in seconds (``ttft``, ``episode``, or a test's own,
    see :meth:`record_duration`); the runner adds ``total``. Latency requirements judge
    them."""
    _fault_calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _token: str | None = None

    def next_fault(self) -> tuple[int, str | None]:
        """Number the next model request of this sample and draw its fault from the
        sample's plan: ``(call number, kind or None)``. Deterministic for a plan, a
        sample seed and a call number."""
        with self._lock:
            call = self._fault_calls
            self._fault_calls += 1
        plan = self.fault_plan
        return call, (plan.draw(self.seed, call) if plan else None)

    def note_fault(self, call: int, kind: str, via: str) -> None:
        """Record that ``kind`` was injected into call ``call`` (``via`` in-process or
        proxy)."""
        from llmcheck.records.schema import FaultRecord

        with self._lock:
            self.faults.append(FaultRecord(call=call, kind=kind, via=via))

    def note_provider_failure(self, message: str) -> None:
        with self._lock:
            self.provider_failures.append(message)

    def note_answer(self, call: int | None = None) -> None:
        """Request ``call`` got an answer the code could use. ``None``: the newest
        numbered request (llmcheck's client, whose last attempt it is). Requests are
        numbered only while fault injection is on; before that, nothing is noted (no
        fault can need recovering from)."""
        with self._lock:
            if call is None:
                if self._fault_calls == 0:
                    return
                call = self._fault_calls - 1
            self.answers.append(call)

    def add_call(self, record: Any, messages: Any = None, answer: str | None = None,
                 tool_calls: tuple[tuple[str, str, str | None], ...] = ()) -> None:
        """Add a call's record, and what it sent (``messages``) and got back (``answer``,
        None: no answer; ``tool_calls``: the answer's, as ``(name, arguments, id)``),
        numbered by its place in :attr:`calls`: calls of one sample may finish at once
        (an app's concurrent requests through the proxy)."""
        from llmcheck.core.exchanges import Exchange

        with self._lock:
            self.calls.append(record)
            if messages is not None or answer is not None:
                self.exchanges.append(Exchange(len(self.calls) - 1, record.via, messages,
                                               answer, getattr(record, "role", "app"),
                                               tuple(tool_calls)))

    def record_duration(self, name: str, seconds: float, *, first: bool = False) -> None:
        """Record the duration ``name`` of this sample (``first``: keep an earlier value,
        e.g. the time to first token of the sample's first stream)."""
        with self._lock:
            if not (first and name in self.durations):
                self.durations[name] = float(seconds)

    def note_episode(self, record: Any) -> None:
        """Keep what the sample's episode did (an EpisodeRecord) in its record."""
        with self._lock:
            self.episode = record

    def refuse(self, reason: str) -> None:
        """The session's budget refused a request of this sample (the first reason is
        kept)."""
        with self._lock:
            if self.budget_refusal is None:
                self.budget_refusal = reason

    def count_call(self, key: str) -> int:
        """How many identical calls (by replay key) this sample made before this one."""
        with self._lock:
            ordinal = self.call_counts.get(key, 0)
            self.call_counts[key] = ordinal + 1
            return ordinal

    @property
    def token(self) -> str:
        """A name for this sample that travels over HTTP (the proxy's attribution):
        registered while the sample runs, see :func:`sample_by_token`."""
        with self._lock:
            if self._token is None:
                self._token = f"s{next(_tokens)}-{self.seed & 0xFFFFFFFF:08x}"
                _live[self._token] = self
            return self._token

    @property
    def rng(self) -> random.Random:
        """A fresh ``random.Random`` seeded for this sample (safe to use in any thread)."""
        return random.Random(self.seed)


_tokens = itertools.count(1)
_live: weakref.WeakValueDictionary[str, SampleContext] = weakref.WeakValueDictionary()


def sample_by_token(token: str) -> SampleContext | None:
    """The running (or recently run) sample a token names, or None."""
    return _live.get(token)


Role = Literal["app", "user", "judge"]
CALL_ROLES: tuple[Role, ...] = ("app", "user", "judge")
"""Who makes a model call: the app under test, a simulated user, or a judge."""
_role: contextvars.ContextVar[tuple[Role, bool]] = contextvars.ContextVar(
    "llmcheck_call_role", default=("app", True))


@contextlib.contextmanager
def call_role(role: Role, *, faults: bool = False) -> Iterator[None]:
    """Model calls made inside the block are ``role``'s (recorded as ``CallRecord.role``).

    A simulated user's or a judge's calls are counted, cached and budgeted like the app's,
    but get no injected fault and take no fault-call number unless ``faults`` (so the
    app's own fault sequence is the same with or without them)."""
    if role not in CALL_ROLES:
        raise UsageError(f"call_role: role must be one of {', '.join(CALL_ROLES)}, got "
                         f"{role!r}")
    token = _role.set((role, role == "app" or bool(faults)))
    try:
        yield
    finally:
        _role.reset(token)


def current_role() -> tuple[Role, bool]:
    """``(role, injected)`` of a call made now: who makes it, and whether faults apply."""
    return _role.get()


def current_sample() -> SampleContext | None:
    """The sample being run in this thread or task, or ``None`` outside one."""
    return _current.get()


class CurrentSample:
    """A handle that reads the running sample at the moment it is used
    (what the ``llm_sample`` fixture returns): ``.index``, ``.seed``, ``.runs``,
    ``.rng`` are those of whichever sample is running in this thread or task."""

    _FIELDS = ("index", "seed", "runs", "rng", "test_id")

    def _context(self) -> SampleContext:
        ctx = current_sample()
        if ctx is None:
            raise UsageError(
                "llm_sample is only available while a sample of an LLM test runs; mark the "
                "test with @llmcheck.repeat(...) or @pytest.mark.llm(...) and use it in the "
                "test body"
            )
        return ctx

    def __getattr__(self, name: str) -> Any:
        if name not in self._FIELDS:
            raise AttributeError(f"llm_sample has no attribute {name!r}; it has "
                                 + ", ".join(self._FIELDS))
        return getattr(self._context(), name)

    def __repr__(self) -> str:
        ctx = current_sample()
        if ctx is None:
            return "<llm_sample: outside a sample>"
        return f"<llm_sample index={ctx.index} seed={ctx.seed} runs={ctx.runs}>"


def _set(ctx: SampleContext | None) -> contextvars.Token:
    return _current.set(ctx)


def _reset(token: contextvars.Token) -> None:
    _current.reset(token)
