"""Text made safe and short for a terminal: :func:`printable`, :func:`ellipsize`.

What llmcheck prints comes partly from test code, model output and provider answers;
:func:`printable` keeps any of it from driving the terminal it is shown on. It sits at
the bottom of the package (no llmcheck import) because every layer prints: the
simulator's and the proxy's command lines, the reports, the gate and the CLI.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

UNPRINTABLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]")
"""What a terminal could act on rather than show: C0 and C1 control characters (ESC starts
escape sequences that move the cursor, clear the screen or set the window title; a lone
CR overwrites the line), DEL, the bidirectional overrides that reorder what is shown, the
line and paragraph separators, and lone surrogates (which cannot even be encoded)."""
_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` safe to print on a terminal: every character of :data:`UNPRINTABLE`
    shown as an escape (``\\x1b``, ``\\u202e``, ``\\n``), newlines kept only with
    ``newlines`` (a CR before one is dropped), tabs expanded to spaces. Idempotent."""
    if UNPRINTABLE.search(text):
        if newlines:
            text = text.replace("\r\n", "\n")

        def escape(match: re.Match[str]) -> str:
            ch = match.group()
            if ch == "\n" and newlines:
                return ch
            code = ord(ch)
            return _ESCAPES.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

        text = UNPRINTABLE.sub(escape, text)
    return text.expandtabs(4) if "\t" in text else text


def ellipsize(text: str, width: int, *, keep_end: float = 0.5) -> str:
    """``text`` if it fits in ``width`` characters, else its start and its end joined by
    "…", exactly ``width`` characters long; ``keep_end`` is the share of the kept
    characters taken from the end (``suites/test_extr…t_extracts_person[case-3]``)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:max(width, 0)]
    keep = width - 1
    tail = min(keep, int(keep * keep_end + 0.5))
    head = keep - tail
    return text[:head] + ELLIPSIS + (text[len(text) - tail:] if tail else "")


def clip(text: str, width: int) -> str:
    """``text`` cut at its end to ``width`` characters, "…" marking the cut."""
    return ellipsize(text, width, keep_end=0.0)


__all__ = ["ELLIPSIS", "UNPRINTABLE", "clip", "ellipsize", "printable"]


_SURROGATE = re.compile("[\ud800-\udfff]")


def utf8_json(value: object, indent: int | None = None) -> str:
    """``value`` (plain JSON data) as JSON text that UTF-8 can always encode: other
    characters as they are, a lone surrogate (model output may hold one: ``"\\ud800"``
    in a provider's valid JSON) as its ``\\uXXXX`` escape, which reads back as the same
    code point. Compact without ``indent``."""
    import json

    text = json.dumps(value, ensure_ascii=False, indent=indent,
                      separators=(",", ": ") if indent is not None else (",", ":"))
    # a surrogate can only stand inside a string literal, where its escape is the same
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
