"""What one episode was: the data every episode source produces and every path check reads.

An *episode* is a whole interaction judged as one sample: a tool loop (the model asks
for tools, they run, their results go back, until a final answer), a conversation (a
user, real or simulated, takes turns with the app), or a stream. Three sources build the
same :class:`Episode`:

- the loop runner (:mod:`llmcheck.episodes.loop`), which sees everything: tool results,
  raised errors, injected tool faults, the world state the tools changed;
- an app's own loop through ``llm_endpoint`` (:mod:`llmcheck.episodes.recorded`), rebuilt
  from the calls the proxy recorded: the tools the model asked for, with arguments, and
  the tool results the app sent back in later requests (no raised errors, no state);
- a conversation with a simulated user (:mod:`llmcheck.episodes.conversation`).

Plain data, no litellm and no pytest: checks, reports and scripts read it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from llmcheck.model.completion import Completion, Usage

__all__ = ["Episode", "Step", "StopReason", "ToolInvocation"]

StopReason = Literal[
    "final_answer",  # the model answered without asking for a tool
    "max_steps",  # the loop reached max_steps model calls
    "budget_calls", "budget_tokens", "budget_cost", "budget_time",  # the episode's budget
    "user_stopped",  # the simulated user's stop condition held (goal reached or gave up)
    "max_turns",  # the conversation reached its turn limit
    "error",  # a model call failed for good (the sample is an error)
    "recorded",  # rebuilt from recorded calls: the app decided when to stop
]

Source = Literal["loop", "recorded", "conversation"]


@dataclass
class ToolInvocation:
    """One tool call the model asked for, and what came of it."""

    name: str
    arguments: str
    """The arguments exactly as the model wrote them (a JSON string, maybe invalid)."""
    args: Any = None
    """The arguments parsed (a dict for a well-formed call), or None when they did not
    parse (:attr:`error` then says why)."""
    id: str | None = None
    result: Any = None
    """What the tool returned (the loop runner), or the text the app sent back (recorded)."""
    error: str | None = None
    """Why the tool gave no result: unknown tool, arguments that do not parse or fit the
    tool's signature, the tool raised, timed out, or an injected fault. None: it ran."""
    fault: str | None = None
    """The tool fault injected into this invocation (tool_error, tool_timeout,
    tool_garbage), or None."""
    handled: bool = True
    """False for an error the episode left unhandled: it was never reported back to the
    model (the loop stopped on it) or the model never got another turn after it."""
    duration: float = 0.0
    step: int = 0
    """The index (1-based) of the step (model call) that asked for it."""


@dataclass
class Step:
    """One model turn of an episode (or, in a conversation, one user turn)."""

    index: int
    """1-based, in the order the steps happened: reports name the first one ``step 1``."""
    role: Literal["assistant", "user"] = "assistant"
    text: str = ""
    """The message text (an assistant's answer, or what the user said)."""
    tool_calls: list[ToolInvocation] = field(default_factory=list)
    completion: Completion | None = None
    """The model call behind the step (None for a scripted user turn or a recorded step)."""
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0
    turn: int | None = None
    """In a conversation: the turn, from 1 (a user message and the app's reply)."""

    @property
    def label(self) -> str:
        """How reports name the step: ``step 2`` / ``turn 1 (user)``."""
        if self.turn is not None:
            return f"turn {self.turn}" + (" (user)" if self.role == "user" else "")
        return f"step {self.index}"


@dataclass
class Episode:
    """A whole interaction, judged as one sample."""

    steps: list[Step] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    """The conversation as the model last saw it (plus its final answer)."""
    final_text: str = ""
    """The final answer's text ('' when the episode ended without one)."""
    stop_reason: StopReason = "final_answer"
    state: Any = None
    """The world the tools act on (the loop runner's ``state``), after the episode."""
    source: Source = "loop"
    duration: float = 0.0
    """Wall seconds from the episode's start to its end."""
    ended_by: str | None = None
    """A conversation with a simulated user: how the user ended it (``done``: its goal
    reached, ``gave_up``, ``script_end``, ``stop``: the stop condition held), or None."""

    @property
    def tool_calls(self) -> list[ToolInvocation]:
        """Every tool invocation, in the order the model asked for them."""
        return [call for step in self.steps for call in step.tool_calls]

    @property
    def tool_names(self) -> list[str]:
        return [call.name for call in self.tool_calls]

    @property
    def model_steps(self) -> list[Step]:
        return [s for s in self.steps if s.role == "assistant"]

    @property
    def finished(self) -> bool:
        """Whether the episode ended with a final answer (or the user's stop condition)."""
        return self.stop_reason in ("final_answer", "user_stopped", "recorded")

    @property
    def usage(self) -> Usage:
        prompt = sum(s.usage.prompt_tokens or 0 for s in self.steps)
        completion = sum(s.usage.completion_tokens or 0 for s in self.steps)
        return Usage(prompt, completion)

    def summary(self) -> dict[str, Any]:
        """What the sample's record keeps of it
        (:class:`~llmcheck.records.schema.EpisodeRecord`)."""
        return {
            "source": self.source, "stop_reason": self.stop_reason,
            "steps": len(self.model_steps),
            "turns": len({s.turn for s in self.steps if s.turn is not None}),
            "tools": self.tool_names,
            "tool_errors": sum(1 for c in self.tool_calls if c.error is not None),
            "unhandled_tool_errors": sum(1 for c in self.tool_calls
                                         if c.error is not None and not c.handled),
            "duration": self.duration,
        }
