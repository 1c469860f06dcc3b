"""How a sample's ending reads in its record: which injected faults are to blame,
and the exception's message, type name and traceback as a user should see them.

A failing sample's message starts with what was wrong, in one paragraph (the check,
what it expected, an excerpt of what it got): :func:`one_paragraph` folds a heading
and its listed violations together, and :func:`shorten_message` cuts a message that
must be short by shortening the quoted excerpt of the output first, at word
boundaries, so the statement of what was violated survives the cut.
"""

from __future__ import annotations

import re
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from llmcheck.errors import PUBLIC_NAMES
from llmcheck.records.schema import FaultRecord
from llmcheck.redact import redact

MAX_MESSAGE = 2000
MAX_TRACEBACK = 8000


def judge_faults(faults: list[FaultRecord], answers: list[int]) -> list[FaultRecord]:
    """The sample's faults, each marked ``recovered`` when a request at or after it got
    a usable answer (``answers``: request numbers). An answer to a request that was
    itself damaged by a fault (anything but ``slow``) is not usable: llmcheck's client
    notes its last attempt's answer even when an injected ``truncated`` made it. A tool
    fault (``via="tool"``, numbered by tool invocation) is never recovered from: it is
    there to show how the app fares under it."""
    requests = [f for f in faults if f.via != "tool"]
    damaged = {f.call for f in requests if f.kind != "slow"}
    usable = [a for a in answers if a not in damaged]
    return [f.model_copy(update={"recovered": True}) if f.via != "tool" and any(
                a > f.call or (a == f.call and f.kind == "slow") for a in usable) else f
            for f in faults]


def fault_names(faults: list[Any]) -> str:
    """``under injected rate_limit, timeout``: the kinds (in the order they came)."""
    return "under injected " + ", ".join(dict.fromkeys(f.kind for f in faults))


def fault_calls(faults: list[Any]) -> str:
    """``injected: rate_limit on call 0, timeout on calls 1, 2`` (a line of its own,
    so failure groups, keyed by the first line, do not split by call number)."""
    calls: dict[str, list[int]] = {}
    for fault in faults:
        calls.setdefault(fault.kind, []).append(fault.call)
    return "injected: " + ", ".join(
        f"{kind} on call{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
        for kind, numbers in calls.items())


def visible(tb: TracebackType | None) -> TracebackType | None:
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


def type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__") or module.startswith("_pytest"):
        return cls.__qualname__
    if module.startswith("llmcheck.") and cls.__qualname__ in PUBLIC_NAMES:
        return f"llmcheck.{cls.__qualname__}"  # the public name, not the private module
    return f"{module}.{cls.__qualname__}"


def clip(text: str, limit: int) -> str:
    """``text`` cut at ``limit`` characters, secrets masked first (a sample's message
    is pytest's assertion text, which may quote a key the model or provider echoed)."""
    text = redact(text)
    if len(text) <= limit:
        return text
    return text[: limit - 20] + f"... [{len(text) - limit + 20} chars cut]"


_BULLET = re.compile(r"^\s*(?:- |\.\.\. and \d+ more)")
_REPR = r"""(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
_EXCERPT = re.compile(
    rf"""(?<![\w'"])(?P<head>{_REPR})(?:\.\.\.{_REPR})?"""  # a repr, or head...tail
    r"(?P<size> \([\d,]+ chars\))?(?![\w'\"])")  # and the length of the whole
"""A quoted excerpt of the output in a check's message: a ``repr`` (or the head and
tail of a long text, ``'ab'...'yz' (9,000 chars)``), not touching a word, so the
apostrophe of "doesn't" opens none."""
_TRAILING_EXCERPT = re.compile(r"^(?P<statement>.*?) in (?P<excerpt>"
                               + _EXCERPT.pattern.replace("?P<", "?P<x_") + r"):$")
MIN_EXCERPT = 24
"""Characters of an excerpt kept when a message is cut: enough to recognise the output."""
KEEP_WHOLE = 12
"""A quoted value this short is never cut: an expected value (``'Paris'``), not output."""


def one_paragraph(message: str) -> str:
    """``message`` with its first paragraph saying what was wrong: a heading that ends
    in a colon and the bulleted violations under it (a schema's ``1 violation of
    Person in '...':`` then ``- $.age: ...``) become one line, the excerpt of the output
    moved after the violations (``schema(Person): 1 violation of Person: $.age: Input
    should be a valid integer in '...'``). Failure groups are keyed by the first line,
    so it must hold the violation, not a dangling colon. Other lines stay as they are."""
    lines = message.strip().splitlines()
    if len(lines) < 2 or not lines[0].rstrip().endswith(":") or not _BULLET.match(lines[1]):
        return message.strip()
    count = 1
    while count < len(lines) and _BULLET.match(lines[count]):
        count += 1
    items = [re.sub(r"^\s*- ", "", line).strip() for line in lines[1:count]]
    heading = lines[0].rstrip()
    match = _TRAILING_EXCERPT.match(heading)
    if match is not None:  # the excerpt after what was wrong with it
        first = f"{match['statement']}: {'; '.join(items)} in {match['excerpt']}"
    else:
        first = f"{heading} {'; '.join(items)}"
    return "\n".join([first, *lines[count:]])


def shorten_message(message: str, limit: int) -> str:
    """``message`` in at most ``limit`` characters ("…" marks each cut). The quoted
    excerpts of the output are shortened first, longest first, at word boundaries: down
    to :data:`MIN_EXCERPT` characters, then, if that is not enough, to ``'…'`` (short
    quoted values, :data:`KEEP_WHOLE`, stay whole). Only then is the end of the message
    cut, at a word boundary too."""
    if len(message) <= limit:
        return message
    text = message
    for floor in (MIN_EXCERPT, 0):
        text = _shrink_excerpts(text, limit, floor)
        if len(text) <= limit:
            return text
    return _cut_words(text, limit - 1) + "…"


def _shrink_excerpts(text: str, limit: int, floor: int) -> str:
    """``text`` with its longest quoted excerpts cut (to no fewer than ``floor``
    characters each) until it fits in ``limit``, or every one is at the floor."""
    over = len(text) - limit
    cuts: dict[int, tuple[int, str]] = {}
    for match in sorted(_EXCERPT.finditer(text), key=lambda m: m.start() - m.end()):
        if over <= 0:
            break
        quoted, head = match.group(), match["head"]
        if len(quoted) <= KEEP_WHOLE:
            continue
        body = head[:-1]  # the opening quote and the text, which may end mid-word
        keep = len(quoted) - over - 2 - len(match["size"] or "")
        keep = keep if keep >= MIN_EXCERPT else floor  # a few characters say nothing
        short = ((_cut_words(body, min(keep, len(body) - 1)) if keep else head[0]) + "…"
                 + head[0] + (match["size"] or ""))
        if len(short) < len(quoted):
            cuts[match.start()] = (match.end(), short)
            over -= len(quoted) - len(short)
    out, at = [], 0
    for start in sorted(cuts):
        end, short = cuts[start]
        out += [text[at:start], short]
        at = end
    return "".join(out) + text[at:]


def _cut_words(text: str, width: int) -> str:
    """The start of ``text`` in ``width`` characters, ended at a space when there is one
    in its second half (a word is not cut in two)."""
    if len(text) <= width:
        return text
    cut = text[:width]
    space = cut.rfind(" ")
    return cut[:space].rstrip() if space > width // 2 else cut


_LIBRARY_DIRS = tuple(
    str(Path(p).resolve()) for p in {
        str(Path(__file__).resolve().parents[1]),  # llmcheck itself
        *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))})


def format_traceback(exc: BaseException, *, keep_chain: bool = False) -> str:
    """The sample's traceback as a user should read it: the frames that ask to be hidden
    dropped (:func:`visible`), and an exception that llmcheck raised while handling one
    raised in llmcheck or a library beneath it (``CheckFailed`` over the JSON parser's
    error) shown without that chain: "During handling of the above exception" there is
    llmcheck's bookkeeping, not the user's code. ``keep_chain`` (``--full-trace``) keeps
    every chained exception; so does a chain through the user's own code."""
    shown = traceback.TracebackException(type(exc), exc, visible(exc.__traceback__),
                                         compact=True)
    if not keep_chain and _raised_by_llmcheck(exc):
        inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if inner is not None and _raised_in_library(inner):
            shown.__cause__ = shown.__context__ = None
    return "".join(shown.format())


def _raised_by_llmcheck(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "llmcheck"


def _raised_in_library(exc: BaseException) -> bool:
    """Whether ``exc`` was raised in llmcheck, the standard library or an installed
    package (the innermost frame of its traceback), rather than in the user's code."""
    tb = exc.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    path = str(Path(tb.tb_frame.f_code.co_filename).resolve())
    return path.startswith(_LIBRARY_DIRS) or path.startswith("<")


__all__ = ["clip", "fault_calls", "fault_names", "format_traceback", "judge_faults",
           "one_paragraph", "shorten_message", "type_name", "visible"]
