"""A simulated user: a persona with a goal that drives a conversation with the app.

A :class:`SimulatedUser` is played by a model or by a script of turns.

- **Played by a model** (an :class:`~llmcheck.model.client.LLMClient`, a model name, or
  None: the session's client, the simulator by default): the user model gets a system
  prompt with the persona and the goal and sees the conversation with the roles swapped
  (the app's replies are its "user" messages). It ends the conversation by answering
  with :data:`DONE` (its goal reached) or :data:`GAVE_UP`. Its calls carry the sample's
  seed (the client seeds every call by the sample), so a sample replays the same
  conversation, and they run under the call role ``user``: counted, cached and budgeted
  like the app's, reported apart, and not fault-injected unless ``faults=True``.
- **Played by a script** (a list of messages): the conversation ends after the last one.

:func:`run_conversation` drives the app with the user, turn by turn, until the user
stops, the ``stop`` condition holds after an app reply, or ``max_turns`` is reached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from llmcheck.checks.base import short_repr
from llmcheck.core.context import call_role
from llmcheck.episodes.conversation import Conversation, text_of
from llmcheck.episodes.episode import Episode
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

__all__ = ["DONE", "GAVE_UP", "SimulatedUser", "run_conversation"]

DONE = "<<DONE>>"
"""What a model-played user answers once its goal is reached."""
GAVE_UP = "<<GAVE UP>>"
"""What a model-played user answers when it gives up."""
_STOP = re.compile(r"<<\s*(DONE|GAVE\s*UP)\s*>>", re.IGNORECASE)

SYSTEM_PROMPT = """\
You are playing a user who talks to an AI assistant, to test the assistant. Stay in \
character: you are the user, never the assistant.
Persona: {persona}
Your goal: {goal}
Write only your next message to the assistant: short and natural, in the persona's \
words. Answer the assistant's questions as the persona would.
When your goal is reached, reply with {done}. If you give up (the assistant cannot \
help you), reply with {gave_up}."""
OPENING = "[The conversation starts. Write your first message to the assistant.]"


def _turns(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"max_turns must be an integer >= 1 (user messages the app "
                         f"answers), got {short_repr(value)}")
    return value


class SimulatedUser:
    """A user with a ``persona`` and a ``goal``, played by ``model`` or by ``script``.

    ``model``: an LLMClient, a model name (resolved with the session's default client),
    or None (the session's client). ``script``: the user's messages, in order (no model
    is called). ``stop(conversation) -> bool`` is checked after each app reply (e.g. the
    goal reached); ``max_turns`` bounds the conversation; ``first_message`` opens it
    without a model call; ``faults=True`` lets the test's fault plan hit the user's
    calls too (they then take fault-call numbers, shifting the app's).
    """

    def __init__(self, persona: str, goal: str, *, model: Any = None,
                 script: Sequence[str] | None = None,
                 stop: Callable[[Conversation], Any] | None = None, max_turns: int = 8,
                 first_message: str | None = None, faults: bool = False) -> None:
        if not isinstance(persona, str) or not persona.strip():
            raise UsageError(f"SimulatedUser: persona must be a non-empty str (who the user "
                             f"is), got {short_repr(persona)}")
        if not isinstance(goal, str) or not goal.strip():
            raise UsageError(f"SimulatedUser: goal must be a non-empty str (what the user "
                             f"wants), got {short_repr(goal)}")
        if script is not None and model is not None:
            raise UsageError("SimulatedUser: give model or script, not both (a script plays "
                             "the user without a model)")
        if script is not None and (isinstance(script, str) or not isinstance(script, Sequence)
                                   or not script or not all(isinstance(t, str)
                                                            for t in script)):
            raise UsageError(f"SimulatedUser: script must be a non-empty list of str (the "
                             f"user's messages), got {short_repr(script)}")
        if model is not None and not (isinstance(model, str) and model.strip()) and \
                not callable(getattr(model, "chat", None)):
            raise UsageError(f"SimulatedUser: model must be a model name, an LLMClient or "
                             f"None (the session's client), got {short_repr(model)}")
        if stop is not None and not callable(stop):
            raise UsageError(f"SimulatedUser: stop must be a callable taking the "
                             f"Conversation, got {short_repr(stop)}")
        if first_message is not None:
            text_of("SimulatedUser: first_message", first_message)
        if not isinstance(faults, bool):
            raise UsageError(f"SimulatedUser: faults must be True or False, got "
                             f"{short_repr(faults)}")
        self.persona, self.goal = persona, goal
        self.model = model
        self.script = None if script is None else list(script)
        self.stop = stop
        self.max_turns = _turns(max_turns)
        self.first_message = first_message
        self.faults = faults

    def system_prompt(self) -> str:
        """What the user model is told: the persona, the goal and the stop tokens."""
        return SYSTEM_PROMPT.format(persona=self.persona, goal=self.goal, done=DONE,
                                    gave_up=GAVE_UP)

    def prompt(self, conversation: Conversation) -> list[dict[str, Any]]:
        """The messages the user model sees: its instructions, then the conversation
        with the roles swapped (the app's replies come to it as "user" messages)."""
        swapped = {"user": "assistant", "assistant": "user"}
        return [{"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": OPENING},
                *({"role": swapped[m["role"]], "content": m["content"]}
                  for m in conversation.messages if m.get("role") in swapped)]

    def next_message(self, conversation: Conversation
                     ) -> tuple[str, str | None, Completion | None]:
        """The user's next message, and how the user ends the conversation instead
        (``done``, ``gave_up``, ``script_end``; None: it goes on), and the completion
        that wrote it (None for a scripted or given message)."""
        said = conversation.turns
        if said == 0 and self.first_message is not None:
            return self.first_message, None, None
        if self.script is not None:
            if said >= len(self.script):
                return "", "script_end", None
            return self.script[said], None, None
        with call_role("user", faults=self.faults):
            completion = self._client().chat(self.prompt(conversation))
        found = _STOP.search(completion.text)
        if found is None:
            return completion.text.strip(), None, completion
        ended = "done" if found.group(1).upper() == "DONE" else "gave_up"
        return _STOP.sub("", completion.text).strip(), ended, completion

    def _client(self) -> Any:
        if self.model is None or isinstance(self.model, str):
            from llmcheck.model.client import default_client

            return default_client(self.model)
        return self.model

    def __repr__(self) -> str:
        how = "script" if self.script is not None else f"model {short_repr(self.model)}"
        return f"<SimulatedUser {short_repr(self.persona)} ({how})>"


def run_conversation(app: Any, user: SimulatedUser, *, max_turns: int | None = None
                     ) -> Episode:
    """Let ``user`` talk with ``app`` (an LLMClient, a callable from the messages to a
    reply, or a :class:`Conversation` with its system prompt) until the user stops, its
    ``stop`` condition holds, or ``max_turns`` (default: the user's) turns are taken.

    Returns the :class:`Episode` (``stop_reason`` ``user_stopped`` or ``max_turns``;
    ``ended_by`` says how the user stopped), kept in the sample's record with its
    ``episode`` duration. If the app or the user model raises, the episode so far is
    kept (``stop_reason="error"``) and the error goes on."""
    if not isinstance(user, SimulatedUser):
        raise UsageError(f"run_conversation: user must be a SimulatedUser, got "
                         f"{short_repr(user)}")
    limit = user.max_turns if max_turns is None else _turns(max_turns)
    conversation = app if isinstance(app, Conversation) else Conversation(app)
    try:
        while conversation.turns < limit:
            text, ended, completion = user.next_message(conversation)
            if ended is not None:
                return conversation.episode("user_stopped", ended_by=ended)
            conversation.say(text, completion=completion,
                             latency=completion.latency if completion else 0.0)
            if user.stop is not None and user.stop(conversation):
                return conversation.episode("user_stopped", ended_by="stop")
    except BaseException:
        conversation.episode("error")
        raise
    return conversation.episode("max_turns")
