"""An app's own tool loop, rebuilt as an :class:`~llmcheck.episodes.episode.Episode` from
the model calls the sample recorded.

An app with its own loop (the openai SDK in a ``while`` loop, a LangChain agent) calls the
model through ``llm_endpoint``; every call, there or through the ``llm`` client, is noted
in the sample by the one accounting path with what it sent and got back
(:class:`~llmcheck.core.exchanges.Exchange`, with the answer's tool calls). That is enough
to rebuild the path: each answer is a step, its tool calls (name, arguments, id) are the
step's invocations, and each invocation's result is the ``tool`` message with the matching
``tool_call_id`` that the app sent back in a later request. The last answer without tool
calls is the final answer.

What is *not* seen: the tools running. A recorded invocation has a ``result`` (the text
the app sent back) but never an ``error`` (an app reports a failed tool to the model in
whatever words it likes), and the episode has no ``state``: checks of tool errors and of
the world's final state need the loop runner, or the app's own state passed to
:func:`~llmcheck.episodes.checks.assert_final_state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmcheck.core.context import current_sample
from llmcheck.core.exchanges import Exchange, _text, answer_text
from llmcheck.episodes.episode import Episode, Step, ToolInvocation
from llmcheck.errors import UsageError
from llmcheck.model.completion import Usage, parse_json_text

__all__ = ["rebuild", "recorded_episode"]


def recorded_episode() -> Episode:
    """The running sample's episode, rebuilt from the app's model calls so far.

    Call it in an LLM test's body after the app's loop ran: every call of role ``app``
    (not a simulated user's or a judge's) that got an answer is one step, in call order.
    The episode (``source="recorded"``, ``stop_reason="recorded"``) goes into the
    sample's record like a loop runner's, and the path checks read it.
    """
    ctx = current_sample()
    if ctx is None:
        raise UsageError("recorded_episode() rebuilds the running sample's episode from "
                         "its recorded model calls: call it in the body of an LLM test "
                         "(marked @llmcheck.repeat(...)) after the app's loop ran")
    episode = rebuild(list(ctx.exchanges), list(ctx.calls))
    from llmcheck.records.schema import EpisodeRecord

    ctx.note_episode(EpisodeRecord(**episode.summary()))
    return episode


def rebuild(exchanges: Sequence[Exchange], calls: Sequence[Any] = ()) -> Episode:
    """The episode of the app's answered calls among ``exchanges`` (``calls``: the
    sample's CallRecords, for each step's tokens and latency)."""
    app = sorted((e for e in exchanges if e.role == "app"), key=lambda e: e.call)
    results = _tool_results(app)
    steps: list[Step] = []
    for e in (e for e in app if e.answer is not None):
        index = len(steps) + 1
        record = calls[e.call] if 0 <= e.call < len(calls) else None
        steps.append(Step(
            index=index, text=_content(e.answer or "", e.tool_calls),
            tool_calls=[ToolInvocation(name=name, arguments=arguments, args=_parsed(arguments),
                                       id=call_id, result=results.get(call_id or ""),
                                       step=index)
                        for name, arguments, call_id in e.tool_calls],
            usage=Usage(getattr(record, "prompt_tokens", None),
                        getattr(record, "completion_tokens", None)),
            latency=float(getattr(record, "latency", 0.0) or 0.0)))
    final = steps[-1].text if steps and not steps[-1].tool_calls else ""
    last = next((e for e in reversed(app) if e.answer is not None), None)
    messages = _messages(last.messages) if last is not None else []
    if last is not None and final:
        messages.append({"role": "assistant", "content": final})
    return Episode(steps=steps, messages=messages, final_text=final, stop_reason="recorded",
                   source="recorded", duration=sum(s.latency for s in steps))


def _tool_results(exchanges: Sequence[Exchange]) -> dict[str, str]:
    """``tool_call_id`` -> the text of the ``tool`` message the app sent back for it (the
    first request that carried it)."""
    results: dict[str, str] = {}
    for e in exchanges:
        for message in _messages(e.messages):
            call_id = message.get("tool_call_id")
            if message.get("role") == "tool" and isinstance(call_id, str):
                results.setdefault(call_id, _text(message.get("content")))
    return results


def _messages(messages: Any) -> list[dict[str, Any]]:
    """A request's messages as a list of dicts (a bare prompt as one user message)."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if not isinstance(messages, (list, tuple)):
        return []
    return [m for m in messages if isinstance(m, dict)]


def _content(answer: str, tool_calls: Sequence[tuple[str, str, str | None]]) -> str:
    """An answer's own text: the recorded answer without the tool calls written after it
    (:func:`~llmcheck.core.exchanges.answer_text`)."""
    if not tool_calls:
        return answer
    written = answer_text(None, ((name, arguments) for name, arguments, _ in tool_calls))
    return answer.removesuffix(written).removesuffix("\n")


def _parsed(arguments: str) -> Any:
    """The arguments as strict JSON, or None when the model wrote something else."""
    try:
        return parse_json_text(arguments, allow_fence=False)
    except ValueError:
        return None
