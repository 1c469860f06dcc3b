"""How a sample's ending reads in its record: which injected faults are to blame,
and the exception's message, type name and traceback as a user should see them."""

from __future__ import annotations

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
    notes its last attempt's answer even when an injected ``truncated`` made it."""
    damaged = {f.call for f in faults if f.kind != "slow"}
    usable = [a for a in answers if a not in damaged]
    return [f.model_copy(update={"recovered": True})
            if any(a > f.call or (a == f.call and f.kind == "slow") for a in usable) else f
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
