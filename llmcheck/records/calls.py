"""The records of single model calls and what a sample keeps of them: the call, its
sampling parameters, an injected fault, the messages of a failing sample's exchanges,
the local model a session served, and a sample's episode. Re-exported by
:mod:`llmcheck.records.models` and :mod:`llmcheck.records.schema`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from llmcheck.records.base import _Record


class CallRecord(_Record):
    """One model call made by a sample (after its retries)."""

    model: str
    latency: float = Field(description="seconds, retries and backoff included")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = Field(None, description="dollars; None when the price is unknown")
    retries: int = 0
    cached: bool = False
    time_to_first_token: float | None = None
    error: str | None = Field(None, description="set when no answer came after the retries")
    via: str | None = Field(None, description="None for the llm fixture's client; 'proxy' "
                            "for a call of the code under test that came through llmcheck's "
                            "proxy (llm_endpoint.base_url)")
    fault: str | None = Field(None, description="the fault injected into this call, if any")
    params: dict[str, int | float | str | bool] = Field(
        default_factory=dict, description="the sampling parameters the request carried "
        "(temperature, seed, max_tokens, top_p, ...): what a rerun needs to reproduce it")
    role: Literal["app", "user", "judge"] = Field(
        "app", description="who made the call: the app under test, a simulated user, or "
        "a judge (user and judge calls are reported apart from the app's)")
    chunks: int | None = Field(None, description="streamed calls: chunks received")
    max_gap: float | None = Field(None, description="streamed calls: the longest wait "
                                  "between two chunks, in seconds")


SAMPLING_PARAMS = frozenset({
    "temperature", "top_p", "top_k", "min_p", "seed", "max_tokens", "max_completion_tokens",
    "presence_penalty", "frequency_penalty", "repeat_penalty", "n",
})
"""The request parameters recorded with each call (``CallRecord.params``): those that
shape the answer's distribution."""


def sampling_params(request: Any) -> dict[str, int | float | str | bool]:
    """The :data:`SAMPLING_PARAMS` of a request's parameters or JSON body."""
    return {k: v for k, v in request.items()
            if k in SAMPLING_PARAMS and isinstance(v, (int, float, str, bool))}


class LocalModelRecord(_Record):
    """The local model a session served itself (``--llm-model=local/NAME`` or ``gguf:PATH``)."""

    name: str = Field(description="as given: local/smollm2 or gguf:/path/model.gguf")
    path: str = Field(description="the GGUF file served")
    size: int = Field(description="its size in bytes")
    context: int = Field(description="the context size the server was started with (tokens)")
    threads: int = Field(description="CPU threads the server decodes with")
    server: str = Field(description="the server and its version, e.g. llama-cpp-python "
                        "0.3.36 (each xdist worker starts its own)")


class FaultRecord(_Record):
    """A fault injected into one of a sample's model requests."""

    call: int = Field(description="0-based number of the request within the sample (a tool "
                      "fault: of the tool invocation within its episode)")
    kind: str = Field(description="the fault kind (llmcheck.injection.KINDS, or tool_*)")
    via: str = Field(description="'in-process' (httpx interception), 'proxy' or 'tool'")
    recovered: bool = Field(False, description="a later request of the sample (or this "
                            "one, for a slow answer) got a usable answer: the failure of "
                            "the sample, if any, is not blamed on this fault")


class MessageRecord(_Record):
    """One message of a request, as text: tool calls and content parts written out."""

    role: str
    content: str = Field(description="redacted, cut in the middle past --llm-keep-io "
                         "characters (the cut says how much was left out)")


class ExchangeRecord(_Record):
    """What one model call of a failing or errored sample sent and got back: what a
    person debugging a flaky prompt looks at first."""

    call: int = Field(description="0-based number of the call in the sample's calls")
    via: str | None = Field(None, description="None for the llm fixture's client; "
                            "'proxy' for the app's own client through llm_endpoint")
    messages: list[MessageRecord] = Field(default_factory=list,
                                          description="the messages sent")
    messages_left_out: int = Field(0, description="messages of a long conversation not "
                                   "kept (between the first and the last ones)")
    answer: str | None = Field(None, description="the answer's text (tool calls written "
                               "out), redacted and cut like the messages; None: no answer")


class EpisodeRecord(_Record):
    """What one episode (a tool loop, a conversation) did: kept for every sample."""

    source: Literal["loop", "recorded", "conversation"]
    stop_reason: str = Field(description="final_answer, max_steps, budget_calls, "
                             "budget_tokens, budget_cost, budget_time, user_stopped, "
                             "max_turns, error or recorded")
    steps: int = Field(description="model steps (calls of the app's model)")
    turns: int = 0
    tools: list[str] = Field(default_factory=list, description="tools called, in order")
    tool_errors: int = 0
    unhandled_tool_errors: int = 0
    duration: float = 0.0
