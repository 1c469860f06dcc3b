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
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 8
"""Shorter values are not registered: removing every "abc" would mangle text."""

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
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
_HINT = re.compile(rf"(?i)://|{_HEADER_NAMES}")


def register_secret(value: str | None) -> None:
    """Remove ``value`` from everything llmcheck keeps or shows from now on."""
    global _pattern
    if not value or len(value) < MIN_SECRET_LENGTH or value in _secrets or MASK in value:
        return
    with _lock:
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # longest first
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def forget_secrets() -> None:
    """Drop every registered secret (tests; a new session in the same process)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def redact(text: str) -> str:
    """``text`` with every secret, credential header value and URL credential masked."""
    if _HINT.search(text):
        text = _mask_headers(text)
        text = _URL_USERINFO.sub(_mask_userinfo, text)
        text = _URL_PARAM.sub(lambda m: m.group(1) + MASK, text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return text


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
