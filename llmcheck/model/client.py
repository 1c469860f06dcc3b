"""The model client: every call to a model goes through here, then litellm.

:class:`LLMClient` is what the ``llm`` fixture hands a test: ``llm(prompt)``,
``llm.chat(messages)`` and their awaitable forms ``llm.acall`` / ``llm.achat``
return a :class:`~llmcheck.model.completion.Completion`. Around each call it:

- retries (tenacity) on rate limits, timeouts, connection errors and 5xx, with
  exponential backoff and jitter, honouring ``Retry-After``; litellm's own
  retries are turned off (``num_retries=0``, ``max_retries=0``) because they
  stack (the design page measured 2N+1 requests for ``num_retries=N``);
- holds each attempt to a deadline of ``timeout`` seconds for the WHOLE answer
  (connect, headers, body and, for a stream, the whole stream), not per read:
  async calls are cancelled at the deadline, sync calls run in a daemon helper
  thread that is abandoned at the deadline (:mod:`llmcheck.model.deadline`);
- gives up retrying when the next wait would end past the call's
  ``retry_budget`` (seconds from the call's start);
- treats an answer that is not a completion (no choices, not JSON, cut short, a
  plain body for a stream) as a provider fault: retried, then an error;
- raises :class:`ModelCallError` (an ``InfrastructureError``: the sample is an
  ``error``, not a failure) when the retries are exhausted, and
  :class:`~llmcheck.errors.UsageError` for what retrying cannot fix (an
  unknown model, a missing or rejected key);
- stops at once, with :class:`CallsStopped`, once :func:`stop_calls` was called
  (the runner calls it on Ctrl-C): no new request or retry starts, and a sync
  call in flight is abandoned within :data:`STOP_POLL` seconds;
- takes the session's one accounting path (:mod:`llmcheck.model.accounting`, which
  the proxy behind ``llm_endpoint`` takes too): each request is admitted by the
  budget (a refused one raises :class:`~llmcheck.model.accounting.BudgetSpent` and is
  not sent) and paced per model; answers come from and go to the replay cache; the
  call is priced and recorded in the current sample.

litellm is imported on the first call, offline (:func:`~llmcheck.model.provider.import_litellm`).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import tenacity

from llmcheck.core import context
from llmcheck.core.exchanges import answer_text
from llmcheck.errors import BudgetSpent, CallsStopped, ModelCallError, UsageError
from llmcheck.model.accounting import (
    Budget,
    ModelSession,
    RateLimiter,
    budget_split,
    calls_split,
    price,
    record_call,
    replay_key,
)
from llmcheck.model.completion import Completion, ToolCall, Usage
from llmcheck.model.deadline import (
    STOP_POLL,
    asleep,
    await_with_deadline,
    calls_stopped,
    raise_if_stopped,
    reset_calls,
    run_with_deadline,
    sleep,
    stop_calls,
)
from llmcheck.model.failures import (
    MalformedResponse,
    describe,
    is_retryable,
    retry_after,
    short,
    usage_error,
)
from llmcheck.model.provider import SIMULATOR_MODEL, import_litellm, register_free_model
from llmcheck.model.retry import CallPolicy, attempts_of
from llmcheck.model.streaming import aconsume, consume, is_warm, warm_tokenizer
from llmcheck.redact import register_secret, sanitize_url

__all__ = [  # what the rest of llmcheck and its users import from here
    "SIMULATOR_MODEL", "STOP_POLL", "Budget", "BudgetSpent", "CallsStopped", "LLMClient",
    "ModelCallError", "ModelConfig", "ModelSession", "RateLimiter", "budget_split",
    "calls_split", "calls_stopped", "default_client", "default_embedder", "import_litellm",
    "register_free_model", "reset_calls", "retry_after", "set_default_client", "stop_calls",
]




# --------------------------------------------------------------------------
# configuration and session-wide resources


@dataclass(frozen=True)
class ModelConfig:
    """Which model to call and how."""

    model: str
    api_base: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the key (never the key itself)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Provider parameters sent with every call (temperature, max_tokens, ...)."""
    timeout: float = 60.0
    """Deadline in seconds for each attempt's whole answer (a stream: the whole stream)."""
    retries: int = 3
    backoff: float = 0.5
    """Initial backoff in seconds; doubles per retry, with jitter, up to 30 s."""
    simulated: bool = False
    retry_budget: float = 120.0
    """Seconds from a call's start within which its retries must fit: when the next
    wait (Retry-After or backoff) would end later, the call gives up at once."""
    name: str | None = None
    """What reports call the model when it is not ``model`` (``local/smollm2`` is served
    as ``openai/smollm2``)."""
    context: int | None = None
    """The context size of a local model's server (tokens), for error messages."""

    def __post_init__(self) -> None:
        if self.api_base:
            sanitize_url(self.api_base)  # its credentials are masked wherever they appear

    def api_key(self) -> str | None:
        """The key, read from the environment here and only here, and registered as a
        secret so that no record, file or printed line ever holds it."""
        if self.api_key_env is None:
            # Local servers (the simulator, llama.cpp, vLLM, Ollama's OpenAI API) need no
            # key, but OpenAI-compatible clients refuse to send a request without one.
            return "sk-no-key-required" if self.simulated or self.api_base else None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise UsageError(
                f"the environment variable {self.api_key_env} (named by --llm-api-key-env) is "
                "not set or empty; export the API key there"
            )
        register_secret(key)
        return key


# --------------------------------------------------------------------------
# the client


class LLMClient:
    """Calls one configured model; what the ``llm`` fixture returns."""

    def __init__(self, config: ModelConfig, session: ModelSession | None = None) -> None:
        self.config = config
        self.session = session or ModelSession()

    @property
    def model(self) -> str:
        return self.config.model

    def with_model(self, model: str, **params: Any) -> LLMClient:
        """A client for another model sharing this one's session (judges, comparisons)."""
        simulated = self.config.simulated and model == self.config.model
        config = replace(self.config, model=model, simulated=simulated, name=None, context=None,
                         params={**self.config.params, **params})
        if not simulated and self.config.simulated:
            config = replace(config, api_base=None)
        return LLMClient(config, self.session)

    # -- public calls ------------------------------------------------------
    def __call__(self, prompt: str, **params: Any) -> Completion:
        """Send one user message; return the answer."""
        return self.chat([{"role": "user", "content": prompt}], **params)

    def chat(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        """Send a conversation; return the answer. ``stream=True`` streams it."""
        request = self._request(messages, params)
        cached = self._from_cache(request)
        if cached is not None:
            return cached
        if request.stream:  # before the clock starts: not in the first stream's ttft
            warm_tokenizer(import_litellm(), self.model)
        import_litellm()
        started = time.perf_counter()
        policy = CallPolicy(self.config)
        attempt = None
        try:
            for attempt in policy.retrying(tenacity.Retrying, sleep=sleep):
                with attempt:
                    raise_if_stopped()
                    self.session.limiter.wait(self.model)
                    raise_if_stopped()
                    self._admit()
                    policy.requests += 1
                    completion = run_with_deadline(
                        lambda abandoned: self._attempt(request, started, abandoned),
                        request.timeout)
        except Exception as exc:  # noqa: BLE001 - translated below
            raise self._failure(exc, attempt, started, policy, request) from exc
        return self._finish(request, completion, attempts_of(attempt), started)

    async def acall(self, prompt: str, **params: Any) -> Completion:
        """Awaitable form of ``llm(prompt)``."""
        return await self.achat([{"role": "user", "content": prompt}], **params)

    async def achat(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        """Awaitable form of :meth:`chat`."""
        request = self._request(messages, params)
        cached = self._from_cache(request)
        if cached is not None:
            return cached
        if request.stream and not is_warm(self.model):  # before the clock starts
            await asyncio.to_thread(warm_tokenizer, import_litellm(), self.model)
        import_litellm()
        started = time.perf_counter()
        policy = CallPolicy(self.config)
        attempt = None
        try:
            async for attempt in policy.retrying(tenacity.AsyncRetrying, sleep=asleep):
                with attempt:
                    raise_if_stopped()
                    await self.session.limiter.await_slot(self.model)
                    raise_if_stopped()
                    self._admit()
                    policy.requests += 1
                    completion = await await_with_deadline(
                        self._aattempt(request, started), request.timeout)
        except Exception as exc:  # noqa: BLE001 - translated below
            raise self._failure(exc, attempt, started, policy, request) from exc
        return self._finish(request, completion, attempts_of(attempt), started)

    def _attempt(self, request: _Request, started: float,
                 abandoned: threading.Event) -> Completion:
        """One request and its whole answer (run in a helper thread by :meth:`chat`)."""
        response = import_litellm().completion(**request.kwargs)
        if request.stream:
            return consume(response, self.model, started, self.config.timeout, abandoned)
        return self._parse(response)

    async def _aattempt(self, request: _Request, started: float) -> Completion:
        """One request and its whole answer (awaited under a deadline by :meth:`achat`)."""
        response = await import_litellm().acompletion(**request.kwargs)
        if request.stream:
            return await aconsume(response, self.model, started)
        return self._parse(response)

    def embed(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        """Embedding vectors for ``texts`` (through ``litellm.embedding``)."""
        litellm = import_litellm()
        kwargs: dict[str, Any] = {"model": model or self.model, "input": list(texts),
                                  "timeout": self.config.timeout, "num_retries": 0,
                                  "max_retries": 0}
        if self.config.api_base and (model is None or self.config.simulated):
            kwargs["api_base"] = self.config.api_base
        key = self.config.api_key()
        if key:
            kwargs["api_key"] = key
        try:
            raise_if_stopped()
            self._admit()
            response = run_with_deadline(lambda _: litellm.embedding(**kwargs),
                                          self.config.timeout)
        except (CallsStopped, BudgetSpent):
            raise
        except Exception as exc:  # noqa: BLE001
            usage = usage_error(exc, self.config)
            if usage is not None:
                raise usage from None
            raise ModelCallError(f"embedding call to {kwargs['model']} failed: {describe(exc)}",
                                 attempts=1, cause=exc) from exc
        return [list(item["embedding"]) for item in response.data]

    # -- internals ---------------------------------------------------------
    def _request(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> _Request:
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise UsageError(f"messages must be a list of dicts with 'role' and 'content', got "
                             f"{type(messages).__name__}")
        merged = {**self.config.params, **params}
        stream = bool(merged.pop("stream", False))
        timeout = merged.pop("timeout", self.config.timeout)
        deadline = timeout if isinstance(timeout, (int, float)) else self.config.timeout
        ctx = context.current_sample()
        replay = replay_key(self.model, messages, {**merged, "stream": stream}, ctx)
        if ctx is not None and "seed" not in merged:
            merged["seed"] = ctx.seed  # reproducible per sample where the provider supports it
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": messages, **merged, "timeout": timeout,
            "num_retries": 0, "max_retries": 0, "drop_params": True,
        }
        if self.config.api_base:
            kwargs["api_base"] = self.config.api_base
        key = self.config.api_key()
        if key:
            kwargs["api_key"] = key
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        from llmcheck.records.schema import sampling_params

        return _Request(kwargs, stream, replay, float(deadline), sampling_params(merged))

    def _admit(self) -> None:
        """Admit one request to the session's budget, or raise :class:`BudgetSpent`
        (the request is not sent; the sample is marked budget-stopped)."""
        reason = self.session.admit(context.current_sample())
        if reason is not None:
            raise BudgetSpent(reason)

    def _from_cache(self, request: _Request) -> Completion | None:
        cache = self.session.cache
        if cache is None:
            return None
        payload = cache.get(request.key)
        if payload is None:
            return None
        completion = replace(Completion.from_dict(payload), cached=True, retries=0)
        _record(completion, request)
        return completion

    def _failure(self, exc: Exception, attempt: Any, started: float,
                 policy: CallPolicy, request: _Request) -> Exception:
        """What a call that failed for good raises: a usage error for what retrying
        cannot fix, CallsStopped once calls are stopped, a ModelCallError once retries
        are exhausted (or their budget is), else the error itself."""
        usage = usage_error(exc, self.config)
        if usage is not None:
            return usage
        stopped = calls_stopped()
        if isinstance(exc, CallsStopped) or (stopped is not None and is_retryable(exc)):
            return self._stopped(stopped or "calls were stopped", policy, started, request)
        if not is_retryable(exc):
            return exc
        attempts = attempts_of(attempt)
        message = f"{self.model}: no answer after {attempts} attempt(s): "
        if policy.gave_up is not None:
            message += f"{policy.gave_up}; the last attempt: {describe(exc)}"
        else:
            message += describe(exc)
        self._record_failure(message, attempts, started, request)
        return ModelCallError(message, attempts=attempts, cause=exc)

    def _stopped(self, reason: str, policy: CallPolicy, started: float,
                 request: _Request) -> CallsStopped:
        sent = policy.requests
        message = (f"{self.model}: model calls were stopped ({reason}) after {sent} "
                   "request(s) of this call; no further request or retry was made")
        if sent:
            self._record_failure(message, sent, started, request)
        return CallsStopped(message, reason=reason, attempts=sent)

    def _record_failure(self, message: str, attempts: int, started: float,
                        request: _Request) -> None:
        record_call(context.current_sample(), model=self.model, error=message,
                    retries=attempts - 1, latency=time.perf_counter() - started,
                    params=request.params, messages=request.kwargs.get("messages"))

    def _finish(self, request: _Request, completion: Completion, attempts: int,
                started: float) -> Completion:
        completion = replace(completion, retries=attempts - 1,
                             latency=time.perf_counter() - started,
                             cost=self._cost(completion))
        self.session.budget.spend(completion.cost)
        _record(completion, request)
        cache = self.session.cache
        if cache is not None:
            cache.put(request.key, self.model, completion.to_dict())
        return completion

    def _cost(self, completion: Completion) -> float | None:
        u = completion.usage
        return price(self.model, u.prompt_tokens, u.completion_tokens,
                     free=self.config.simulated)

    def _parse(self, response: Any) -> Completion:
        """A Completion from litellm's response; :class:`MalformedResponse` for an
        answer that does not read as one (no choices, no message...)."""
        choices = getattr(response, "choices", None)
        if not choices:
            raise MalformedResponse("the provider answered 200 with no choices")
        try:
            choice = choices[0]
            message = choice.message
            calls = tuple(
                ToolCall(name=c.function.name or "", arguments=c.function.arguments or "",
                         id=c.id)
                for c in (getattr(message, "tool_calls", None) or [])
            )
            text = message.content or ""
            finish = choice.finish_reason
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise MalformedResponse(f"the provider's answer does not parse as a completion "
                                    f"({type(exc).__name__}: {short(str(exc), 120)})") from exc
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            model=getattr(response, "model", None) or self.model,
            finish_reason=finish,
            tool_calls=calls,
            usage=Usage(getattr(usage, "prompt_tokens", None),
                        getattr(usage, "completion_tokens", None)),
        )

    def __repr__(self) -> str:
        where = " (simulator)" if self.config.simulated else ""
        return f"<LLMClient {self.model}{where}>"


@dataclass
class _Request:
    kwargs: dict[str, Any]
    stream: bool
    key: str
    timeout: float
    """The deadline of each attempt's whole answer, in seconds."""
    params: dict[str, Any]
    """The sampling parameters sent (recorded with the call: temperature, seed, ...)."""



def _record(completion: Completion, request: _Request) -> None:
    """Record an answered call in the running sample (no-op outside a sample)."""
    record_call(context.current_sample(), model=completion.model, latency=completion.latency,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens, cost=completion.cost,
                retries=completion.retries, cached=completion.cached,
                time_to_first_token=completion.time_to_first_token, params=request.params,
                usable=not completion.cached, messages=request.kwargs.get("messages"),
                answer=answer_text(completion.text,
                                   ((c.name, c.arguments) for c in completion.tool_calls)),
                tool_calls=tuple((c.name, c.arguments, c.id) for c in completion.tool_calls),
                chunks=completion.chunks, max_gap=completion.max_gap)


# --------------------------------------------------------------------------
# defaults for code outside the plugin (checks' judge, scripts)

_default: LLMClient | None = None


def set_default_client(client: LLMClient | None) -> None:
    """Make ``client`` the one used by checks that call a model (the judge,
    semantic similarity) when they are not given one. The plugin sets it."""
    global _default
    _default = client


def default_client(model: str | None = None) -> LLMClient:
    """The session's client (or one for ``model`` sharing its session).

    Outside pytest, configure it from ``LLMCHECK_MODEL`` / ``LLMCHECK_API_BASE``
    / ``LLMCHECK_API_KEY_ENV``, or call :func:`set_default_client`.
    """
    base = _default
    if base is None:
        env_model = os.environ.get("LLMCHECK_MODEL")
        if not env_model:
            raise UsageError(
                "no model client is configured: run under pytest with the llmcheck plugin, "
                "set LLMCHECK_MODEL, or call llmcheck.model.client.set_default_client(...)"
            )
        base = LLMClient(ModelConfig(model=env_model,
                                     api_base=os.environ.get("LLMCHECK_API_BASE"),
                                     api_key_env=os.environ.get("LLMCHECK_API_KEY_ENV")))
    if model is None or model == base.model:
        return base
    return base.with_model(model)


def default_embedder(model: str | None = None) -> Callable[[list[str]], list[list[float]]]:
    """An ``embed(texts) -> vectors`` function through the default client."""
    client = default_client()
    return lambda texts: client.embed(texts, model=model)

