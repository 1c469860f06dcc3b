"""Which fault plan applies to a request, and which sample a request belongs to.

Inside a sample (the runner sets :func:`llmcheck.core.context.current_sample`) the
sample's own plan applies and the sample numbers its requests, so a fault is
a function of (plan seed, sample seed, call number). Outside a sample, a plan
made active with :func:`active` applies, numbered by its own counter.

Requests to an llmcheck proxy in this process are not injected here (the proxy
injects them, once); they carry :data:`SAMPLE_HEADER` naming the sample, which
is how the proxy attributes calls of clients built before the sample started.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from llmcheck.core import context
from llmcheck.injection.catalogue import FaultPlan

ROLE_HEADER = "X-Llmcheck-Role"
"""Names who makes a request to a proxy when it is not the app (``user``, ``judge``;
``user; faults`` when faults apply to it): the proxy records the role and draws no fault."""

SAMPLE_HEADER = "X-Llmcheck-Sample"
"""Names the sample (its :attr:`~llmcheck.core.context.SampleContext.token`) on a request to
a proxy; also accepted as ``/s/<token>/v1/...`` in the proxy's URL path."""

_proxies: set[str] = set()
_proxies_lock = threading.Lock()


def register_proxy(netloc: str) -> None:
    """Mark ``host:port`` as an llmcheck proxy of this process (see module doc)."""
    with _proxies_lock:
        _proxies.add(netloc)


def unregister_proxy(netloc: str) -> None:
    with _proxies_lock:
        _proxies.discard(netloc)


def is_proxy(netloc: str) -> bool:
    return netloc in _proxies


@dataclass
class _Global:
    plan: FaultPlan
    counter: Any
    faults: list[tuple[int, str]]


_global: contextvars.ContextVar[_Global | None] = contextvars.ContextVar(
    "llmcheck_global_faults", default=None)


@contextlib.contextmanager
def active(plan: FaultPlan) -> Iterator[list[tuple[int, str]]]:
    """Inject ``plan`` into requests made outside any sample while the block runs (a
    script, a notebook); yields the list of ``(call number, kind)`` injected."""
    state = _Global(plan, itertools.count(), [])
    token = _global.set(state)
    try:
        yield state.faults
    finally:
        _global.reset(token)


@dataclass(frozen=True)
class Draw:
    """The fault decision of one request."""

    call: int
    kind: str | None
    plan: FaultPlan
    key: Any
    sample: context.SampleContext | None

    def note(self, via: str) -> None:
        """Record the injected fault where it belongs (the sample, or the active block)."""
        if self.kind is None:
            return
        if self.sample is not None:
            self.sample.note_fault(self.call, self.kind, via)
        else:
            state = _global.get()
            if state is not None:
                state.faults.append((self.call, self.kind))


def role_header() -> str | None:
    """The :data:`ROLE_HEADER` value of a request made now (None for the app's)."""
    role, injected = context.current_role()
    return None if role == "app" else role + ("; faults" if injected else "")


def read_role_header(value: str | None) -> tuple[context.Role, bool]:
    """``(role, injected)`` from a :data:`ROLE_HEADER` value (no header: the app's)."""
    name, _, rest = (value or "app").partition(";")
    for role in context.CALL_ROLES:
        if role == name.strip().lower():
            return role, role == "app" or rest.strip().lower() == "faults"
    return "app", True


def draw_current() -> Draw | None:
    """The fault decision for a request made now, or None when no plan applies (the
    fast path: no numbering, nothing recorded). A simulated user's or a judge's request
    (:func:`~llmcheck.core.context.call_role`) gets neither, unless it asked for faults."""
    if not context.current_role()[1]:
        return None
    ctx = context.current_sample()
    if ctx is not None:
        # every request of a sample is numbered, with or without a plan in force, so
        # call numbers mean the same in-process and through the proxy
        call, kind = ctx.next_fault()
        return Draw(call, kind, ctx.fault_plan, ctx.seed, ctx) if ctx.fault_plan else None
    state = _global.get()
    if state is not None and state.plan:
        call = next(state.counter)
        return Draw(call, state.plan.draw("global", call), state.plan, "global", None)
    return None


class FaultControl:
    """What the ``llm_faults`` fixture returns: the running sample's fault plan, read
    and changed from inside the test body.

    - ``llm_faults.set(rate_limit=0.5)`` or ``.set("rate_limit:0.5")``: from now on in
      this sample; ``.set()`` with nothing turns faults off;
    - ``with llm_faults(timeout=1.0): ...``: only inside the block;
    - ``with llm_faults.off(): ...``: no faults inside the block (a setup call);
    - ``llm_faults.plan``: the plan in force; ``llm_faults.injected``: the faults
      injected so far in this sample (``FaultRecord`` with ``call``, ``kind``, ``via``).
    """

    def _sample(self) -> context.SampleContext:
        ctx = context.current_sample()
        if ctx is None:
            from llmcheck.errors import UsageError

            raise UsageError("llm_faults works while a sample of an LLM test runs; mark the "
                             "test with @llmcheck.repeat(...) and use it in the test body")
        return ctx

    @property
    def plan(self) -> FaultPlan | None:
        return self._sample().fault_plan

    @property
    def injected(self) -> list[Any]:
        return list(self._sample().faults)

    def set(self, spec: str | FaultPlan | None = None, **rates: Any) -> FaultPlan:
        import llmcheck.injection.inprocess as inprocess  # via sys.modules

        ctx = self._sample()
        if ctx.fault_plan and "seed" not in rates:
            rates["seed"] = ctx.fault_plan.seed
        plan = FaultPlan.build(spec, **rates)
        inprocess.install()
        ctx.fault_plan = plan
        return plan

    @contextlib.contextmanager
    def __call__(self, spec: str | FaultPlan | None = None, **rates: Any) -> Iterator[FaultPlan]:
        ctx = self._sample()
        before = ctx.fault_plan
        try:
            yield self.set(spec, **rates)
        finally:
            ctx.fault_plan = before

    def off(self) -> contextlib.AbstractContextManager[FaultPlan]:
        return self(FaultPlan())

    def __repr__(self) -> str:
        ctx = context.current_sample()
        return ("<llm_faults: outside a sample>" if ctx is None
                else f"<llm_faults {ctx.fault_plan!r}>")
