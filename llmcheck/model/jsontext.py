"""One reader for JSON in model output, with one set of rules.

``Completion.json()``, ``ToolCall.args()``, ``assert_json`` / ``assert_schema`` /
``assert_golden(method="json")`` / ``assert_judge`` and
``llmcheck.strategies.strict_json_object`` all read JSON through
:func:`read_json`, so a text one of them accepts the others accept too.

The rules are RFC 8259's, strictly, because the code under test may use any
parser and only strict JSON means the same to all of them:

- One JSON value, with only JSON whitespace (space, tab, line feed, carriage
  return) around it. A leading byte order mark is ignored (RFC 8259 section 8.1
  lets a parser do so; it is an artifact of how the text was stored).
- No ``NaN``, ``Infinity`` or ``-Infinity``: JSON has no such numbers, and
  Python's ``json.loads`` accepts them where most parsers do not. A number too
  large for a double (``1e999``) is refused too, rather than read as infinity.
- No duplicated key in an object: RFC 8259 leaves their meaning open, and
  parsers disagree on which value wins, so the app and the test could see
  different data.
- At most :data:`MAX_DEPTH` levels of nesting; deeper text gets a clear error,
  never a ``RecursionError``.

Where the JSON may sit in the text is a separate, explicit choice
(:data:`Wrapping`): ``"bare"`` (the whole text is the JSON), ``"fence"`` (also a
markdown code fence that is the whole text) or ``"prose"`` (also a code fence
anywhere, or the first ``{...}``/``[...]`` in surrounding prose that is valid
JSON). Every failure is a :class:`JSONTextError`, a ``ValueError`` that says what
broke and where (line, column).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

MAX_DEPTH = 512
"""Deepest nesting accepted (parsers commonly cap it near here; Python's own
parser would hit its recursion limit at about twice this)."""

MAX_EMBEDDED_ATTEMPTS = 32
"""How many ``{``/``[`` positions the ``prose`` search tries (keeps it linear)."""

Wrapping = Literal["bare", "fence", "prose"]
WRAPPINGS: tuple[str, ...] = ("bare", "fence", "prose")

BOM = "\ufeff"
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"?'
_BRACKETS = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
_CONSTANTS = re.compile(_STRING + r"|(-?Infinity|NaN)", re.DOTALL)
_STRUCTURE = re.compile(_STRING + r"|[\[\]{}:,]", re.DOTALL)
_OPENER = re.compile(r"[{\[]")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.DOTALL)
_WHOLE_FENCE = re.compile(
    r"\A[ \t\n\r]*```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)\r?\n?[ \t]*```[ \t\n\r]*\Z",
    re.DOTALL)
_NEAR = 24


class JSONTextError(ValueError):
    """A text that is not JSON under the rules above: ``reason`` says what broke,
    ``line``/``column`` (1-based) and ``pos`` (0-based) where, when known.
    ``broke_rule`` is true when the text is JSON-shaped but breaks one of the
    rules (NaN/Infinity, a duplicated key, too deep) rather than JSON's syntax."""

    def __init__(self, reason: str, text: str = "", pos: int | None = None, *,
                 broke_rule: bool = False) -> None:
        self.reason = reason
        self.broke_rule = broke_rule
        self.pos = pos
        self.line: int | None = None
        self.column: int | None = None
        self.near = ""
        where = ""
        short = len(text) <= 2 * _NEAR + 8  # shown whole; a longer one around ``pos``
        if pos is not None:
            self.line = text.count("\n", 0, pos) + 1
            self.column = pos - (text.rfind("\n", 0, pos) + 1) + 1
            where = f" at line {self.line} column {self.column}"
            if not short:
                self.near = text[max(0, pos - _NEAR):pos + _NEAR]
                where += f", near {self.near!r}"
        self.detail = reason + where
        """What broke and where, for a message that shows the text itself."""
        shown = f": {text!r}" if text and short else ""
        super().__init__(f"not valid JSON ({self.detail}){shown}")


@dataclass(frozen=True)
class Found:
    """JSON read from a text: the value, the JSON text itself and how it was wrapped."""

    value: Any
    text: str
    """The JSON text that was parsed (a fence's body, or the part of the prose)."""
    source: str
    """``"as-is"``, ``"fence"`` or ``"embedded"``."""
    start: int = 0
    """Where :attr:`text` starts in the text that was read."""


class _Constant(ValueError):
    pass


class _Duplicate(ValueError):
    pass


class _OutOfRange(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _reject_constant(name: str) -> Any:
    raise _Constant(name)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (math.inf, -math.inf):
        raise _OutOfRange(literal)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate()
    return out


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_unique_keys,
                            parse_float=_finite_float)


def _too_deep(text: str, start: int) -> int | None:
    """Where the value starting at ``start`` opens its level ``MAX_DEPTH + 1``, or None.
    Counts brackets outside strings, stopping when the value closes."""
    if text[start:start + 1] not in ("[", "{") or (
            text.count("[", start) + text.count("{", start) <= MAX_DEPTH):
        return None
    depth = 0
    for match in _BRACKETS.finditer(text, start):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif char in "]}":
            depth -= 1
            if depth <= 0:
                return None
    return None


def _constant_at(text: str, start: int) -> tuple[str, int]:
    """The first NaN/Infinity outside strings (the parser stopped at it)."""
    for match in _CONSTANTS.finditer(text, start):
        if match.group(1):
            return match.group(1), match.start()
    return "NaN", start  # pragma: no cover - the parser only calls the hook on one


def _literal_at(text: str, start: int, literal: str) -> int:
    """Where the number ``literal`` first stands outside strings."""
    pattern = re.compile(_STRING + r"|(?<![0-9.eE+-])(" + re.escape(literal) + r")(?![0-9.eE+-])",
                         re.DOTALL)
    for match in pattern.finditer(text, start):
        if match.group(1):
            return match.start()
    return start  # pragma: no cover - the parser only calls the hook on one


def _duplicate_at(text: str, start: int) -> tuple[str, int]:
    """The first key repeated within one object, and where it is repeated."""
    stack: list[dict[str, int] | None] = []  # an object's keys so far; None for an array
    expecting_key = False
    for match in _STRUCTURE.finditer(text, start):
        token = match.group()
        if token == "{":
            stack.append({})
            expecting_key = True
        elif token == "[":
            stack.append(None)
        elif token in "]}":
            if stack:
                stack.pop()
        elif token == ",":
            expecting_key = bool(stack) and stack[-1] is not None
        elif token == ":":
            expecting_key = False
        elif expecting_key and stack and stack[-1] is not None:
            key = json.loads(token)
            keys = stack[-1]
            if key in keys:
                return key, match.start()
            keys[key] = match.start()
            expecting_key = False
    return "", start  # pragma: no cover - the parser only calls the hook on one


def _deeper_than_limit(value: Any) -> bool:
    """Whether a parsed value nests more than :data:`MAX_DEPTH` containers deep
    (a walk over its containers, not its characters)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def _decode(text: str, start: int) -> tuple[Any, int]:
    """The JSON value starting at ``start`` (no whitespace skipped) and where it ends.

    Parsed first, at C speed; the nesting is checked on the parsed value, and the
    text is scanned for the place only when it is too deep (a scan of every
    bracket would make a 1 MB answer several times slower to read)."""
    try:
        value, end = _DECODER.raw_decode(text, start)
    except RecursionError:
        raise _depth_error(text, start) from None
    except _Constant:
        name, pos = _constant_at(text, start)
        raise JSONTextError(f"{name} is not valid JSON, which has no NaN or Infinity",
                            text, pos, broke_rule=True) from None
    except _Duplicate:
        key, pos = _duplicate_at(text, start)
        raise JSONTextError(f"duplicated key {key!r} in one object", text, pos,
                            broke_rule=True) from None
    except _OutOfRange as exc:
        raise JSONTextError(f"the number {exc.literal} is too large for a double (it would read "
                            "as Infinity)", text, _literal_at(text, start, exc.literal),
                            broke_rule=True) from None
    except json.JSONDecodeError as exc:
        raise JSONTextError(exc.msg, text, exc.pos) from None
    except ValueError as exc:
        if "4300" in str(exc) or "digits" in str(exc):
            raise JSONTextError("an integer of more than 4300 digits (more than Python reads)",
                                text, broke_rule=True) from None
        raise JSONTextError(str(exc), text) from None
    if (text.count("[", start, end) + text.count("{", start, end) > MAX_DEPTH
            and _deeper_than_limit(value)):
        raise _depth_error(text, start)
    return value, end


def _depth_error(text: str, start: int) -> JSONTextError:
    """The error for a value too deep to accept: where it passes the limit, or, on a
    Python stack too full to parse it, that."""
    deep = _too_deep(text, start)
    if deep is not None:
        return JSONTextError(f"nested deeper than {MAX_DEPTH} levels", text, deep,
                             broke_rule=True)
    return JSONTextError("nested too deeply for the Python stack", text, start,
                         broke_rule=True)


def _bare(text: str, offset: int = 0) -> Found:
    """``text`` as one JSON value with only whitespace (and a leading BOM) around it."""
    start = 1 if text.startswith(BOM) else 0
    start = _WHITESPACE.match(text, start).end()  # type: ignore[union-attr]
    if start == len(text):
        raise JSONTextError("the text is empty" if not text else "the text is only whitespace")
    value, end = _decode(text, start)
    after = _WHITESPACE.match(text, end).end()  # type: ignore[union-attr]
    if after != len(text):
        raise JSONTextError("text after the JSON value", text, after)
    return Found(value, text[start:end], "as-is", offset + start)


def _in_fence(text: str, match: re.Match[str]) -> Found:
    """The body of a code fence, read as bare JSON; errors point into ``text``."""
    body = match.group(2)
    try:
        found = _bare(body, match.start(2))
    except JSONTextError as exc:
        pos = None if exc.pos is None else exc.pos + match.start(2)
        raise JSONTextError(f"the code fence does not hold JSON: {exc.reason}", text,
                            pos, broke_rule=exc.broke_rule) from None
    return Found(found.value, found.text, "fence", found.start)


def find_fence(text: str) -> re.Match[str] | None:
    """The first markdown code fence in ``text``, preferring one tagged ``json``."""
    first = None
    for match in _FENCE.finditer(text):
        if match.group(1).lower() == "json":
            return match
        first = first or match
    return first


def strip_code_fence(text: str) -> str | None:
    """The body of the first markdown code fence in ``text`` (preferring one tagged
    ``json``), or ``None`` if there is no fence."""
    match = find_fence(text)
    return None if match is None else match.group(2)


def find_in_prose(text: str) -> Found | None:
    """JSON somewhere in ``text``: a code fence's body, else the first ``{...}`` or
    ``[...]`` that is valid JSON (at most :data:`MAX_EMBEDDED_ATTEMPTS` tried).

    ``None`` when there is none. A candidate that is JSON-shaped but breaks a rule
    (NaN, a duplicated key, too deep) raises :class:`JSONTextError` rather than
    letting the search settle on a smaller piece inside it.
    """
    fence = find_fence(text)
    if fence is not None:
        try:
            return _in_fence(text, fence)
        except JSONTextError as exc:
            if exc.broke_rule:
                raise
    attempts = 0
    for match in _OPENER.finditer(text):
        try:
            value, end = _decode(text, match.start())
        except JSONTextError as exc:
            if exc.broke_rule:
                raise
            attempts += 1
            if attempts >= MAX_EMBEDDED_ATTEMPTS:
                return None
            continue
        return Found(value, text[match.start():end], "embedded", match.start())
    return None


def read_json(text: str, *, wrapping: Wrapping = "bare") -> Found:
    """Read the JSON in ``text`` under the module's rules, wrapped as ``wrapping`` allows.

    Raises :class:`JSONTextError` (a ``ValueError``) naming what broke and where:
    for a text that is one code fence (and ``wrapping`` allows it), what is wrong
    with the fence's body; otherwise what is wrong with the text read bare (it
    points at the first character that is not JSON).
    """
    if wrapping not in WRAPPINGS:
        raise ValueError(f"wrapping must be one of {', '.join(WRAPPINGS)}, got {wrapping!r}")
    try:
        return _bare(text)
    except JSONTextError as exc:
        bare_error = exc
    if wrapping != "bare":
        whole = _WHOLE_FENCE.match(text)
        if whole is not None:
            return _in_fence(text, whole)
        if wrapping == "prose" and not bare_error.broke_rule:
            found = find_in_prose(text)
            if found is not None:
                return found
    raise bare_error


def loads(text: str) -> Any:
    """``text`` (bare) as a JSON value under the module's rules: the strict ``json.loads``."""
    return read_json(text).value
