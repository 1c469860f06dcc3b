"""What a model call returns: :class:`Completion`, and its :class:`ToolCall` s.

Plain data, independent of litellm, so checks, caches and reports can build
and read completions without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmcheck.errors import UsageError
from llmcheck.model.jsontext import read_json, strip_code_fence

__all__ = ["Completion", "ToolCall", "Usage", "chat_messages", "parse_json_text",
           "strip_code_fence"]


def chat_messages(value: Any, caller: str) -> list[dict[str, Any]]:
    """What a call that asks a model takes: a prompt (one user message) or a non-empty
    list of chat messages (dicts with a string ``role``), as a new list of copied
    messages; a :class:`~llmcheck.errors.UsageError` naming ``caller`` otherwise."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, list) and value and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in value):
        return [dict(m) for m in value]
    shown = repr(value)
    raise UsageError(f"{caller}: give a prompt (str) or a non-empty list of messages (dicts "
                     f"with 'role' and 'content'), got {type(value).__name__} "
                     f"{shown if len(shown) <= 120 else shown[:117] + '...'}")


def parse_json_text(text: str, *, allow_fence: bool = True) -> Any:
    """Parse ``text`` as JSON under the rules of :mod:`llmcheck.model.jsontext`
    (strict RFC 8259: no NaN/Infinity, no duplicated keys); with ``allow_fence``,
    also a markdown code fence that is the whole text. Raises
    :class:`~llmcheck.model.jsontext.JSONTextError` (a ``ValueError``) naming
    what broke and where."""
    return read_json(text, wrapping="fence" if allow_fence else "bare").value


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for."""

    name: str
    arguments: str
    """The arguments exactly as the model wrote them (a JSON string, maybe invalid)."""
    id: str | None = None

    def args(self) -> Any:
        """The arguments parsed as strict JSON (``ValueError`` naming where they break)."""
        return parse_json_text(self.arguments, allow_fence=False)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass(frozen=True)
class Completion:
    """A model's answer and what it cost to get it."""

    text: str
    model: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    """Dollars, from litellm's offline cost map; ``None`` when the model is unknown."""
    latency: float = 0.0
    """Seconds from the first attempt's request to the full answer (retries included)."""
    time_to_first_token: float | None = None
    """Seconds to the first streamed chunk (``stream=True`` only)."""
    retries: int = 0
    cached: bool = False
    gaps: tuple[float, ...] = ()
    """Seconds between consecutive streamed chunks that carried tokens (``stream=True``
    only; one fewer than the chunks)."""

    @property
    def chunks(self) -> int | None:
        """Streamed chunks that carried tokens (None: not streamed, or no token came)."""
        return None if self.time_to_first_token is None else len(self.gaps) + 1

    @property
    def max_gap(self) -> float | None:
        """The longest wait between two streamed chunks (0.0 for one chunk)."""
        return None if self.time_to_first_token is None else max(self.gaps, default=0.0)

    def json(self, *, allow_fence: bool = True) -> Any:
        """The answer parsed as strict JSON (see :mod:`llmcheck.model.jsontext`),
        tolerating a markdown code fence around the whole answer unless
        ``allow_fence=False``; ``ValueError`` naming where it broke."""
        return parse_json_text(self.text, allow_fence=allow_fence)

    def tool_call(self, name: str) -> ToolCall | None:
        """The first call of tool ``name``, or ``None``."""
        return next((c for c in self.tool_calls if c.name == name), None)

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "tool_calls": [{"name": c.name, "arguments": c.arguments, "id": c.id}
                           for c in self.tool_calls],
            "usage": {"prompt_tokens": self.usage.prompt_tokens,
                      "completion_tokens": self.usage.completion_tokens},
            "cost": self.cost,
            "latency": self.latency,
            "time_to_first_token": self.time_to_first_token,
            "retries": self.retries,
            "cached": self.cached,
            "gaps": list(self.gaps),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        return cls(
            text=data["text"],
            model=data["model"],
            finish_reason=data.get("finish_reason"),
            tool_calls=tuple(ToolCall(c["name"], c["arguments"], c.get("id"))
                             for c in data.get("tool_calls", [])),
            usage=Usage(**data.get("usage", {})),
            cost=data.get("cost"),
            latency=data.get("latency", 0.0),
            time_to_first_token=data.get("time_to_first_token"),
            retries=data.get("retries", 0),
            cached=data.get("cached", False),
            gaps=tuple(float(g) for g in data.get("gaps") or ()),
        )
