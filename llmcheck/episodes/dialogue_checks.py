"""Checks over a whole conversation: the goal reached, every reply passing a check, a
fact never contradicted.

Each reads an :class:`~llmcheck.episodes.episode.Episode` (from
:func:`~llmcheck.episodes.user.run_conversation` or ``Conversation.episode()``; the
app's replies of any episode), records one
:class:`~llmcheck.records.schema.CheckResult` in the running sample like every
``llmcheck.assert_*``, and raises :class:`~llmcheck.checks.CheckFailed` when it fails. A
failure records where the conversation went wrong as ``CheckResult.step`` (``turn 3``),
so reports group failing samples by the turn.

A check handed to these (a predicate, ``lambda r: llmcheck.assert_not_refusal(r)``)
runs quietly: what it records or raises only decides this check's outcome, so a goal
not yet reached at turn 1 does not fail a sample that reaches it at turn 3. A string
criterion is judged by llmcheck's judge (:func:`llmcheck.checks.judge.grade`, calls of
role ``judge``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

from llmcheck.checks.base import _soft_scope, check_fraction, conclude, excerpt, short_repr
from llmcheck.checks.judge import grade
from llmcheck.core.context import current_sample
from llmcheck.episodes.checks import _episode  # the one check that an episode is one
from llmcheck.episodes.episode import Episode, Step
from llmcheck.errors import UsageError

__all__ = ["assert_every_reply", "assert_goal_reached", "assert_never_contradicts"]

_MARK = re.compile(r"\{([^{}]+)\}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Checks run inside record nothing in the sample and raise even inside ``soft()``:
    a predicate's own ``llmcheck.assert_*`` only answers yes or no here."""
    ctx = current_sample()
    kept = len(ctx.checks) if ctx is not None else 0
    token = _soft_scope.set(None)
    try:
        yield
    finally:
        _soft_scope.reset(token)
        if ctx is not None:
            del ctx.checks[kept:]


def _holds(predicate: Callable[..., Any], *args: Any) -> tuple[bool, str | None]:
    """Whether ``predicate(*args)`` holds (not False, no AssertionError), and why not."""
    with _quiet():
        try:
            result = predicate(*args)
        except AssertionError as exc:
            return False, str(exc) or "assertion failed"
    return result is not False, None if result is not False else "returned False"


def _replies(episode: Episode) -> list[Step]:
    return [s for s in episode.steps if s.role == "assistant"]


def _turn_of(step: Step) -> int:
    return step.turn if step.turn is not None else step.index


def _upto(episode: Episode, turn: int) -> Episode:
    """The episode as it stood after the app's reply of ``turn``."""
    steps = [s for s in episode.steps if _turn_of(s) <= turn]
    system = [m for m in episode.messages if m.get("role") == "system"]
    replies = [s.text for s in steps if s.role == "assistant"]
    return dataclasses.replace(
        episode, steps=steps, final_text=replies[-1] if replies else "",
        messages=system + [{"role": s.role, "content": s.text} for s in steps])


def transcript(episode: Episode) -> str:
    """The conversation as ``User: ...`` / ``Assistant: ...`` lines (what a judge reads)."""
    return "\n".join(f"{'User' if s.role == 'user' else 'Assistant'}: {s.text}"
                     for s in episode.steps)


def _positive(check: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{check}: {name} must be a turn number >= 1 or None, got "
                         f"{short_repr(value)}")
    return value


def assert_goal_reached(episode: Episode, by_turn: int | None = None,
                        check: Callable[[Episode], Any] | str | None = None, *,
                        threshold: float = 0.7, model: str | None = None) -> int | None:
    """The conversation reached its goal (by turn ``by_turn``, 1-based, if given).

    ``check`` says what reaching it means: a predicate on the conversation (called with
    the Episode as it stood after each reply, from the first: the goal is reached at
    the first turn it holds), a string criterion judged by llmcheck's judge on the
    transcript up to ``by_turn`` (a pass at ``threshold``; ``model``: the judge's), or
    None: the simulated user said so (its :data:`~llmcheck.episodes.user.DONE`, or its
    ``stop`` condition). Returns the turn the goal was reached at (the last turn judged,
    for a criterion). Recorded as ``goal_reached``; a failure's step is the last turn
    looked at."""
    __tracebackhide__ = True
    ep = _episode(episode, "assert_goal_reached")
    by = _positive("assert_goal_reached", "by_turn", by_turn)
    limit = check_fraction("assert_goal_reached", "threshold", threshold)
    turns = len(_replies(ep))
    last = min(by, turns) if by is not None else turns
    label = "goal_reached" + (f"(by turn {by})" if by is not None else "")
    reached: int | None = None
    if check is None:
        if ep.ended_by is None and ep.stop_reason != "max_turns":
            raise UsageError("assert_goal_reached: give check= (a predicate on the episode, "
                             "or a criterion for the judge): this conversation had no "
                             "simulated user to say its goal was reached")
        if ep.ended_by in ("done", "stop") and turns:
            reached = turns
        why = (f"the user ended the conversation with {ep.ended_by!r} after {turns} turn(s)"
               if ep.ended_by else f"the user was not done after {turns} turn(s) (max_turns)")
    elif isinstance(check, str) and check.strip():
        verdicts = grade(transcript(_upto(ep, last)), f"The conversation reaches this goal "
                         f"of the user: {check}", model=model)
        score = verdicts[0].score
        reached = last if score >= limit and turns else None
        why = f"the judge scored {score:.2f} (< {limit:g}): {verdicts[0].reason}"
    elif callable(check):
        reached = next((t for t in range(1, turns + 1) if _holds(check, _upto(ep, t))[0]),
                       None)
        why = f"the goal's check never held in {turns} turn(s)"
    else:
        raise UsageError(f"assert_goal_reached: check must be a predicate on the episode, a "
                         f"criterion (a non-empty str) or None, got {short_repr(check)}")
    if reached is not None and (by is None or reached <= by):
        conclude(label, True, value=reached)
        return reached
    if reached is not None:
        why = f"reached only at turn {reached}"
    conclude(label, False, f"goal not reached by turn {last}: {why}; last reply "
             f"{excerpt(_upto(ep, last).final_text, 120)}", step=f"turn {max(last, 1)}")
    return None


def assert_every_reply(episode: Episode, check: Callable[[str], Any], *,
                       name: str | None = None) -> int:
    """Every reply of the app passes ``check`` (called with the reply's text; it fails a
    reply by returning False or raising AssertionError, as every ``llmcheck.assert_*``
    does). Recorded as ``every_reply(<name>)``; a failure names the first failing turn
    (its step). Returns the number of replies that passed (all, on a pass)."""
    __tracebackhide__ = True
    ep = _episode(episode, "assert_every_reply")
    if not callable(check):
        raise UsageError(f"assert_every_reply: check must be a callable taking a reply's "
                         f"text, got {short_repr(check)}")
    shown = name or getattr(check, "__name__", "check")
    label = "every_reply" + ("" if shown == "<lambda>" else f"({shown})")
    replies = _replies(ep)
    for passed, step in enumerate(replies):
        ok, why = _holds(check, step.text)
        if not ok:
            conclude(label, False, f"the reply of {step.label} failed: {why}; reply "
                     f"{excerpt(step.text, 120)}", value=_turn_of(step), step=step.label)
            return passed
    conclude(label, True, value=len(replies))
    return len(replies)


def _frame(fact: str) -> tuple[re.Pattern[str], str]:
    """The pattern that finds what a reply says in the fact's frame, and the value the
    fact gives: ``"order {1042}"`` finds ``order <number>`` and expects ``1042``."""
    marks = _MARK.findall(fact)
    if len(marks) != 1:
        raise UsageError(f"assert_never_contradicts: mark the fact's value with braces, "
                         f"once (e.g. 'order {{1042}}', 'refunds take {{5}} days'), or pass "
                         f"judge=True or a predicate; got {fact!r}")
    before, after = (re.findall(r"\w+", part) for part in _MARK.split(fact)[::2])
    if not before and not after:
        raise UsageError(f"assert_never_contradicts: the fact needs words around its "
                         f"{{value}} to know where a reply states it; got {fact!r}")
    expected = marks[0].strip()
    value = r"\d+(?:[.,]\d+)*" if re.fullmatch(r"[\d.,]+", expected) else r"[\w$€£%.-]+"
    parts = [*map(re.escape, before), f"(?P<value>{value})", *map(re.escape, after)]
    return re.compile(r"(?<!\w)" + r"\W+".join(parts) + r"(?!\w)", re.IGNORECASE), expected


def assert_never_contradicts(episode: Episode, fact: str, *,
                             judge: bool | Callable[[str, str], Any] = False,
                             threshold: float = 0.7, model: str | None = None) -> int:
    """No reply of the app contradicts ``fact``.

    ``judge=False`` (deterministic): the fact marks its value in braces, ``'order
    {1042}'``, ``'refunds take {5} days'``; a reply contradicts it when it states the
    frame with another value (``order 1024``). ``judge=True``: llmcheck's judge reads
    each reply against the fact (a pass at ``threshold``; ``model``: the judge's). A
    predicate ``judge(reply, fact)`` says whether a reply agrees with the fact (False or
    AssertionError: it contradicts it). Recorded as ``never_contradicts(<fact>)``; a
    failure names the first contradicting turn. Returns the number of replies that
    passed (all, on a pass)."""
    __tracebackhide__ = True
    ep = _episode(episode, "assert_never_contradicts")
    if not isinstance(fact, str) or not fact.strip():
        raise UsageError(f"assert_never_contradicts: fact must be a non-empty str, got "
                         f"{short_repr(fact)}")
    limit = check_fraction("assert_never_contradicts", "threshold", threshold)
    if not (isinstance(judge, bool) or callable(judge)):
        raise UsageError(f"assert_never_contradicts: judge must be False, True or a "
                         f"predicate (reply, fact) -> bool, got {short_repr(judge)}")
    plain = _MARK.sub(lambda m: m.group(1), fact)
    frame = _frame(fact) if judge is False else None
    label = f"never_contradicts({short_repr(plain, 40)})"
    replies = _replies(ep)
    for passed, step in enumerate(replies):
        why = None
        if frame is not None:
            said = [m.group("value") for m in frame[0].finditer(step.text)]
            wrong = [v for v in said if v.lower() != frame[1].lower()]
            why = f"it says {wrong[0]!r} where the fact says {frame[1]!r}" if wrong else None
        elif judge is True:
            verdict = grade(step.text, f"The response does not contradict this fact: "
                            f"{plain}", model=model)[0]
            why = (f"the judge scored {verdict.score:.2f} (< {limit:g}): {verdict.reason}"
                   if verdict.score < limit else None)
        else:
            why = _holds(judge, step.text, plain)[1]  # type: ignore[arg-type]
        if why is not None:
            conclude(label, False, f"the reply of {step.label} contradicts the fact: {why}; "
                     f"reply {excerpt(step.text, 120)}", value=_turn_of(step),
                     step=step.label)
            return passed
    conclude(label, True, value=len(replies))
    return len(replies)
