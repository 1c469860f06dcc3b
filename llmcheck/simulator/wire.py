"""The simulator's answers as OpenAI puts them on the wire: chat completion bodies,
streamed chunks (SSE events), embeddings lists and model entries.

Pure functions of an :class:`~llmcheck.simulator.engine.Decision` (what to answer) and
the ids the server hands out; the server (:mod:`llmcheck.simulator.server`) only
decides when and how to send them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

from llmcheck.simulator.embeddings import embed, embedding_base64
from llmcheck.simulator.engine import Answer, Decision, ToolCallOut
from llmcheck.simulator.request import approx_tokens

MODEL_CREATED = 1_700_000_000
"""The ``created`` stamp of every model entry (any name is served, none was created)."""
_PIECE = re.compile(r"\S+\s*|\s+")
"""A streamed content delta: a word with its trailing space, or a run of spaces."""


def dumps(obj: Any) -> bytes:
    """Compact JSON, UTF-8, as OpenAI sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def usage(decision: Decision) -> dict[str, int]:
    """The ``usage`` object of a completion: prompt, completion and total tokens."""
    completion = decision.completion_tokens
    return {
        "prompt_tokens": decision.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": decision.prompt_tokens + completion,
    }


def completion_body(decision: Decision, completion_id: str, fingerprint: str) -> dict[str, Any]:
    """A non-streamed ``chat.completion``: every choice, with its tool calls."""
    choices = []
    for index, answer in enumerate(decision.answers):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.content,
            "refusal": None,
        }
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in answer.tool_calls
            ]
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": decision.model,
        "system_fingerprint": fingerprint,
        "choices": choices,
        "usage": usage(decision),
    }


def chunk_events(decision: Decision, completion_id: str, fingerprint: str) -> list[bytes]:
    """The SSE events of a streamed completion, in OpenAI's chunk format, ``[DONE]`` last."""
    return [event for event, _ in paced_events(decision, completion_id, fingerprint)]


def paced_events(decision: Decision, completion_id: str,
                 fingerprint: str) -> list[tuple[bytes, bool]]:
    """:func:`chunk_events`, each with whether it carries a token (text or a piece of a
    tool call): the events a paced stream waits before."""
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": decision.model,
        "system_fingerprint": fingerprint,
    }
    usage_field: dict[str, Any] = {"usage": None} if decision.include_usage else {}
    events: list[tuple[bytes, bool]] = []

    def emit(index: int, delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        event = b"data: " + dumps({**base, "choices": [choice], **usage_field}) + b"\n\n"
        events.append((event, bool(delta.get("content") or delta.get("tool_calls"))))

    for index, answer in enumerate(decision.answers):
        _emit_answer(emit, index, answer)
    if decision.include_usage:
        final = {**base, "choices": [], "usage": usage(decision)}
        events.append((b"data: " + dumps(final) + b"\n\n", False))
    events.append((b"data: [DONE]\n\n", False))
    return events


def _emit_answer(emit: Any, index: int, answer: Answer) -> None:
    """Stream one choice: role, content pieces, tool-call pieces, then the finish chunk."""
    if answer.tool_calls and not answer.content:
        first = answer.tool_calls[0]
        emit(
            index,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call_header(0, first)],
                "refusal": None,
            },
        )
        calls = [(0, first, False), *((i, c, True) for i, c in enumerate(answer.tool_calls) if i)]
    else:
        emit(index, {"role": "assistant", "content": "", "refusal": None})
        for piece in _PIECE.findall(answer.content or ""):
            emit(index, {"content": piece})
        calls = [(i, c, True) for i, c in enumerate(answer.tool_calls)]
    for call_index, call, announce in calls:
        if announce:
            emit(index, {"tool_calls": [_call_header(call_index, call)]})
        args = call.arguments
        for start in range(0, len(args), 16):
            emit(
                index,
                {
                    "tool_calls": [
                        {"index": call_index, "function": {"arguments": args[start : start + 16]}}
                    ]
                },
            )
    emit(index, {}, answer.finish_reason)


def _call_header(call_index: int, call: ToolCallOut) -> dict[str, Any]:
    """The first delta of a streamed tool call: its id and name, no arguments yet."""
    return {
        "index": call_index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }


def model_entry(name: str) -> dict[str, Any]:
    """One entry of ``GET /v1/models``."""
    return {"id": name, "object": "model", "created": MODEL_CREATED, "owned_by": "llmcheck"}


def embeddings_body(texts: Sequence[str], model: str, dimensions: int,
                    encoding_format: str) -> dict[str, Any]:
    """The ``list`` of embeddings of ``texts`` (floats, or base64 float32)."""
    data = []
    for index, text in enumerate(texts):
        vector = embed(text, dimensions)
        data.append({
            "object": "embedding",
            "index": index,
            "embedding": embedding_base64(vector) if encoding_format == "base64" else vector,
        })
    tokens = sum(approx_tokens(t) for t in texts)
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


__all__ = [
    "MODEL_CREATED",
    "chunk_events",
    "completion_body",
    "dumps",
    "embeddings_body",
    "model_entry",
    "paced_events",
    "usage",
]
