"""Streams: ``assert_stream_matches``.

A streamed answer is assembled from chunks by the client (or the app's SDK), a path
that a plain answer never takes: a chunk dropped, doubled or cut at the wrong place
changes the text a user sees. The check asks the same question twice, streamed and
not, with the same seed, and requires the same answer.

It means something only where the provider honours seeds (the same seed and messages
give the same answer; the simulator does, for streamed and plain calls alike; many
hosted models do only on a best-effort basis). ``verify_seed=True`` asks the plain
question a second time first: if the two plain answers differ, the provider does not
honour seeds, and the check fails saying so rather than blaming the stream (a
failure, not a pass: a check that cannot tell must not look like a passing one).
"""

from __future__ import annotations

import random
from typing import Any

from llmcheck.checks.base import conclude, excerpt_around, short_repr
from llmcheck.core.context import current_sample
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion, chat_messages

NAME = "stream_matches"


def assert_stream_matches(llm: Any, messages_or_prompt: str | list[dict[str, Any]], *,
                          verify_seed: bool = False, **params: Any) -> Completion:
    """Check that a streamed call answers exactly what an unstreamed one does; return the
    streamed :class:`Completion` (its ``time_to_first_token``, ``gaps`` and ``chunks``
    say how the stream went).

    ``llm`` is the model client (the ``llm`` fixture); ``messages_or_prompt`` a prompt
    or a list of chat messages; ``params`` go with both calls (``temperature``,
    ``tools``, ...). Both calls carry the same seed: the sample's (the client sends it),
    a ``seed`` given in ``params``, or outside a sample one drawn here. The texts and
    the tool calls (names and arguments; ids may differ) must be equal.

    ``verify_seed=True`` makes a second unstreamed call first: if the two plain answers
    differ, the provider does not honour seeds and the check fails with a message that
    says so. Recorded as ``stream_matches`` (``value``: the streamed text's length, or
    ``seed_not_honoured``); a failing message names the first character that differs.
    """
    __tracebackhide__ = True
    messages = chat_messages(messages_or_prompt, "assert_stream_matches")
    if not callable(getattr(llm, "chat", None)):
        raise UsageError(f"assert_stream_matches: llm must be the model client (the llm "
                         f"fixture, an LLMClient), got {type(llm).__name__} {short_repr(llm)}")
    if not isinstance(verify_seed, bool):
        raise UsageError(f"assert_stream_matches: verify_seed must be True or False, got "
                         f"{verify_seed!r}")
    if "stream" in params:
        raise UsageError("assert_stream_matches: do not pass stream=; the check makes one "
                         "streamed and one unstreamed call itself")
    if "seed" not in params and current_sample() is None:
        params["seed"] = random.randrange(2**31)  # outside a sample nobody else sends one
    seed = params.get("seed", getattr(current_sample(), "seed", None))
    plain = llm.chat(messages, **params)
    again = llm.chat(messages, **params) if verify_seed else plain
    streamed = llm.chat(messages, stream=True, **params)
    if not all(isinstance(c, Completion) for c in (plain, again, streamed)):
        raise UsageError("assert_stream_matches: llm.chat must return Completions, got "
                         f"{type(streamed).__name__}")
    if _answer(again) != _answer(plain):
        conclude(NAME, False, "the provider does not honour seeds: two unstreamed calls "
                 f"with seed {seed} answered differently ({_difference(plain, again)}), so "
                 "a streamed answer cannot be compared with an unstreamed one",
                 "seed_not_honoured")
    elif _answer(streamed) == _answer(plain):
        conclude(NAME, True, value=len(streamed.text))
    else:
        conclude(NAME, False, f"the streamed answer differs from the unstreamed one with "
                 f"the same seed ({seed}): {_difference(streamed, plain)}"
                 + ("" if verify_seed else "; if the provider does not honour seeds, "
                    "verify_seed=True tells"), len(streamed.text))
    return streamed


def _answer(completion: Completion) -> tuple[str, tuple[tuple[str, str], ...]]:
    return completion.text, tuple((c.name, c.arguments) for c in completion.tool_calls)


def _difference(first: Completion, second: Completion) -> str:
    """Where two answers part: the first differing character of the texts, else the
    tool calls."""
    a, b = first.text, second.text
    if a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                  min(len(a), len(b)))
        return (f"{len(a)} vs {len(b)} characters, first different at char {at:,}: "
                f"{excerpt_around(a, at, at + 1, 30, position=False)} vs "
                f"{excerpt_around(b, at, at + 1, 30, position=False)}")
    calls = [f"{c.name}({c.arguments})" for c in first.tool_calls]
    others = [f"{c.name}({c.arguments})" for c in second.tool_calls]
    return f"same text, tool calls {short_repr(calls, 120)} vs {short_repr(others, 120)}"
