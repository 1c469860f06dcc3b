"""Deadlines on a whole attempt, and the stop switch (Ctrl-C) of every model call.

- :func:`run_with_deadline` runs one blocking attempt in a reusable daemon helper
  thread and stops waiting for it at its deadline; :func:`await_with_deadline` does
  the same for an awaitable (cancelling it);
- :func:`stop_calls` stops every model call of this process at once (the runner calls
  it on Ctrl-C, the plugin when a local server dies): no new request or retry
  starts, sleeps (backoff, pacing) return at once, calls in flight are abandoned
  within :data:`STOP_POLL` seconds, and each raises :class:`CallsStopped`.

Both the ``llm`` client and the proxy's pacing use the stop-aware :func:`sleep` and
:func:`asleep`.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from llmcheck.errors import CallsStopped

STOP_POLL = 0.2  # seconds: how often a waiting call looks at the stop switch




class DeadlineExceeded(Exception):
    """An attempt got no complete answer within its deadline (``--llm-timeout``).
    Internal: retried like ``litellm.Timeout``, then reported in a ModelCallError."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no complete answer within the {timeout:g} s deadline (--llm-timeout)")
        self.timeout = timeout


# --------------------------------------------------------------------------
# the stop switch (Ctrl-C)

_stop_event = threading.Event()
_stop_lock = threading.Lock()
_stop_reason: str | None = None


def stop_calls(reason: str = "the run was interrupted") -> None:
    """Stop every model call of this process, now and until :func:`reset_calls`:
    no new request or retry starts, backoff sleeps return at once, and sync calls
    in flight are abandoned within :data:`STOP_POLL` s; each raises
    :class:`CallsStopped`. Thread-safe and idempotent (the first reason is kept);
    the runner calls it on KeyboardInterrupt."""
    global _stop_reason
    with _stop_lock:
        if _stop_reason is None:
            _stop_reason = reason
        _stop_event.set()


def calls_stopped() -> str | None:
    """Why model calls are stopped, or ``None`` while they may run."""
    if not _stop_event.is_set():
        return None
    return _stop_reason or "calls were stopped"


def reset_calls() -> None:
    """Allow model calls again (a new session in the same process, e.g. pytester)."""
    global _stop_reason
    with _stop_lock:
        _stop_event.clear()
        _stop_reason = None


def raise_if_stopped() -> None:
    reason = calls_stopped()
    if reason is not None:
        raise CallsStopped(f"model calls are stopped: {reason}", reason=reason)


def sleep(seconds: float) -> None:
    """tenacity's sleep, cut short by the stop switch."""
    _stop_event.wait(seconds)


async def asleep(seconds: float) -> None:
    """tenacity's async sleep, cut short (within STOP_POLL) by the stop switch."""
    end = time.monotonic() + seconds
    while not _stop_event.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(STOP_POLL, left))


# --------------------------------------------------------------------------
# deadlines on a whole attempt


class _Call:
    """One blocking attempt run in a helper thread: its outcome and whether the
    caller stopped waiting for it (``abandoned``; stream readers check it)."""

    __slots__ = ("done", "abandoned", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.abandoned = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Workers:
    """Reusable daemon helper threads for blocking attempts (starting a thread costs
    about 2 ms on these machines; a hand-off to a waiting one, tens of µs).

    Each submitted job reserves an idle worker or starts a new one, so no job ever
    waits for another; a worker idle for ``IDLE_EXIT`` s ends. Abandoned jobs keep
    their worker until they end by themselves, then it serves again."""

    IDLE_EXIT = 30.0

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # waiting workers minus queued jobs

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        if spawn:
            threading.Thread(target=self._serve, args=(job,), name="llmcheck-call",
                             daemon=True).start()
        else:
            self._jobs.put(job)

    def _serve(self, job: Callable[[], None]) -> None:
        while True:
            job()
            with self._lock:
                self._idle += 1
            while True:
                try:
                    job = self._jobs.get(timeout=self.IDLE_EXIT)
                    break
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # more waiting workers than queued jobs
                            self._idle -= 1
                            return


_workers = _Workers()


def _workers_after_fork() -> None:
    global _workers
    _workers = _Workers()  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workers_after_fork)


def run_with_deadline(fn: Callable[[threading.Event], Any], timeout: float) -> Any:
    """``fn(abandoned)`` in a daemon helper thread (one of :class:`_Workers`, in a
    copy of the caller's context), waited for at most ``timeout`` seconds in all.

    At the deadline raises :class:`DeadlineExceeded`, and :class:`CallsStopped`
    within STOP_POLL s of :func:`stop_calls`. The abandoned thread cannot be
    killed: it ends by itself when the provider closes the connection, when
    litellm's per-read timeout (the same ``timeout``) trips, or, for a stream,
    at the next chunk (the reader checks ``abandoned`` and closes the stream).
    It is a daemon thread, so it never holds up the interpreter's exit."""
    call = _Call()
    ctx = contextvars.copy_context()

    def run() -> None:
        try:
            call.result = ctx.run(fn, call.abandoned)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            call.error = exc
        finally:
            call.done.set()

    _workers.submit(run)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if call.done.wait(max(0.0, min(STOP_POLL, left))):
                break
            raise_if_stopped()
            if left <= 0:
                raise DeadlineExceeded(timeout)
    finally:
        if not call.done.is_set():
            call.abandoned.set()
    if call.error is not None:
        raise call.error
    return call.result


async def await_with_deadline(awaitable: Awaitable[Any], timeout: float) -> Any:
    """Await ``awaitable`` (as a task) for at most ``timeout`` seconds in all; at the
    deadline, or on :func:`stop_calls`, cancel it (closing its connection) and raise
    :class:`DeadlineExceeded` or :class:`CallsStopped`."""
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise DeadlineExceeded(timeout)
            done, _ = await asyncio.wait((task,), timeout=min(STOP_POLL, left))
            if done:
                return task.result()
            raise_if_stopped()
    finally:
        if not task.done():
            task.cancel()
            task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark an abandoned task's outcome as seen (no 'never retrieved' warning)."""
    if not task.cancelled():
        task.exception()

