"""The sample runner: run one test body many times and turn it into a record.

A test body is run up to ``runs`` times with at most ``concurrency`` samples
in flight (a thread pool for sync bodies, the event loop for async ones).
After each finished sample the verdict policy is asked whether the verdict is
settled; once it is, no new samples are launched (unless early stopping is
off) and samples already running finish and are recorded. The runner knows
nothing about pytest: the plugin hands it a body and settings and gets back a
:class:`~llmcheck.records.TestRecord`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import hashlib
import inspect
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from llmcheck import context, stats
from llmcheck.errors import InfrastructureError, UsageError
from llmcheck.records import (
    Interval,
    SampleRecord,
    TestRecord,
    UsageTotals,
    Verdict,
    check_stats,
    group_failures,
)

MAX_MESSAGE = 2000
MAX_TRACEBACK = 8000
PASS_HAT_KS = (2, 3, 5, 10)


def sample_seed(session_seed: int, test_id: str, index: int) -> int:
    """A stable 32-bit seed for sample ``index`` of ``test_id`` in a session."""
    digest = hashlib.sha256(f"{session_seed}:{test_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class SampleInfo:
    """What a test body may know about the sample it is running as."""

    index: int
    seed: int
    runs: int

    @property
    def rng(self) -> random.Random:
        """A fresh ``random.Random`` seeded for this sample (thread-safe to use)."""
        return random.Random(self.seed)


@dataclass(frozen=True)
class Progress:
    finished: int
    planned: int
    passed: int
    failed: int
    errors: int
    in_flight: int


@dataclass
class RunSpec:
    """Everything the runner needs to know besides the body."""

    test_id: str
    runs: int
    policy: stats.Policy
    concurrency: int = 4
    early_stop: bool = True
    session_seed: int = 0
    interval_method: str = "wilson"
    failure_types: tuple[type[BaseException], ...] = ()
    """Exceptions that are sample failures although not ``Exception`` subclasses
    (the plugin passes ``pytest.fail.Exception``)."""
    progress: Callable[[Progress], None] | None = None
    warnings: list[str] = field(default_factory=list)
    stop_check: Callable[[], str | None] | None = None
    """Asked before each new sample; a returned reason (a spent budget) stops launching."""
    model: str | None = None
    on_sample: Callable[[SampleRecord], None] | None = None
    """Called with every finished sample (the plugin journals them to disk)."""


@dataclass
class _Tally:
    samples: list[SampleRecord] = field(default_factory=list)
    passed: int = 0
    failed: int = 0
    errors: int = 0
    decision: stats.Decision | None = None
    decided_after: int | None = None

    @property
    def finished(self) -> int:
        return len(self.samples)


class SampleRunner:
    """Runs the samples of one test; ``record()`` builds its TestRecord at any time,
    so an interrupted run still yields what was measured."""

    def __init__(self, body: Callable[..., Any], spec: RunSpec) -> None:
        self.body = body
        self.spec = spec
        self.is_async = inspect.iscoroutinefunction(body)
        self._tally = _Tally()
        self._started = time.perf_counter()
        self._stop_launching = False
        self._interrupted = False
        self._fatal: BaseException | None = None
        self._budget_reason: str | None = None

    def _may_launch(self) -> bool:
        if self._stop_launching:
            return False
        if self.spec.stop_check is not None:
            reason = self.spec.stop_check()
            if reason:
                self._budget_reason = reason
                self._stop_launching = True
                return False
        return True

    # -- one sample -------------------------------------------------------
    def _info(self, index: int) -> SampleInfo:
        return SampleInfo(index, sample_seed(self.spec.session_seed, self.spec.test_id, index),
                          self.spec.runs)

    def _ctx(self, info: SampleInfo) -> context.SampleContext:
        ctx = context.SampleContext(index=info.index, seed=info.seed, test_id=self.spec.test_id)
        ctx.extra["info"] = info
        return ctx

    def _run_sync(self, index: int) -> SampleRecord:
        __tracebackhide__ = True
        info = self._info(index)
        ctx = self._ctx(info)
        token = context._set(ctx)
        start = time.perf_counter()
        try:
            self.body()
        except BaseException as exc:  # noqa: BLE001 - classified below
            return self._outcome(ctx, time.perf_counter() - start, exc)
        finally:
            context._reset(token)
        return self._sample(ctx, "passed", time.perf_counter() - start)

    async def _run_async(self, index: int) -> SampleRecord:
        __tracebackhide__ = True
        info = self._info(index)
        ctx = self._ctx(info)
        token = context._set(ctx)
        start = time.perf_counter()
        try:
            await self.body()
        except BaseException as exc:  # noqa: BLE001 - classified below
            if isinstance(exc, asyncio.CancelledError):
                raise
            return self._outcome(ctx, time.perf_counter() - start, exc)
        finally:
            context._reset(token)
        return self._sample(ctx, "passed", time.perf_counter() - start)

    @staticmethod
    def _sample(ctx: context.SampleContext, outcome: str, duration: float,
                **fields: Any) -> SampleRecord:
        return SampleRecord(index=ctx.index, seed=ctx.seed, outcome=outcome, duration=duration,
                            calls=list(ctx.calls), checks=list(ctx.checks), **fields)

    def _outcome(self, ctx: context.SampleContext, duration: float,
                 exc: BaseException) -> SampleRecord:
        if isinstance(exc, UsageError):
            # A broken test (bad schema, unknown model...) is not a failing model:
            # stop the test and show the message.
            raise exc
        if isinstance(exc, InfrastructureError):
            outcome = "error"
        elif isinstance(exc, Exception) or isinstance(exc, self.spec.failure_types):
            outcome = "failed"
        else:
            # KeyboardInterrupt, SystemExit, pytest.skip/exit...: not a sample outcome.
            raise exc
        message = str(exc).strip() or type(exc).__name__
        tb = "".join(traceback.format_exception(type(exc), exc, _visible(exc.__traceback__)))
        return self._sample(ctx, outcome, duration, message=_clip(message, MAX_MESSAGE),
                            error_type=_type_name(exc),
                            traceback=_clip(tb.rstrip(), MAX_TRACEBACK))

    # -- bookkeeping ------------------------------------------------------
    def _finish(self, sample: SampleRecord, in_flight: int) -> None:
        t = self._tally
        t.samples.append(sample)
        if sample.outcome == "passed":
            t.passed += 1
        elif sample.outcome == "failed":
            t.failed += 1
        else:
            t.errors += 1
        remaining = self.spec.runs - t.finished
        if t.decision is None and self.spec.policy.settled(t.passed, t.failed, remaining):
            t.decision = self.spec.policy.decide(t.passed, t.failed, remaining)
            t.decided_after = t.finished
            if self.spec.early_stop:
                self._stop_launching = True
        if self.spec.on_sample is not None:
            self.spec.on_sample(sample)
        if self.spec.progress is not None:
            self.spec.progress(Progress(t.finished, self.spec.runs, t.passed, t.failed,
                                        t.errors, in_flight))

    @classmethod
    def from_samples(cls, spec: RunSpec, samples: list[SampleRecord],
                     reason: str) -> TestRecord:
        """The record of a run that ended abruptly (a crashed worker), rebuilt from
        the samples it journaled, with the same verdict logic as a live run."""
        runner = cls(lambda: None, spec)
        for sample in sorted(samples, key=lambda s: s.index):
            runner._finish(sample, 0)
        runner._interrupted = True
        record = runner.record()
        verdict = record.verdict.model_copy(update={
            "stop_reason": f"{reason} after {record.run} of {spec.runs} samples"})
        return record.model_copy(update={"verdict": verdict, "duration": sum(
            s.duration for s in samples)})

    # -- scheduling -------------------------------------------------------
    def run(self) -> TestRecord:
        """Run the samples and return the record. Re-raises non-sample exceptions
        (KeyboardInterrupt, pytest's skip/exit) after recording what finished."""
        try:
            if self.is_async:
                asyncio.run(self._schedule_async())
            elif self.spec.concurrency == 1:
                self._schedule_inline()
            else:
                self._schedule_threads()
            if self._fatal is not None:
                raise self._fatal
        except KeyboardInterrupt:
            self._interrupted = True
            raise
        return self.record()

    def _collect(self, done: Any, in_flight: int) -> None:
        """Record finished futures or tasks; a non-sample exception (skip, exit)
        stops launching and is re-raised once the running samples are done."""
        for item in done:
            try:
                sample = item.result()
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                self._fatal = self._fatal or exc
                self._stop_launching = True
                continue
            self._finish(sample, in_flight)

    def _schedule_inline(self) -> None:
        for index in range(self.spec.runs):
            if not self._may_launch():
                break
            try:
                sample = self._run_sync(index)
            except BaseException as exc:
                self._fatal = exc
                return
            self._finish(sample, 0)

    def _schedule_threads(self) -> None:
        spec = self.spec
        pool = cf.ThreadPoolExecutor(max_workers=min(spec.concurrency, spec.runs),
                                     thread_name_prefix="llmcheck-sample")
        in_flight: set[cf.Future[SampleRecord]] = set()
        next_index = 0
        try:
            while True:
                while (next_index < spec.runs and len(in_flight) < spec.concurrency
                       and self._may_launch()):
                    # Copy the caller's context at submit time, so context variables
                    # set by fixtures are visible in the sample's thread.
                    ctx = contextvars.copy_context()
                    in_flight.add(pool.submit(ctx.run, self._run_sync, next_index))
                    next_index += 1
                if not in_flight:
                    break
                done, in_flight = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                self._collect(done, len(in_flight))
        except KeyboardInterrupt:
            # Do not wait for bodies still running: the user asked to stop.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    async def _schedule_async(self) -> None:
        spec = self.spec
        in_flight: set[asyncio.Task[SampleRecord]] = set()
        next_index = 0
        try:
            while True:
                while (next_index < spec.runs and len(in_flight) < spec.concurrency
                       and self._may_launch()):
                    in_flight.add(asyncio.ensure_future(self._run_async(next_index)))
                    next_index += 1
                if not in_flight:
                    break
                done, in_flight = await asyncio.wait(in_flight,
                                                     return_when=asyncio.FIRST_COMPLETED)
                self._collect(done, len(in_flight))
        finally:
            for task in in_flight:
                task.cancel()

    # -- the result -------------------------------------------------------
    def record(self) -> TestRecord:
        """The record of what has finished so far (complete after ``run``)."""
        spec, t = self.spec, self._tally
        samples = sorted(t.samples, key=lambda s: s.index)
        scored = t.passed + t.failed
        interval = interval_fn(spec.interval_method, spec.policy.confidence)
        low, high, _ = interval(t.passed, scored)
        decision = t.decision or spec.policy.decide(t.passed, t.failed, 0)
        stopped_early = t.finished < spec.runs
        if self._interrupted:
            stop_reason = f"interrupted after {t.finished} of {spec.runs} samples"
        elif self._budget_reason is not None and t.decision is None:
            stop_reason = (f"budget spent after {t.finished} of {spec.runs} samples: "
                           f"{self._budget_reason}")
        elif stopped_early and t.decision is not None:
            stop_reason = (f"verdict settled after {t.decided_after} of {spec.runs} samples: "
                           f"{t.decision.reason}")
        else:
            stop_reason = None
        if t.finished == 0 and self._budget_reason is not None:
            verdict_outcome = "error"
            reason = f"no sample ran: {self._budget_reason}"
            conclusive = False
        elif t.finished and t.errors * 2 > t.finished:
            verdict_outcome = "error"
            reason = (f"{t.errors} of {t.finished} samples could not get an answer from the "
                      f"model (infrastructure errors); no verdict on the model")
            conclusive = False
        else:
            verdict_outcome = "passed" if decision.passed else "failed"
            reason = decision.reason
            conclusive = decision.conclusive
        pass_hat = {str(k): stats.pass_hat_k(scored, t.passed, k)
                    for k in PASS_HAT_KS if k <= scored}
        pass_at = {str(k): stats.pass_at_k(scored, t.passed, k)
                   for k in PASS_HAT_KS if k <= scored}
        return TestRecord(
            nodeid=spec.test_id,
            planned=spec.runs,
            run=t.finished,
            passed=t.passed,
            failed=t.failed,
            errors=t.errors,
            pass_rate=(t.passed / scored) if scored else None,
            interval=Interval(low=low, high=high, method=spec.interval_method,
                              confidence=spec.policy.confidence),
            min_pass_rate=spec.policy.min_pass_rate,
            confidence=spec.policy.confidence,
            verdict=Verdict(
                outcome=verdict_outcome,
                policy=spec.policy.name,
                conclusive=conclusive,
                reason=reason,
                samples_to_conclusive=None if conclusive else decision.samples_to_conclusive,
                stopped_early=stopped_early,
                stop_reason=stop_reason,
                decided_after=t.decided_after,
            ),
            concurrency=spec.concurrency,
            duration=time.perf_counter() - self._started,
            interrupted=self._interrupted,
            budget_stopped=self._budget_reason is not None and t.decision is None,
            model=spec.model,
            usage=UsageTotals.of_calls([c for s in samples for c in s.calls]),
            pass_hat_k=pass_hat,
            pass_at_k=pass_at,
            samples=samples,
            checks=check_stats(samples, spec.policy.confidence, interval),
            failure_groups=group_failures(samples),
            warnings=list(spec.warnings),
        )


def interval_fn(method: str, confidence: float) -> Callable[[int, int], tuple[float, float, str]]:
    """``(successes, n) -> (low, high, method)`` for the configured interval method."""
    fn = stats.clopper_pearson_interval if method == "clopper-pearson" else stats.wilson_interval

    def interval(successes: int, n: int) -> tuple[float, float, str]:
        low, high = fn(successes, n, confidence)
        return low, high, method

    return interval


def _visible(tb: TracebackType | None) -> TracebackType | None:
    """Drop frames that ask to be hidden (pytest's ``__tracebackhide__`` convention):
    the runner's and the plugin's own frames are noise in a user's failure."""
    frames = []
    while tb is not None:
        f = tb.tb_frame
        if not (f.f_locals.get("__tracebackhide__") or f.f_globals.get("__tracebackhide__")):
            frames.append(tb)
        tb = tb.tb_next
    if not frames:
        return None
    # Relink the visible frames (tb_next is writable since Python 3.7).
    for a, b in zip(frames, frames[1:], strict=False):
        a.tb_next = b
    frames[-1].tb_next = None
    return frames[0]


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__") or module.startswith("_pytest"):
        return cls.__qualname__
    if module.startswith("llmcheck."):
        import llmcheck

        if cls.__qualname__ in llmcheck.__all__ and getattr(llmcheck, cls.__qualname__) is cls:
            return f"llmcheck.{cls.__qualname__}"  # the public name, not the private module
    return f"{module}.{cls.__qualname__}"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 20] + f"... [{len(text) - limit + 20} chars cut]"


def current_info() -> SampleInfo | None:
    """The running sample's :class:`SampleInfo`, or ``None`` outside a sample."""
    ctx = context.current_sample()
    return None if ctx is None else ctx.extra.get("info")
