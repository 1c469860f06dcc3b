"""The terminal summary of an llmcheck session, rendered from its records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from llmcheck_pytest.session import SessionState

START_UP = pytest.StashKey[float]()
"""Seconds of the session's one-time start-up (litellm's import, the simulator's or local
model's start), spent before any sample's clock started: shown once in the summary."""


def add_start_up(config: pytest.Config, seconds: float) -> None:
    config.stash[START_UP] = config.stash.get(START_UP, 0.0) + seconds


def start_up_line(config: pytest.Config) -> str | None:
    """``llmcheck start-up: 3.4 s ...``, or None when this process started nothing (under
    pytest-xdist the workers start their own)."""
    seconds = config.stash.get(START_UP, 0.0)
    if seconds < 0.05:
        return None
    return (f"llmcheck start-up: {seconds:.1f} s (litellm import, simulator or local model "
            "start), once, before the first sample: in no sample's duration")


def false_fail_line(session: Any) -> str:
    """How often a session like this one fails on bad luck alone, and what to change."""
    chance = session.false_fail_chance
    timed = sum(len(t.latency) for t in session.tests)
    held = (f" (and their {timed} latency requirements held with as much room)"
            if timed else "")
    line = (f"llmcheck: if all {len(session.tests)} LLM tests truly passed at their required "
            f"rate + margin{held}, a session like this would still fail at least one "
            f"{chance:.0%} of the time")
    if chance > 0.2:
        line += (f"; --llm-session-alpha=0.05 holds it to 5% by running more samples where "
                 f"needed (`llmcheck plan --tests {len(session.tests)} --session-alpha 0.05` "
                 "shows the cost)")
    return line


def table_width(tr: Any) -> int | None:
    """The width to fit the summary into, by the rule ``llmcheck show`` follows too
    (:func:`llmcheck.reports.table.fit_width`): COLUMNS, else the terminal's, else none
    (a log or file gets the whole table: a node id cut in a CI log cannot be rerun)."""
    from llmcheck.reports.table import fit_width

    return fit_width(tr.isatty(), lambda: int(tr._tw.fullwidth))


def write_summary(state: SessionState, tr: Any) -> None:
    """The session's summary at the end of the terminal output (the controller's, not
    a worker's): the pass-rate table, pooled cases, failing checks, faults, warnings,
    usage, budget and where the reports are."""
    if state.is_worker or not (state.records or state.recovered):
        return
    from llmcheck.reports import terminal as render
    from llmcheck.reports.reliability import reliability_lines

    def say(text: str, **markup: bool) -> None:
        """A line of ours: control characters from reports never reach the terminal."""
        tr.write_line(render.printable(text), **markup)

    for recovered in state.recovered:
        say(f"llmcheck: {recovered.message()}", yellow=True)
    if not state.records:
        return
    from llmcheck.model.cache import describe_replay

    session = state.session_record()
    width = table_width(tr)
    tr.write_sep("=", f"llmcheck pass rates (seed {state.seed})")
    for line in render.summary_table(session.tests, width=width).splitlines():
        say(line)
    if session.aggregates:
        say("")
        for line in render.aggregates_table(session.aggregates, width=width).splitlines():
            say(line)
    reliability = reliability_lines(session.tests, session.aggregates, width=width)
    if reliability:
        say("")
        for line in reliability:
            say(line)
    from llmcheck.reports.latency import latency_lines

    latency = latency_lines(session.tests, width=width)
    if latency:
        say("")
        for line in latency:
            say(line)
    checks = render.failing_checks_lines(session.tests,
                                         width=None if width is None else width - 2)
    if checks:
        say("")
        say("failing checks (samples failed / evaluated):")
        for line in checks:
            say("  " + line)
    faults = render.fault_lines(session.tests, width=None if width is None else width - 2)
    if faults:
        say("")
        say("pass rate by injected fault (passed/scored):")
        for line in faults:
            say("  " + line)
    inconclusive = [r for r in session.tests
                    if not r.verdict.conclusive and r.verdict.outcome != "error"]
    if inconclusive:
        say(
            f"{len(inconclusive)} verdict(s) inconclusive: the interval still contains the "
            "required rate, so the verdict could flip on a rerun; n≈ is the number of "
            "samples that would settle it at the observed rate"
        )
    for w in session.warnings:
        say(f"warning: {w}", yellow=True)
    if session.false_fail_chance is not None and len(session.tests) > 1:
        say(false_fail_line(session), yellow=session.false_fail_chance > 0.2)
    if session.usage.calls:
        say(render.usage_line(session.usage, "llmcheck model usage"))
    started = start_up_line(state.config)
    if started:
        say(started)
    if session.local_model is not None:
        say(render.local_model_line(session.local_model))
    if session.cache is not None:
        line, trouble = describe_replay(session.cache, session.tests)
        say(f"llmcheck {line}", yellow=trouble)
    unjudged = state.unjudged()
    if unjudged:
        verdict = ("allowed by --llm-allow-unjudged" if state.setting("allow_unjudged")
                   else "so the session fails (--llm-allow-unjudged accepts it)")
        say(f"llmcheck: {len(unjudged)} LLM test(s) got no verdict because the budget "
            f"ran out before their first sample, {verdict}: {', '.join(unjudged)}",
            red=not state.setting("allow_unjudged"))
    if session.budget:
        say(f"llmcheck budget: {session.budget}; tests marked 'budget' "
                      "got their verdict from the samples collected before it ran out",
                      red=True)
    if session.simulated:
        say(
            "llmcheck: no model configured, so these tests ran against the built-in "
            "simulator; to test a real model pass --llm-model=openai/gpt-4o-mini "
            "--llm-api-key-env=OPENAI_API_KEY (or any litellm model, with --llm-api-base "
            "for a local server)", cyan=True)
    if str(state.report_path) in state.unwritten:
        say("llmcheck report: not written (see the warning above); the verdicts above and "
            "the exit status stand", red=True)
    else:
        say(f"llmcheck report: {state.report_path}")
    for line, trouble in state.views.lines() if state.views is not None else ():
        say(line, yellow=trouble)
