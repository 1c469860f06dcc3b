"""What a request must show before llmcheck's proxies act on it: who sent it and
where it goes. Both proxies (``llmcheck proxy`` and the session's ``llm_endpoint``)
hold the upstream's key, so a request they forward spends it; these checks keep
that to the programs it was meant for:

- **Host** must name the proxy itself (its loopback address or ``localhost``, and
  its port): a page that rebinds its own DNS name to 127.0.0.1 sends its name;
- **browser-style requests** are refused: an ``Origin`` header,
  ``Sec-Fetch-Site: cross-site`` or ``same-site``, or a body a web page may post
  anywhere without asking (``text/plain``, a form);
- **the token**: with one set, the request presents it the way SDKs send keys
  (``Authorization: Bearer``, ``api-key``, ``x-api-key``);
- **the path** stays under ``/v1``: no dot segments, empty segments, backslashes
  or encoded slashes, which an upstream could resolve outside its base path;
- **the body** is read within a size limit (413 beyond it) and a time limit.

Each check answers None (go on) or a :class:`Refusal` (status, message, code);
reading the body raises one. The proxy sends it as an OpenAI-style error
(:func:`respond`)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from aiohttp import web

TOKEN_ENV = "LLMCHECK_PROXY_TOKEN"
"""Environment variable ``llmcheck proxy`` reads its token from (kept out of ``ps``)."""
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
"""Largest request body a proxy reads (32 MiB; a larger one gets a 413)."""
DEFAULT_READ_TIMEOUT_S = 30.0
"""Seconds a client has to send a request's headers, and again its body."""

_SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded"})
_CROSS_SITE = frozenset({"cross-site", "same-site"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class Refusal(Exception):
    """Why a request is not served: the HTTP status, the message, the error code."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def respond(refused: Refusal) -> web.Response:
    """A refused request's OpenAI-style error; the connection is closed after it (an
    unread body is not waited for)."""
    from llmcheck.model.wire import _error

    kind = "invalid_request_error" if refused.status < 500 else "server_error"
    response = _error(refused.status, refused.message, kind, refused.code)
    response.force_close()
    return response


def check_limit(name: str, value: object) -> int:
    """``value`` if it is a whole number above 0; else a UsageError naming ``name``."""
    from llmcheck.errors import UsageError

    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a whole number above 0, got {value!r}")
    return value


def _shown(value: str, limit: int = 120) -> str:
    from llmcheck.text import printable

    return printable(value if len(value) <= limit else value[:limit] + "...")


def _split_host(value: str) -> tuple[str, int | None]:
    """``(hostname, port)`` of a Host header (port None when it is not a number)."""
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    else:
        name, sep, port_text = value.rpartition(":")
        if not sep:
            name, port_text = value, ""
    if not port_text:
        return name.lower(), 80
    return name.lower(), int(port_text) if port_text.isdigit() else None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def host_refusal(value: str | None, host: str, port: int) -> Refusal | None:
    """Refuse a Host header that does not name this proxy (``host:port`` it listens
    on; ``localhost`` and the loopback addresses too when it listens on loopback;
    any IP address when it listens on every interface). A DNS name of someone
    else's that resolves here (DNS rebinding) is never the proxy's."""
    if not value:
        return Refusal(403, "llmcheck proxy: the request has no Host header; it serves "
                       "clients that name it (HTTP/1.1).", "host_refused")
    name, got_port = _split_host(value.strip())
    bound = host.strip("[]").lower()
    address, own = _ip(name), _ip(bound)
    if own is not None and own.is_unspecified:
        ok = address is not None or name == "localhost"
    elif bound == "localhost" or (own is not None and own.is_loopback):
        ok = name == "localhost" or (address is not None and address.is_loopback)
    else:
        ok = name == bound
    if ok and got_port == port:
        return None
    return Refusal(403, f"llmcheck proxy: Host {_shown(value)!r} is not this proxy "
                   f"(it answers to {host}:{port} only, so that a web page cannot reach "
                   "it under a name of its own).", "host_refused")


def browser_refusal(method: str, headers: Mapping[str, str]) -> Refusal | None:
    """Refuse what only a web browser sends: an ``Origin``, a cross-site
    ``Sec-Fetch-Site``, or a POST body of a type a page may send anywhere without
    asking first (``text/plain``, a form)."""
    why = None
    origin = headers.get("Origin")
    site = headers.get("Sec-Fetch-Site", "").strip().lower()
    media = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if origin is not None:
        why = f"it comes from a web page (Origin: {_shown(origin)})"
    elif site in _CROSS_SITE:
        why = f"it comes from a web page (Sec-Fetch-Site: {site})"
    elif method.upper() in _WITH_BODY and media in _SIMPLE_TYPES:
        why = (f"its body is {media}, which any web page may post; send "
               "Content-Type: application/json")
    if why is None:
        return None
    return Refusal(403, f"llmcheck proxy: request refused: {why}. The proxy spends the "
                   "upstream's key for programs on this machine, not for browsers.",
                   "browser_request_refused")


def presented_tokens(headers: Mapping[str, str]) -> list[str]:
    """The keys a request presents, the ways SDKs send them: ``Authorization:
    Bearer``, ``api-key`` (Azure), ``x-api-key``."""
    found = []
    scheme, _, value = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    for name in ("api-key", "x-api-key"):
        if headers.get(name):
            found.append(headers[name].strip())
    return found


def token_refusal(headers: Mapping[str, str], token: str) -> Refusal | None:
    """Refuse a request that does not present ``token`` (compared in constant time)."""
    expected = token.encode()
    for given in presented_tokens(headers):
        if hmac.compare_digest(given.encode(), expected):
            return None
    return Refusal(401, "Incorrect API key provided to the llmcheck proxy: give the "
                   "client the proxy's token as its API key (Authorization: Bearer, "
                   "api-key or x-api-key), not the upstream's key.", "invalid_api_key")


def path_refusal(raw_path: str) -> Refusal | None:
    """Refuse a path an upstream could resolve outside the proxy's base path: dot
    segments (also percent-encoded), empty segments, backslashes, encoded slashes
    (also encoded twice), control characters."""
    path = raw_path.partition("?")[0]
    once = unquote(path)
    twice = unquote(once)
    segments = twice.split("/")[1:]
    bad = ("\\" in twice or "%2f" in path.lower() or "//" in path
           or any(s in (".", "..") for s in segments)
           or any(ord(c) < 0x20 or ord(c) == 0x7F for c in twice))
    if not bad:
        return None
    return Refusal(400, f"llmcheck proxy: path {_shown(path)!r} is refused: a path goes "
                   "to /v1/... without '.' or '..' segments, '//', backslashes or encoded "
                   "slashes (it could reach outside the upstream's base path).",
                   "invalid_path")


def check_request(method: str, raw_path: str, headers: Mapping[str, str], host: str,
                  port: int, token: str | None) -> None:
    """Every check of a request's head, in order: Host, browser, token (when set),
    path; the first that fails is raised as a :class:`Refusal`."""
    refused = (host_refusal(headers.get("Host"), host, port)
               or browser_refusal(method, headers)
               or (token_refusal(headers, token) if token is not None else None)
               or path_refusal(raw_path))
    if refused is not None:
        raise refused


async def read_body(request: web.Request, limit: int, timeout: float) -> bytearray:
    """The request's body, read into one buffer of its announced size (no second
    copy); a :class:`Refusal` past ``limit`` bytes (413: at once when Content-Length
    says so) or when it does not arrive within ``timeout`` seconds (408)."""
    size = request.content_length
    if size is not None and size > limit:
        raise _too_large(size, limit)

    async def read() -> bytearray:
        buf = bytearray(size or 0)
        got = 0
        while True:
            chunk = await request.content.readany()
            if not chunk:
                break
            end = got + len(chunk)
            if end > limit:
                raise _too_large(end, limit)
            if size is not None and end <= size:
                buf[got:end] = chunk
            else:
                buf += chunk
            got = end
        if size is not None and got < size:
            raise Refusal(400, f"llmcheck proxy: the body ended after {got} of the "
                           f"{size} bytes its Content-Length announced.", "incomplete_body")
        return buf

    try:
        return await asyncio.wait_for(read(), timeout)
    except asyncio.TimeoutError:
        raise Refusal(408, f"llmcheck proxy: the request body did not arrive within "
                       f"{timeout:g} s.", "request_timeout") from None


def _too_large(size: int, limit: int) -> Refusal:
    return Refusal(413, f"llmcheck proxy: the request body ({size} bytes) is larger than "
                   f"the proxy's limit of {limit} bytes ({limit / 2**20:g} MiB: llmcheck proxy "
                   "--max-body-mb, FaultProxy(max_body_bytes=...)).", "request_too_large")


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_READ_TIMEOUT_S",
    "TOKEN_ENV",
    "Refusal",
    "browser_refusal",
    "check_limit",
    "check_request",
    "host_refusal",
    "path_refusal",
    "presented_tokens",
    "read_body",
    "respond",
    "token_refusal",
]
