"""What every check shares: the failure type, recording, ``soft()`` and ``@check``.

A check is a plain function that measures one property of a model's output,
records one :class:`~llmcheck.records.schema.CheckResult` in the running sample (so a
report can say *which* invariant fails how often) and raises
:class:`CheckFailed` when the property does not hold. Because ``CheckFailed``
is an ``AssertionError``, checks compose with plain ``assert`` and with
pytest's reporting, and they work outside a sample too (nothing is recorded
there).

Inside ``with llmcheck.soft():`` a failing check does not raise: it is
collected, the block goes on, and on exit one ``CheckFailed`` lists every
failure, so a sample reports all the checks it failed, not only the first.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, overload

from llmcheck.core.context import current_sample
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion
from llmcheck.records.schema import CheckResult
from llmcheck.redact import redact

F = TypeVar("F", bound=Callable[..., Any])

NAME_ARG_LIMIT = 48
"""Longest rendering of one argument inside a check name (names are grouping keys)."""
MESSAGE_LIMIT = 4000
"""Longest message a check records; longer ones are cut in the middle."""
MAX_LISTED = 50
"""Most violations/differences a message lists one by one (the rest are counted)."""


class CheckFailed(AssertionError):
    """A check found that the output does not have the property it requires.

    ``name`` is the check's recorded name (``None`` for the summary raised by
    :func:`soft`), ``value`` what it measured, ``results`` the failed
    :class:`CheckResult` s it stands for (one, or all those a ``soft()`` block
    collected).
    """

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        value: Any = None,
        results: tuple[CheckResult, ...] = (),
    ) -> None:
        super().__init__(message)
        self.name = name
        self.value = value
        self.results = results


# --------------------------------------------------------------------------- formatting


def excerpt(text: str, limit: int = 160) -> str:
    """``repr`` of ``text`` cut in the middle to about ``limit`` characters.

    Model output is untrusted and can be huge; ``repr`` escapes newlines and
    control characters so a message stays one readable line. Secrets are masked
    before the cut (a provider may echo the key into an answer): a cut key would
    no longer match.
    """
    size = len(text)
    text = redact(text)
    if len(text) <= limit:
        return repr(text)
    head = max(limit * 2 // 3, 1)
    tail = max(limit - head, 1)
    return f"{text[:head]!r}...{text[-tail:]!r} ({size:,} chars)"


def excerpt_around(text: str, start: int, end: int, width: int = 40, *,
                   position: bool = True) -> str:
    """``repr`` of ``text[start:end]`` with up to ``width`` characters of context,
    secrets masked in each part before it is cut."""
    before, middle, after = (redact(part) for part in (text[:start], text[start:end],
                                                       text[end:]))
    snippet = (f"{'...' if len(before) > width else ''}"
               f"{before[len(before) - min(width, len(before)):] + middle + after[:width]!r}"
               f"{'...' if len(after) > width else ''}")
    return f"{snippet} (at char {start:,})" if position else snippet


def short_repr(value: Any, limit: int = NAME_ARG_LIMIT) -> str:
    """``repr(value)`` truncated to ``limit`` characters (for names and messages),
    secrets masked first."""
    try:
        text = redact(repr(value))
    except Exception:  # a user object with a broken __repr__ must not break a check
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 1)] + "..."


_QUALIFIED = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")


def type_label(tp: Any, limit: int = NAME_ARG_LIMIT) -> str:
    """A short readable name for a type: ``Person``, ``list[Person]``, ``int | None``."""
    text = tp.__name__ if isinstance(tp, type) else _QUALIFIED.sub(r"\1", repr(tp))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """Cut a message in the middle so records stay small (secrets masked first)."""
    message = redact(message)
    if len(message) <= limit:
        return message
    half = limit // 2
    return f"{message[:half]}\n... [{len(message) - limit:,} chars cut] ...\n{message[-half:]}"


def listing(lines: list[str], limit: int = MAX_LISTED) -> str:
    """Bullet lines, at most ``limit`` of them, with a count of the rest."""
    shown = [f"  - {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... and {len(lines) - limit} more")
    return "\n".join(shown)


# --------------------------------------------------------------------------- inputs


def final_text(output: Any) -> str | None:
    """An episode's final answer (:attr:`llmcheck.episodes.episode.Episode.final_text`),
    so every check takes a whole episode where it takes a Completion; None for anything
    else. (Checks sit below episodes: the type is recognised by its attribute.)"""
    text = getattr(output, "final_text", None)
    return text if isinstance(text, str) and hasattr(output, "steps") else None


def as_text(output: Any, check: str) -> str:
    """The text of ``output``: a :class:`Completion`'s ``.text``, an episode's final
    answer, or a ``str`` as is."""
    if isinstance(output, Completion):
        return output.text
    if isinstance(output, str):
        return output
    text = final_text(output)
    if text is not None:
        return text
    raise UsageError(
        f"{check}: output must be a Completion, an Episode or a str, got "
        f"{type(output).__name__} {short_repr(output)}"
    )


def check_bounds(check: str, **bounds: float | int | None) -> None:
    """Reject negative, non-numeric or swapped ``min_x``/``max_x`` bounds with a UsageError."""
    for key, value in bounds.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{check}: {key} must be a number, got {value!r}")
    for key, low in bounds.items():
        if key.startswith("min_") and low is not None:
            high = bounds.get("max_" + key[4:])
            if high is not None and low > high:
                raise UsageError(f"{check}: {key}={low!r} is greater than max_{key[4:]}={high!r}")


def check_fraction(check: str, name: str, value: Any) -> float:
    """A threshold in [0, 1], or a UsageError that names it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise UsageError(f"{check}: {name} must be a number between 0 and 1, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- soft()


class _SoftScope:
    """The failures collected by one ``soft()`` block (shared by threads it spawns)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[CheckResult] = []

    def add(self, results: list[CheckResult] | tuple[CheckResult, ...]) -> None:
        with self._lock:
            self._failures.extend(results)

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks collected so far, in the order they failed."""
        with self._lock:
            return list(self._failures)


_soft_scope: contextvars.ContextVar[_SoftScope | None] = contextvars.ContextVar(
    "llmcheck_soft_scope", default=None
)


def summary(results: list[CheckResult] | tuple[CheckResult, ...], extra: str | None = None) -> str:
    """The message of a ``soft()`` block's combined failure."""
    count = len(results) + (1 if extra else 0)
    # The first line names the failed checks: reports group failures by it.
    names = ", ".join(r.name for r in results) + (", an assertion" if extra else "")
    lines = [f"{count} check{'s' if count != 1 else ''} failed: {names}"]
    for result in results:
        body = (result.message or "failed").replace("\n", "\n    ")
        lines.append(f"  - {result.name}: {body}")
    if extra:
        lines.append("  - " + extra.replace("\n", "\n    "))
    return "\n".join(lines)


class soft:
    """Collect check failures instead of raising at the first one.

    Inside the block every ``llmcheck.assert_*`` (and every ``@check``) still
    records its result but does not raise. A failed check then returns its
    measurement when it returns one (``assert_length``'s counts,
    ``assert_contains``'s count, the score of ``assert_golden`` and
    ``assert_judge``, ``assert_number_in_range``'s number), ``None`` when it
    returns a validated value (``assert_schema``, ``assert_json``,
    ``assert_tool_call``, ``assert_matches``, ``assert_label``), and ``False``
    for a ``@check``. On exit, if anything failed, one
    :class:`CheckFailed` lists every failure, so the sample fails and its
    report shows all of them. A plain ``assert`` that fails inside the block
    ends it early and is listed last. Any other exception propagates
    unchanged.

    The state lives in a context variable: concurrent samples (threads with a
    copied context, asyncio tasks) each see their own block. A nested
    ``soft()`` hands its failures to the enclosing block, which raises once at
    its own exit. Threads started inside the block with a copied context
    report into the same block.
    """

    def __init__(self) -> None:
        self._scope: _SoftScope | None = None
        self._outer: _SoftScope | None = None
        self._token: contextvars.Token | None = None

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks collected so far by this block."""
        return self._scope.failures if self._scope is not None else []

    def __enter__(self) -> soft:
        if self._scope is not None:
            raise UsageError("soft(): this block is already in use; call soft() again")
        self._scope = _SoftScope()
        self._outer = _soft_scope.get()
        self._token = _soft_scope.set(self._scope)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        __tracebackhide__ = True
        assert self._scope is not None and self._token is not None
        _soft_scope.reset(self._token)
        failures = self._scope.failures
        outer = self._outer
        if outer is not None:
            # nested: the enclosing block reports everything once, at its exit
            outer.add(failures)
            return False
        if exc is None:
            if failures:
                raise CheckFailed(summary(failures), results=tuple(failures))
            return False
        if not failures:
            return False
        if isinstance(exc, CheckFailed):
            results = tuple(failures) + exc.results
            raise CheckFailed(summary(results), results=results) from exc
        if isinstance(exc, AssertionError):
            extra = f"assert: {exc}" if str(exc) else "assert failed"
            raise CheckFailed(summary(failures, extra), results=tuple(failures)) from exc
        if hasattr(exc, "add_note"):  # Python 3.11+: keep the soft failures visible
            exc.add_note(summary(failures))
        return False


# --------------------------------------------------------------------------- recording


def conclude(name: str, passed: bool, message: str | None = None, value: Any = None,
             *, keep_message: bool = False, step: str | None = None) -> bool:
    """Record one check outcome in the running sample and raise if it failed.

    Returns ``passed``; inside ``soft()`` a failure is collected and ``False``
    is returned instead of raising. ``message`` is dropped on a pass unless
    ``keep_message`` (the judge keeps its reason and agreement). ``step``: where in an
    episode a path check failed (``step 2: cancel_order``, ``final``), kept on a failure.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    text = clip(message) if message and (keep_message or not passed) else None
    if not passed and text is None:
        text = "failed"
    if value is not None and not isinstance(value, (bool, int, float, str)):
        value = short_repr(value, 200)
    result = CheckResult(name=name, passed=passed, message=text, value=value,
                         step=None if passed else step)
    sample = current_sample()
    if sample is not None:
        sample.checks.append(result)
    if passed:
        return True
    scope = _soft_scope.get()
    if scope is not None:
        scope.add([result])
        return False
    raise CheckFailed(f"{name}: {text}", name=name, value=value, results=(result,))


# --------------------------------------------------------------------------- @check


def _wants_completion(func: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    annotation = params[0].annotation
    return annotation is Completion or annotation == "Completion"


def _interpret(result: Any, name: str) -> tuple[bool, str | None, Any]:
    if result is None:
        return True, None, None
    if isinstance(result, tuple) and len(result) in (2, 3):
        ok, message, *rest = result
        if ok is None or isinstance(ok, tuple):
            raise UsageError(f"@check {name}: the first item of the returned tuple must be a "
                             f"bool, got {short_repr(ok)}")
        passed = _interpret(ok, name)[0]
        return passed, None if message is None else str(message), rest[0] if rest else None
    if isinstance(result, (bool, int)) or type(result).__name__ == "bool_":
        return bool(result), None, None
    raise UsageError(
        f"@check {name}: the predicate must return a bool, (bool, message), "
        f"(bool, message, value) or None, got {type(result).__name__} {short_repr(result)}"
    )


@overload
def check(func: F, *, name: str | None = None) -> Callable[..., bool]: ...


@overload
def check(
    func: str | None = None, *, name: str | None = None
) -> Callable[[F], Callable[..., bool]]: ...


def check(func: Any = None, *, name: str | None = None) -> Any:
    """Turn a predicate into a named, recorded check.

    ``@check`` (bare), ``@check(name="polite")`` or ``@check("polite")``.
    The predicate gets the output (a :class:`Completion` is passed as its
    ``.text`` unless the first parameter is annotated ``Completion``) and any
    further arguments, and says whether the output is acceptable by returning
    a bool, ``(bool, message)``, ``(bool, message, value)`` or ``None`` (pass),
    or by raising ``AssertionError`` (fail, with its message). The wrapped
    function records a ``CheckResult`` named after the predicate (plus its
    extra arguments, e.g. ``max_emoji(3)``), raises :class:`CheckFailed` when
    it fails and returns ``True`` when it passes (``False`` inside ``soft()``).
    """
    if isinstance(func, str):
        if name is not None:
            raise UsageError("@check: give the name once, positionally or as name=")
        return check(name=func)
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise UsageError(f"@check: name must be a non-empty string, got {name!r}")

    def decorate(predicate: F) -> Callable[..., bool]:
        if not callable(predicate):
            raise UsageError(f"@check: expected a function, got {short_repr(predicate)}")
        if inspect.iscoroutinefunction(predicate):
            raise UsageError(f"@check: {predicate.__name__} is async; checks must be plain "
                             "functions (await the value first, then check it)")
        base = name or getattr(predicate, "__name__", "check")
        pass_completion = _wants_completion(predicate)

        @functools.wraps(predicate)
        def wrapper(output: Any, *args: Any, **kwargs: Any) -> bool:
            __tracebackhide__ = True
            label = _call_label(base, args, kwargs)
            subject = output
            if isinstance(output, Completion) and not pass_completion:
                subject = output.text
            try:
                outcome = predicate(subject, *args, **kwargs)
            except AssertionError as exc:
                message = str(exc) or "assertion failed"
                if isinstance(exc, CheckFailed) and exc.name and message.startswith(exc.name):
                    message = message[len(exc.name) + 2:]
                return conclude(label, False, f"{message} in {_subject_excerpt(subject)}")
            passed, message, value = _interpret(outcome, label)
            if not passed:
                reason = message or f"{base} returned False"
                message = f"{reason} for {_subject_excerpt(subject)}"
            return conclude(label, passed, message, value)

        wrapper.check_name = base  # type: ignore[attr-defined]
        return wrapper

    if func is None:
        return decorate
    return decorate(func)


def _call_label(base: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A ``@check``'s recorded name: ``base`` plus its extra arguments, ``max_emoji(3)``."""
    if not args and not kwargs:
        return base
    parts = [short_repr(a) for a in args]
    parts += [f"{k}={short_repr(v)}" for k, v in kwargs.items()]
    return f"{base}({', '.join(parts)})"


def _subject_excerpt(subject: Any) -> str:
    if isinstance(subject, Completion):
        subject = subject.text
    if isinstance(subject, str):
        return excerpt(subject, 120)
    return short_repr(subject, 120)
