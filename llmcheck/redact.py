"""Secrets never leave llmcheck: the one place that removes them from text.

A provider may echo the request, key included, in an error body or even in an
answer; a user may put credentials in a URL. Everything llmcheck keeps or shows
passes through :func:`scrub` on its way out:

- every record (samples, calls, checks, tests, sessions): a validator on the
  records' base class scrubs every string field, so messages, tracebacks,
  call errors, the JSON report and the journal (written from records) are
  clean, as is the terminal summary (rendered from records);
- every cached answer (:class:`~llmcheck.model.cache.ResponseCache` scrubs what it
  stores);
- the plugin's own failure and usage-error lines.

What is removed: every secret registered with :func:`register_secret` (the
configured API key, read in one place, and the password and secret query
values of a configured URL), every value seen after an ``Authorization``,
``api-key`` or similar header name (which is then remembered, so the same
value is removed wherever else it appears), and the credentials and
secret-looking query parameters of any URL.

A secret is also removed in pieces and in disguise, because a text may be cut
before it reaches llmcheck (pytest shortens a long repr in the middle) and a
provider may quote a key encoded:

- any piece of :data:`PIECE` characters or more of a secret (a prefix, a
  suffix, the middle), and two pieces of one secret joined by an ellipsis
  (``sk-abcdef...wxyz``) when they add up to :data:`PIECE`;
- its encoded forms, registered with it: base64 (standard and URL-safe, padded
  or not, at each of the three alignments a key can take inside a longer
  base64 text, so ``Bearer KEY`` and ``user:KEY`` encoded are caught too),
  percent-encoding and hex.

Every function that shortens text redacts it first (see :func:`redact`), so a
cut never leaves a stub of a secret that the whole secret would have masked.
It stays fast on the hot path (every record string passes here): a byte scan in
C finds the runs of characters that secrets are made of, and only those runs
are looked up, window by window, in a set.
"""

from __future__ import annotations

import base64
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 8
"""Shorter values are not registered: removing every "abc" would mangle text."""
PIECE = 12
"""The shortest piece of a secret that is masked on its own: long enough that it
never occurs by chance in ordinary text, short enough that a key cut anywhere
keeps no useful part of it."""

_ELLIPSIS = re.compile(r"""['"]?(?:\.\.\.|\u2026)['"]?""")
"""A cut in the middle of a text (pytest's reprs, llmcheck's excerpts), quotes kept."""


@dataclass(frozen=True)
class _Index:
    """What :func:`redact` looks for, rebuilt (never changed) when a secret is added."""

    secrets: tuple[str, ...]
    """Every registered secret and encoded form, longest first."""
    whole: re.Pattern[str] | None
    """The ones shorter than :data:`PIECE`, matched whole."""
    windows: frozenset[str]
    """Every :data:`PIECE`-character window of the longer ones."""
    anchors: frozenset[str]
    """Every half-window of the longer ones: a piece holds one at a multiple of half
    :data:`PIECE`, so a run is looked up at every sixth character, not at every one."""
    table: bytes | None
    """For ``bytes.translate``: ``x`` for each character a window holds (``?`` for all
    beyond Latin-1), a space for the others; None when there are no windows."""


_EMPTY = _Index((), None, frozenset(), frozenset(), None)
_registered: set[str] = set()
_index = _EMPTY
_lock = threading.Lock()

_HEADER_NAMES = (r"(?:proxy-)?authorization|x-api-key|api[-_]key|x-goog-api-key|"
                 r"anthropic-api-key|openai-api-key|ocp-apim-subscription-key|x-auth-token")
# "Authorization: Bearer X", '"api-key": "X"', "authorization=X" ...
_HEADER_VALUE = re.compile(
    rf"""(?ix)(?P<name>["']?\b(?:{_HEADER_NAMES})\b["']?\s*[:=]\s*["']?)
        (?P<scheme>(?:bearer|basic|token)\s+)?
        (?P<value>[^\s"',;&#}}\[\]]{{{MIN_SECRET_LENGTH},}})""")
_SECRET_PARAMS = (r"api[-_]?key|key|token|access[-_]?token|secret|client[-_]?secret|"
                  r"password|passwd|pwd|sig|signature|auth|code|session")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s@:]+)(?::([^/\s@]*))?@")
_URL_PARAM = re.compile(rf"(?i)([?&](?:{_SECRET_PARAMS})=)([^&#\s\"']+)")
_HINTS = ("://", "authorization", "api-key", "api_key", "subscription-key", "auth-token")
"""Lower-case strings one of which any text the patterns above match holds: checked
with ``in``, far faster than a case-insensitive search for the names."""


def encoded_forms(value: str) -> set[str]:
    """How ``value`` may appear encoded: base64 at each alignment (the characters that
    only ``value``'s bytes determine: a key inside any base64 text, ``Bearer KEY`` or
    ``user:KEY`` included), URL-safe base64, percent-encoding and hex."""
    raw = value.encode("utf-8", "surrogatepass")
    forms = {raw.hex(), raw.hex().upper()}
    for shift in range(3):                       # bytes before the value in its group
        encoded = base64.b64encode(bytes(shift) + raw).decode()
        core = encoded[-(-shift * 8 // 6):len(raw + bytes(shift)) * 8 // 6]
        forms |= {core, core.replace("+", "-").replace("/", "_")}
    for quoted in (quote(value, safe=""), quote(value), quote_plus(value)):
        forms |= {quoted, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quoted)}
    forms.discard(value)
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def register_secret(value: str | None) -> None:
    """Remove ``value`` (any piece of it, and its encoded forms) from everything
    llmcheck keeps or shows from now on."""
    global _index
    if not value or len(value) < MIN_SECRET_LENGTH or value in _registered or MASK in value:
        return
    with _lock:
        _registered.add(value)
        _index = _build({value, *encoded_forms(value), *_index.secrets})


def _build(secrets: set[str]) -> _Index:
    ordered = tuple(sorted(secrets, key=len, reverse=True))
    short = [s for s in ordered if len(s) < PIECE]
    windows = frozenset(s[i:i + PIECE] for s in ordered if len(s) >= PIECE
                        for i in range(len(s) - PIECE + 1))
    anchors = frozenset(w[i:i + _HALF] for w in windows for i in range(_HALF + 1))
    chars = {ord(c) if ord(c) < 256 else ord("?") for w in windows for c in w}
    table = bytes(b"x"[0] if i in chars else b" "[0] for i in range(256))
    return _Index(ordered,
                  re.compile("|".join(map(re.escape, short))) if short else None,
                  windows, anchors, table if windows else None)


def forget_secrets() -> None:
    """Drop every registered secret (tests; a new session in the same process)."""
    global _index
    with _lock:
        _registered.clear()
        _index = _EMPTY


def redact(text: str) -> str:
    """``text`` with every secret (whole, in pieces or encoded), credential header
    value and URL credential masked. Call it before cutting a text, never after only."""
    lower = text.lower()
    if any(hint in lower for hint in _HINTS):
        text = _mask_headers(text)
        text = _URL_USERINFO.sub(_mask_userinfo, text)
        text = _URL_PARAM.sub(lambda m: m.group(1) + MASK, text)
    index = _index
    if index.table is not None:
        text = _mask_pieces(text, index)
        if "..." in text or "\u2026" in text:
            text = _mask_joined(text, index.secrets)
    if index.whole is not None:
        text = index.whole.sub(MASK, text)
    return text


def _mask_pieces(text: str, index: _Index) -> str:
    """Mask every maximal stretch of ``text`` covered by windows of secrets. Only runs
    of :data:`PIECE` or more characters that secrets hold can contain a window: they
    are found by ``find`` in a translated copy (one byte a character), in C."""
    assert index.table is not None
    shape = text.encode("latin-1", "replace").translate(index.table)
    windows, anchors = index.windows, index.anchors
    spans: list[tuple[int, int]] = []
    start = shape.find(_RUN)
    while start >= 0:
        end = shape.find(b" ", start)
        end = len(shape) if end < 0 else end
        checked = start
        for at in range(start, end - _HALF + 1, _HALF):
            if text[at:at + _HALF] in anchors:      # a window may hold this half
                first, last = max(checked, at - _HALF), min(at, end - PIECE)
                spans += [(i, i + PIECE) for i in range(first, last + 1)
                          if text[i:i + PIECE] in windows]
                checked = max(checked, last + 1)
        start = shape.find(_RUN, end)
    return _masked(text, spans)


_RUN = b"x" * PIECE
_HALF = PIECE // 2


def _mask_joined(text: str, secrets: tuple[str, ...]) -> str:
    """Mask each ellipsis with the pieces around it when the text before it ends with a
    piece of a secret and the text after it goes on with a later piece of the same
    secret, :data:`PIECE` characters together (``sk-abcdef...wxyz``)."""
    spans = []
    for m in _ELLIPSIS.finditer(text):
        before = text[max(0, m.start() - PIECE + 1):m.start()]
        after = text[m.end():m.end() + PIECE - 1]
        left, right = _joined(before, after, secrets)
        if left + right >= PIECE:
            spans.append((m.start() - left, m.end() + right))
    return _masked(text, spans)


def _joined(before: str, after: str, secrets: tuple[str, ...]) -> tuple[int, int]:
    """The longest end of ``before`` and start of ``after`` that are pieces of one
    secret, in that order."""
    best = (0, 0)
    for secret in secrets:
        for left in range(len(before), 0, -1):
            at = secret.find(before[-left:])
            if at < 0:
                continue
            rest = secret[at + left:]
            right = next((n for n in range(len(after), 0, -1) if after[:n] in rest), 0)
            if right and left + right > sum(best):
                best = (left, right)
    return best


def _masked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each stretch covered by ``spans`` (in order of start) one mask."""
    if not spans:
        return text
    parts, done = [], 0
    for start, end in spans:
        if parts and start <= done:    # overlaps (or touches) the stretch just masked
            done = max(done, end)
            continue
        parts += [text[done:start], MASK]
        done = end
    parts.append(text[done:])
    return "".join(parts)


def _mask_headers(text: str) -> str:
    def mask(m: re.Match[str]) -> str:
        register_secret(m.group("value"))
        return m.group("name") + (m.group("scheme") or "") + MASK

    return _HEADER_VALUE.sub(mask, text)


def _mask_userinfo(m: re.Match[str]) -> str:
    # the user part may be a token too (https://TOKEN@host): mask all of it
    for part in (m.group(2), m.group(3)):
        if part and part != MASK:
            register_secret(part)
    return f"{m.group(1)}{MASK}@"


MAX_DEPTH = 100
"""Deeper nesting than any record has: refused rather than recursed into."""


def scrub(value: Any, _depth: int = 0) -> Any:
    """:func:`redact` applied to every string in ``value`` (lists, tuples, dicts).
    Raises ``ValueError`` past :data:`MAX_DEPTH` levels (only a hostile file nests so)."""
    if isinstance(value, str):
        return redact(value)
    if not isinstance(value, (list, tuple, dict)):
        return value
    if _depth >= MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return {k: scrub(v, _depth + 1) for k, v in value.items()}
    items = [scrub(v, _depth + 1) for v in value]
    return items if isinstance(value, list) else tuple(items)


def sanitize_url(url: str) -> str:
    """A URL safe to record: its password and secret query values masked, and
    remembered as secrets so an echo of them is masked too."""
    for m in _URL_PARAM.finditer(url):
        register_secret(m.group(2))
    return redact(url)
