"""What a failing sample saw: the prompt and the answer of its model calls.

Every model call, through llmcheck's client or an app's own client through
``llm_endpoint``, is noted in its sample by the one accounting path
(:func:`llmcheck.model.accounting.record_call`) with what was sent and what came back,
as they are: nothing is copied, redacted or cut while the sample runs. When the sample
ends, the runner keeps them (:func:`keep`) only if it failed or errored: its last
:data:`KEEP_CALLS` calls, every text redacted and then cut in the middle to the
``--llm-keep-io`` limit. Redaction comes first, so a cut never leaves a piece of a key
that redaction would no longer recognise. A passing sample keeps nothing: the report
does not grow with every answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmcheck.redact import redact

if TYPE_CHECKING:
    from llmcheck.records.schema import ExchangeRecord

KEEP_CALLS = 3
"""Calls kept per failing sample: the last ones (a tool loop's last call carries the
conversation so far; a judge's call follows the answer it judged)."""
KEEP_MESSAGES = 6
"""Messages kept per call: the first (the system prompt or the task) and the last ones."""


@dataclass(frozen=True)
class Exchange:
    """One call's request and answer as the call path saw them (not yet redacted)."""

    call: int
    """The call's number in the sample's calls."""
    via: str | None
    messages: Any
    """The ``messages`` the request carried, in whatever shape the caller sent."""
    answer: str | None
    """The answer's text (:func:`answer_text`), or None: no answer came."""
    role: str = "app"
    """Who made the call: ``app``, ``user`` (a simulated user) or ``judge``."""
    tool_calls: tuple[tuple[str, str, str | None], ...] = ()
    """The answer's tool calls as ``(name, arguments, id)``: what an app's own loop is
    rebuilt from (:mod:`llmcheck.episodes.recorded`)."""


def answer_text(text: str | None, tool_calls: Iterable[tuple[str, str]] = ()) -> str:
    """An answer as one text: its content, then each tool call as ``name(arguments)``."""
    parts = [text] if text else []
    parts += [f"[tool call] {name}({arguments})" for name, arguments in tool_calls]
    return "\n".join(parts)


def cut_middle(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and end (``limit``
    characters in all) around a line that says how many characters were cut."""
    if len(text) <= limit:
        return text
    head = (limit + 1) // 2
    tail = limit - head
    end = text[len(text) - tail:] if tail else ""
    return f"{text[:head]}\n[… {len(text) - limit:,} of {len(text):,} characters cut …]\n{end}"


def _text(value: Any) -> str:
    """A message's content as text: content parts joined (an image as ``[image_url]``),
    anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict):
                parts.append(f"[{part.get('type', 'part')}]")
            else:
                parts.append(_text(part))
        return "\n".join(parts)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _message(message: Any) -> tuple[str, str]:
    """A request message as ``(role, text)``, its tool calls written out."""
    if not isinstance(message, dict):
        return "?", _text(message)
    text = _text(message.get("content"))
    calls = []
    for call in message.get("tool_calls") or []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict):
            calls.append((str(fn.get("name") or ""), _text(fn.get("arguments"))))
    return str(message.get("role") or "?"), answer_text(text, calls)


def _record(exchange: Exchange, limit: int) -> ExchangeRecord:
    # imported here: the call path imports this module, and loads no records with it
    from llmcheck.records.schema import ExchangeRecord, MessageRecord

    messages = exchange.messages
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    elif not isinstance(messages, (list, tuple)):
        messages = [] if messages is None else [messages]
    left_out = max(0, len(messages) - KEEP_MESSAGES)
    if left_out:
        messages = [messages[0], *messages[len(messages) - KEEP_MESSAGES + 1:]]

    def shown(text: str) -> str:
        return cut_middle(redact(text), limit)

    return ExchangeRecord(
        call=exchange.call, via=exchange.via, messages_left_out=left_out,
        messages=[MessageRecord(role=shown(role), content=shown(text))
                  for role, text in map(_message, messages)],
        answer=None if exchange.answer is None else shown(exchange.answer))


def keep(exchanges: list[Exchange], limit: int) -> list[ExchangeRecord]:
    """The records of the last :data:`KEEP_CALLS` of ``exchanges``, every text redacted
    and cut to ``limit`` characters; none when ``limit`` is 0."""
    if limit <= 0:
        return []
    last = sorted(exchanges, key=lambda e: e.call)[-KEEP_CALLS:]
    return [_record(e, limit) for e in last]
