"""Conversations: a message list that takes turns with the app under test.

:class:`Conversation` keeps the messages and asks the app for a reply at each
:meth:`~Conversation.say`; :meth:`~Conversation.episode` turns what happened into an
:class:`~llmcheck.episodes.episode.Episode` (``source="conversation"``: a user step and
an assistant step per turn), so a whole conversation is one sample, checked by the
conversation checks (:mod:`llmcheck.episodes.dialogue_checks`) and the path checks.

The app is an :class:`~llmcheck.model.client.LLMClient` (each turn is
``llm.chat(messages)``) or any callable from the message list to a reply: a ``str``, a
:class:`~llmcheck.model.completion.Completion`, or an Episode (a tool loop such as
``lambda messages: llmcheck.run_tool_loop(llm, messages, tools)``: its final answer is
the reply, its tool calls the turn's). A simulated user drives one with
:func:`~llmcheck.episodes.user.run_conversation`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from llmcheck.checks.base import short_repr
from llmcheck.core.context import current_sample
from llmcheck.episodes.episode import Episode, Step, StopReason, ToolInvocation
from llmcheck.errors import UsageError
from llmcheck.model.client import LLMClient
from llmcheck.model.completion import Completion, Usage

__all__ = ["Conversation"]

App = Callable[[list[dict[str, Any]]], Any]


def _caller(app: Any) -> App:
    """The app as a function from the messages to its reply."""
    chat = getattr(app, "chat", None)
    if isinstance(app, LLMClient) or (callable(chat) and not callable(app)):
        return lambda messages: chat(messages)  # type: ignore[misc]
    if callable(app):
        return app  # type: ignore[no-any-return]
    raise UsageError(f"Conversation: app must be an LLMClient (the llm fixture) or a "
                     f"callable from the message list to a reply, got "
                     f"{type(app).__name__} {short_repr(app)}")


def text_of(what: str, value: Any) -> str:
    """``value`` if it is a str, else a UsageError naming ``what``."""
    if not isinstance(value, str):
        raise UsageError(f"{what} must be a str, got {type(value).__name__} "
                         f"{short_repr(value)}")
    return value


class Conversation:
    """A conversation with ``app`` (see the module doc), opened by an optional ``system``
    prompt. ``say(text)`` sends a user message and returns the app's reply."""

    def __init__(self, app: Any, *, system: str | None = None) -> None:
        self.app = app
        self._ask = _caller(app)
        self.messages: list[dict[str, Any]] = []
        """The conversation so far, as the app sees it (the system prompt first)."""
        if system is not None:
            self.messages.append({"role": "system",
                                  "content": text_of("Conversation: system", system)})
        self.steps: list[Step] = []
        self._started: float | None = None
        self._ended: float | None = None

    @property
    def turns(self) -> int:
        """Turns taken: user messages the app has replied to."""
        return sum(1 for s in self.steps if s.role == "assistant")

    @property
    def replies(self) -> list[str]:
        """The app's replies, in order."""
        return [s.text for s in self.steps if s.role == "assistant"]

    def say(self, text: str, *, completion: Completion | None = None,
            latency: float = 0.0) -> str:
        """Send ``text`` as the user's next message; return the app's reply. (A simulated
        user passes the ``completion`` that wrote the message and its ``latency``.)"""
        text_of("Conversation.say: text", text)
        if self._started is None:
            self._started = time.perf_counter()
        turn = self.turns + 1
        self.steps.append(Step(index=len(self.steps) + 1, role="user", text=text,
                               completion=completion, latency=latency, turn=turn,
                               usage=completion.usage if completion else Usage()))
        self.messages.append({"role": "user", "content": text})
        started = time.perf_counter()
        reply = self._ask(list(self.messages))  # a copy: the app may change its list
        step = _reply_step(reply, len(self.steps) + 1, turn)
        step.latency = time.perf_counter() - started
        self.steps.append(step)
        self.messages.append({"role": "assistant", "content": step.text})
        self._ended = time.perf_counter()
        return step.text

    def episode(self, stop_reason: StopReason = "user_stopped", *,
                ended_by: str | None = None) -> Episode:
        """The conversation so far as an :class:`Episode` (``source="conversation"``),
        also kept in the running sample's record (with its ``episode`` duration).
        ``stop_reason``: ``user_stopped`` (the default: whoever spoke for the user
        stopped), ``max_turns`` or ``error``."""
        duration = (self._ended or time.perf_counter()) - (self._started or
                                                           time.perf_counter())
        replies = self.replies
        episode = Episode(steps=list(self.steps), messages=[dict(m) for m in self.messages],
                       final_text=replies[-1] if replies else "", stop_reason=stop_reason,
                       source="conversation", duration=max(0.0, duration),
                       ended_by=ended_by)
        _note(episode)
        return episode

    def __repr__(self) -> str:
        return f"<Conversation {self.turns} turn(s) with {short_repr(self.app)}>"


def _reply_step(reply: Any, index: int, turn: int) -> Step:
    """The assistant step of one app reply (a str, a Completion or an Episode)."""
    if isinstance(reply, str):
        return Step(index=index, text=reply, turn=turn)
    if isinstance(reply, Completion):
        calls = [ToolInvocation(name=c.name, arguments=c.arguments, id=c.id, step=index)
                 for c in reply.tool_calls]
        return Step(index=index, text=reply.text, completion=reply, usage=reply.usage,
                    tool_calls=calls, turn=turn)
    if isinstance(reply, Episode):  # a tool loop answered: its tool calls are the turn's
        calls = [dataclasses.replace(c, step=index) for c in reply.tool_calls]
        return Step(index=index, text=reply.final_text, usage=reply.usage, tool_calls=calls,
                    turn=turn)
    raise UsageError(f"Conversation: the app returned {type(reply).__name__} "
                     f"{short_repr(reply)}; it must return a str, a Completion or an Episode "
                     "(its reply to the messages)")


def _note(episode: Episode) -> None:
    """Keep the episode in the running sample's record, with its ``episode`` duration."""
    ctx = current_sample()
    if ctx is None:
        return
    from llmcheck.records.schema import EpisodeRecord

    ctx.note_episode(EpisodeRecord(**episode.summary()))
    ctx.record_duration("episode", episode.duration)
