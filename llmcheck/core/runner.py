"""The sample runner: run one test body many times and turn it into a record.

A test body is run up to ``runs`` times with at most ``concurrency`` samples
in flight (a thread pool for sync bodies, the event loop for async ones).
After each finished sample the verdict policy is asked whether the verdict is
settled; once it is, no new samples are launched (unless early stopping is
off) and samples already running finish and are recorded. The runner knows
nothing about pytest: the plugin hands it a body and settings and gets back a
:class:`~llmcheck.records.schema.TestRecord`.
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures as cf
import contextvars
import inspect
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from llmcheck import stats
from llmcheck.core import context, latency
from llmcheck.core.exchanges import keep
from llmcheck.core.outcome import (
    MAX_MESSAGE,
    MAX_TRACEBACK,
    clip,
    fault_calls,
    fault_names,
    format_traceback,
    judge_faults,
    one_paragraph,
    type_name,
)
from llmcheck.core.spec import Progress, RunSpec, Tally, sample_seed
from llmcheck.errors import InfrastructureError, UsageError
from llmcheck.records.derived import reliability_fields, step_failures
from llmcheck.records.schema import (
    Interval,
    SampleRecord,
    TestRecord,
    UsageTotals,
    Verdict,
    check_stats,
    fault_stats,
    group_failures,
)


class SampleRunner:
    """Runs the samples of one test; ``record()`` builds its TestRecord at any time,
    so an interrupted run still yields what was measured."""

    def __init__(self, body: Callable[..., Any], spec: RunSpec) -> None:
        self.body = body
        self.spec = spec
        self.policy = spec.settings.policy()
        self.is_async = inspect.iscoroutinefunction(body)
        self._tally = Tally()
        self._started = time.perf_counter()
        self._stop_launching = False
        self._interrupted = False
        self._ctrl_c = False
        """Ctrl-C arrived while sampling (see :meth:`_on_sigint`)."""
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
    def _context(self, index: int) -> context.SampleContext:
        seed = sample_seed(self.spec.session_seed, self.spec.test_id, index)
        return context.SampleContext(index=index, seed=seed, runs=self.spec.runs,
                                     test_id=self.spec.test_id, fault_plan=self.spec.fault_plan,
                                     tool_faults=self.spec.tool_faults)

    def _run_sync(self, index: int) -> SampleRecord:
        __tracebackhide__ = True
        ctx = self._context(index)
        token = context._set(ctx)
        start = time.perf_counter()
        try:
            self.body()
        except BaseException as exc:  # noqa: BLE001 - classified below
            return self._outcome(ctx, time.perf_counter() - start, exc)
        finally:
            context._reset(token)
        return self._passed(ctx, time.perf_counter() - start)

    async def _run_async(self, index: int) -> SampleRecord:
        __tracebackhide__ = True
        ctx = self._context(index)
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
        return self._passed(ctx, time.perf_counter() - start)

    def _sample(self, ctx: context.SampleContext, outcome: str, duration: float,
                **fields: Any) -> SampleRecord:
        """The sample's record; a failed or errored one keeps what its last calls sent and
        got back (:mod:`llmcheck.core.exchanges`), a passing one nothing."""
        kept = [] if outcome == "passed" else keep(ctx.exchanges, self.spec.keep_io)
        return SampleRecord(index=ctx.index, seed=ctx.seed, outcome=outcome, duration=duration,
                            calls=list(ctx.calls), checks=list(ctx.checks),
                            faults=judge_faults(ctx.faults, ctx.answers),
                            provider_failures=list(ctx.provider_failures), exchanges=kept,
                            episode=ctx.episode, durations={"total": duration, **ctx.durations},
                            **fields)

    def _passed(self, ctx: context.SampleContext, duration: float) -> SampleRecord:
        if ctx.budget_refusal is not None:
            return self._refused(ctx, duration)
        return self._sample(ctx, "passed", duration)

    def _refused(self, ctx: context.SampleContext, duration: float) -> SampleRecord:
        """A sample whose request the budget refused, whatever the body made of it: not
        evidence about the model, so it is recorded and never counted."""
        return self._sample(ctx, "error", duration, budget_refused=True, counted=False,
                            message=ctx.budget_refusal)

    def _outcome(self, ctx: context.SampleContext, duration: float,
                 exc: BaseException) -> SampleRecord:
        if isinstance(exc, UsageError):
            # A broken test (bad schema, unknown model...) is not a failing model:
            # stop the test and show the message.
            raise exc
        if not isinstance(exc, (Exception, *self.spec.failure_types)):
            # KeyboardInterrupt, SystemExit, pytest.skip/exit...: not a sample outcome.
            raise exc
        if ctx.budget_refusal is not None:
            return self._refused(ctx, duration)
        message = one_paragraph(str(exc)) or type(exc).__name__  # what was wrong, first
        blamed = [f for f in judge_faults(ctx.faults, ctx.answers) if not f.recovered]
        if ctx.provider_failures:
            # the provider really failed in this sample: whatever the code did next is
            # not evidence about it (nor about the model)
            outcome = "error"
            message = f"the provider failed ({ctx.provider_failures[0]}); then: {message}"
        elif blamed:
            # an injected fault the code did not survive is the code's failure, also
            # when the harness's own client gave up on it; a fault it recovered from (a
            # later request got a usable answer) is not blamed for what came after
            outcome = "failed"
            message = (f"{fault_names(blamed)}: {message}\n"
                       f"({fault_calls(blamed)})")
        elif isinstance(exc, InfrastructureError):
            outcome = "error"
        else:
            outcome = "failed"
        tb = format_traceback(exc, keep_chain=self.spec.full_trace)
        return self._sample(ctx, outcome, duration, message=clip(message, MAX_MESSAGE),
                            error_type=type_name(exc),
                            traceback=clip(tb.rstrip(), MAX_TRACEBACK))

    # -- bookkeeping ------------------------------------------------------
    def _finish(self, sample: SampleRecord, in_flight: int) -> None:
        """Record a finished sample, then count every sample that is now next in index
        order, asking the policy after each: the verdict depends on the outcomes in
        index order only, never on which sample happened to finish first.

        After Ctrl-C nothing more is recorded (a sample it cut into is no evidence),
        and a KeyboardInterrupt that a finalizer swallowed is raised here instead."""
        if self._ctrl_c:
            raise KeyboardInterrupt
        t = self._tally
        if sample.budget_refused:
            # the verdict skips it (it is no evidence), and no new sample starts
            t.refused[sample.index] = sample
            self._stop_launching = True
            if self._budget_reason is None:
                self._budget_reason = sample.message or "the session's budget is spent"
        else:
            t.samples[sample.index] = sample
        # With early stopping the verdict is frozen at the deciding sample; without it,
        # every sample counts and the verdict is taken on all of them.
        frozen = self.spec.settings.early_stop
        while not (frozen and t.decision is not None):
            if t.next in t.refused:
                t.next += 1
            elif t.next in t.samples:
                self._count(t.samples[t.next])
            else:
                break
        if self.spec.on_sample is not None:
            self.spec.on_sample(sample)
        if self.spec.progress is not None:
            self.spec.progress(Progress(t.finished, self.spec.runs, t.passed, t.failed,
                                        t.errors, in_flight))

    def _count(self, sample: SampleRecord) -> None:
        t = self._tally
        t.counted += 1
        t.next += 1
        if sample.outcome == "passed":
            t.passed += 1
        elif sample.outcome == "failed":
            t.failed += 1
        else:
            t.errors += 1
        remaining = self.spec.runs - t.next
        if t.decision is None and self.policy.settled(t.passed, t.failed, remaining):
            t.decision = self.policy.decide(t.passed, t.failed, remaining)
            t.decided_after = t.counted
            if self.spec.settings.early_stop and not latency.runs_all(self.spec.settings):
                self._stop_launching = True

    # -- scheduling -------------------------------------------------------
    def run(self) -> TestRecord:
        """Run the samples and return the record. Re-raises non-sample exceptions
        (KeyboardInterrupt, pytest's skip/exit) after recording what finished."""
        previous = self._note_ctrl_c()
        try:
            if self.is_async:
                asyncio.run(self._schedule_async())
            elif self.spec.settings.concurrency == 1:
                self._schedule_inline()
            else:
                self._schedule_threads()
            if self._ctrl_c:  # dropped by a finalizer after the last sample
                raise KeyboardInterrupt
            if self._fatal is not None:
                raise self._fatal
        except KeyboardInterrupt:
            self._interrupted = True
            self._stop_everything()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        return self.record()

    def _note_ctrl_c(self) -> Any:
        """While sync samples run, Ctrl-C is noted as well as raised: Python raises
        KeyboardInterrupt wherever the main thread happens to be, and when that is a
        finalizer (a ``__del__``, a weakref callback: measured, 1 Ctrl-C in 25 during
        litellm calls) the interpreter prints it and drops it, and the run went on to
        its last sample. Noted, it stops the run at the next finished sample. Returns
        the handler to restore, or None when the handler is not Python's default (the
        user's own, asyncio's) or this is not the main thread."""
        if self.is_async or threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            return None
        signal.signal(signal.SIGINT, self._on_sigint)
        return previous

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self._ctrl_c = True
        self._stop_launching = True
        # stop the model calls from another thread: a lock taken here could be held by
        # the very code this handler interrupted
        _thread.start_new_thread(self._stop_everything, ())
        raise KeyboardInterrupt

    def _stop_everything(self) -> None:
        self._stop_launching = True
        if self.spec.on_interrupt is not None:
            self.spec.on_interrupt()

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
        concurrency = spec.settings.concurrency
        pool = cf.ThreadPoolExecutor(max_workers=min(concurrency, spec.runs),
                                     thread_name_prefix="llmcheck-sample")
        in_flight: set[cf.Future[SampleRecord]] = set()
        next_index = 0
        try:
            while True:
                while (next_index < spec.runs and len(in_flight) < concurrency
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
            self._stop_everything()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    async def _schedule_async(self) -> None:
        spec = self.spec
        in_flight: set[asyncio.Task[SampleRecord]] = set()
        next_index = 0
        try:
            while True:
                while (next_index < spec.runs and len(in_flight) < spec.settings.concurrency
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
    def record(self, *, duration: float | None = None, ended: str | None = None) -> TestRecord:
        """The record of what has finished so far (complete after ``run``): the one place
        a TestRecord is made. ``duration`` replaces the time since the runner started (a
        rebuilt record sums its samples'); ``ended`` says why the run ended abruptly (a
        crashed worker, a killed run: the verdict's stop reason names it)."""
        spec, t = self.spec, self._tally
        settings = spec.settings
        samples = [sample if index < t.next else sample.model_copy(update={"counted": False})
                   for index, sample in sorted({**t.refused, **t.samples}.items())]
        ran = [s for s in samples if not s.budget_refused]  # refused ones are no evidence
        scored = t.passed + t.failed
        warnings = [w for w in (getattr(self.policy, "warning", None),) if w]
        interval, estimate, note = self._inference()
        latencies = latency.latency_stats(settings, ran)
        if note:
            warnings.append(note)
        return TestRecord(
            nodeid=spec.test_id,
            settings=settings,
            run=t.finished,
            passed=t.passed,
            failed=t.failed,
            errors=t.errors,
            pass_rate=(t.passed / scored) if scored else None,
            worst_case_rate=t.passed / t.counted if t.errors else None,
            interval=interval,
            estimate=estimate,
            verdict=latency.combine(self._verdict(interval, ended), latencies),
            duration=time.perf_counter() - self._started if duration is None else duration,
            fingerprint=spec.fingerprint,
            interrupted=self._interrupted,
            budget_stopped=self._budget_reason is not None and t.decision is None,
            model=spec.model,
            simulated=spec.simulated,
            usage=UsageTotals.of_calls([c for s in samples for c in s.calls]),
            **reliability_fields(t.passed, scored, interval),
            samples=samples,
            checks=check_stats(ran, settings),
            failure_groups=group_failures(ran), step_failures=step_failures(ran),
            fault_plan=spec.fault_text,
            faults=fault_stats(samples, settings),
            latency=latencies,
            warnings=warnings,
        )

    def _inference(self) -> tuple[Interval, float | None, str | None]:
        """The interval and bias-adjusted rate of the counted samples, and a note.

        A run stopped by something other than its rule (Ctrl-C, the budget) reports
        the fixed-n interval of what it counted; otherwise see
        :meth:`TestSettings.inference`."""
        settings, t = self.spec.settings, self._tally
        scored = t.passed + t.failed
        if self._interrupted or (self._budget_reason is not None and t.decision is None):
            return settings.interval_of(t.passed, scored), None, None
        note = None
        if settings.early_stop and settings.runs - t.errors > stats.MAX_STOPPING_SAMPLES:
            note = (f"runs={settings.runs} is above {stats.MAX_STOPPING_SAMPLES}: the "
                    f"interval is the fixed-n {settings.interval} interval, not adjusted "
                    "for early stopping")
        return *settings.inference(t.passed, scored, t.errors), note

    def _verdict(self, interval: Interval, ended: str | None = None) -> Verdict:
        """The verdict on what has finished: the policy's, unless no sample ran or
        most samples could not reach the model (then an error, no verdict).

        Under the rate policies a verdict is conclusive iff ``interval`` (the one
        reported beside it) lies on its side of the required rate."""
        t = self._tally
        frozen = t.decision is not None and self.spec.settings.early_stop
        remaining = self.spec.runs - t.next if frozen else 0
        decision = t.decision if frozen else self.policy.decide(t.passed, t.failed, 0)
        assert decision is not None
        outcome = decision_outcome = "passed" if decision.passed else "failed"
        reason, conclusive = decision.reason, decision.conclusive
        if self.policy.name in ("threshold", "interval") and t.passed + t.failed:
            m = self.spec.settings.min_pass_rate
            conclusive = interval.low >= m if decision.passed else interval.high < m
        if decision.passed and t.errors:
            # errors may never push a verdict toward pass: the worst case counts them
            # as failures, and a pass it would overturn is no pass but an error (errors
            # that land on the samples that would have failed must not turn a run green)
            worst = self.policy.decide(t.passed, t.failed + t.errors, remaining)
            if not worst.passed:
                outcome, conclusive = "error", False
                n = t.passed + t.failed + t.errors
                reason = (f"no verdict: the samples that got an answer pass ({reason}), but "
                          f"counting the {t.errors} infrastructure error(s) as failures the "
                          f"test would fail ({t.passed}/{n} = {t.passed / n:.2f}): the errors "
                          "may be hiding failures, so this is not a pass")
        if t.finished == 0 and self._interrupted:
            outcome, conclusive = "interrupted", False
            reason = "interrupted before any sample finished: no verdict"
        elif t.finished == 0 and self._budget_reason is not None:
            outcome, conclusive = "error", False
            reason = f"no sample ran: {self._budget_reason}"
        elif t.counted and t.errors * 2 > t.counted:
            outcome, conclusive = "error", False
            reason = (f"{t.errors} of {t.counted} samples could not get an answer from the "
                      f"model (infrastructure errors); no verdict on the model")
        return Verdict(
            outcome=outcome,
            conclusive=conclusive,
            reason=reason,
            samples_to_conclusive=None if conclusive or outcome != decision_outcome
            else decision.samples_to_conclusive,
            stopped_early=self._stopped_early(),
            stop_reason=self._stop_reason() if ended is None else
            f"{ended} after {t.finished} of {self.spec.runs} samples",
            decided_after=t.decided_after,
        )

    def _stopped_early(self) -> bool:
        """Settled before the last planned sample and frozen there, under every policy,
        however many samples were already launched (at high concurrency, all may be)."""
        t = self._tally
        return (self.spec.settings.early_stop and t.decided_after is not None
                and t.decided_after < self.spec.runs and not self._interrupted)

    def _stop_reason(self) -> str | None:
        return latency.stop_reason(self._tally, self.spec.runs, interrupted=self._interrupted,
                                   budget_reason=self._budget_reason,
                                   stopped_early=self._stopped_early(),
                                   runs_all=latency.runs_all(self.spec.settings))


def rebuild_record(spec: RunSpec, samples: list[SampleRecord],
                   reason: str | None) -> TestRecord:
    """A test's record rebuilt from the samples it journaled, with the same verdict
    logic as a live run: ``reason`` says why it ended abruptly (a crashed worker, a
    killed run) and marks it interrupted; ``None`` means it had finished."""
    runner = SampleRunner(lambda: None, spec)
    for sample in sorted(samples, key=lambda s: s.index):
        runner._finish(sample, 0)
    runner._interrupted = reason is not None
    return runner.record(duration=sum(s.duration for s in samples), ended=reason)
