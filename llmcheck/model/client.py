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
  thread that is abandoned at the deadline (see :func:`_run_with_deadline`);
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
- paces requests per model (``rpm``), charges a session :class:`Budget`,
  answers from and records into a :class:`~llmcheck.model.cache.ResponseCache`;
- records a :class:`~llmcheck.records.schema.CallRecord` in the current sample.

litellm is imported on the first call, offline (see :func:`import_litellm`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import os
import queue
import random
import re
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import tenacity

from llmcheck.core import context
from llmcheck.errors import InfrastructureError, UsageError
from llmcheck.model.cache import ResponseCache, cache_key
from llmcheck.model.completion import Completion, ToolCall, Usage
from llmcheck.model.offline import go_offline
from llmcheck.redact import register_secret, sanitize_url

SIMULATOR_MODEL = "openai/llmcheck-sim"

MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is capped (and the call likely fails)
STOP_POLL = 0.2  # seconds: how often a waiting call looks at the stop switch


class ModelCallError(InfrastructureError):
    """The model could not be reached or kept failing after every retry."""

    def __init__(self, message: str, *, attempts: int, cause: BaseException | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.cause = cause


class CallsStopped(InfrastructureError):
    """Model calls were stopped (:func:`stop_calls`, on Ctrl-C): the call was not
    made, not retried, or abandoned in flight. The sample is an ``error``."""

    def __init__(self, message: str, *, reason: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.attempts = attempts


class DeadlineExceeded(Exception):
    """An attempt got no complete answer within its deadline (``--llm-timeout``).
    Internal: retried like ``litellm.Timeout``, then reported in a ModelCallError."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no complete answer within the {timeout:g} s deadline (--llm-timeout)")
        self.timeout = timeout


class MalformedResponse(Exception):
    """The provider answered, but not with a completion (no choices, a plain body to
    a streamed request...). Internal: a provider fault, retried, then a ModelCallError."""


# --------------------------------------------------------------------------
# the stop switch (Ctrl-C)

_stop_event = threading.Event()
_stop_lock = threading.Lock()
_stop_reason: str | None = None


def stop_calls(reason: str = "the run was interrupted") -> None:
    """Stop every model call of this process, now and until :func:`reset_calls`:
    no new request or retry starts, backoff sleeps return at once, and sync calls
    in flight are abandoned within :data:`STOP_POLL` s; each raises
    :class:`CallsStopped`. Thread-safe and idempotent (the first reason is kept);
    the runner calls it on KeyboardInterrupt."""
    global _stop_reason
    with _stop_lock:
        if _stop_reason is None:
            _stop_reason = reason
        _stop_event.set()


def calls_stopped() -> str | None:
    """Why model calls are stopped, or ``None`` while they may run."""
    if not _stop_event.is_set():
        return None
    return _stop_reason or "calls were stopped"


def reset_calls() -> None:
    """Allow model calls again (a new session in the same process, e.g. pytester)."""
    global _stop_reason
    with _stop_lock:
        _stop_event.clear()
        _stop_reason = None


def _raise_if_stopped() -> None:
    reason = calls_stopped()
    if reason is not None:
        raise CallsStopped(f"model calls are stopped: {reason}", reason=reason)


def _sleep(seconds: float) -> None:
    """tenacity's sleep, cut short by the stop switch."""
    _stop_event.wait(seconds)


async def _asleep(seconds: float) -> None:
    """tenacity's async sleep, cut short (within STOP_POLL) by the stop switch."""
    end = time.monotonic() + seconds
    while not _stop_event.is_set():
        left = end - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(STOP_POLL, left))


# --------------------------------------------------------------------------
# deadlines on a whole attempt


class _Call:
    """One blocking attempt run in a helper thread: its outcome and whether the
    caller stopped waiting for it (``abandoned``; stream readers check it)."""

    __slots__ = ("done", "abandoned", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.abandoned = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Workers:
    """Reusable daemon helper threads for blocking attempts (starting a thread costs
    about 2 ms on these machines; a hand-off to a waiting one, tens of µs).

    Each submitted job reserves an idle worker or starts a new one, so no job ever
    waits for another; a worker idle for ``IDLE_EXIT`` s ends. Abandoned jobs keep
    their worker until they end by themselves, then it serves again."""

    IDLE_EXIT = 30.0

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # waiting workers minus queued jobs

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        if spawn:
            threading.Thread(target=self._serve, args=(job,), name="llmcheck-call",
                             daemon=True).start()
        else:
            self._jobs.put(job)

    def _serve(self, job: Callable[[], None]) -> None:
        while True:
            job()
            with self._lock:
                self._idle += 1
            while True:
                try:
                    job = self._jobs.get(timeout=self.IDLE_EXIT)
                    break
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # more waiting workers than queued jobs
                            self._idle -= 1
                            return


_workers = _Workers()


def _workers_after_fork() -> None:
    global _workers
    _workers = _Workers()  # a forked child has none of the parent's threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_workers_after_fork)


def _run_with_deadline(fn: Callable[[threading.Event], Any], timeout: float) -> Any:
    """``fn(abandoned)`` in a daemon helper thread (one of :class:`_Workers`, in a
    copy of the caller's context), waited for at most ``timeout`` seconds in all.

    At the deadline raises :class:`DeadlineExceeded`, and :class:`CallsStopped`
    within STOP_POLL s of :func:`stop_calls`. The abandoned thread cannot be
    killed: it ends by itself when the provider closes the connection, when
    litellm's per-read timeout (the same ``timeout``) trips, or, for a stream,
    at the next chunk (the reader checks ``abandoned`` and closes the stream).
    It is a daemon thread, so it never holds up the interpreter's exit."""
    call = _Call()
    ctx = contextvars.copy_context()

    def run() -> None:
        try:
            call.result = ctx.run(fn, call.abandoned)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            call.error = exc
        finally:
            call.done.set()

    _workers.submit(run)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if call.done.wait(max(0.0, min(STOP_POLL, left))):
                break
            _raise_if_stopped()
            if left <= 0:
                raise DeadlineExceeded(timeout)
    finally:
        if not call.done.is_set():
            call.abandoned.set()
    if call.error is not None:
        raise call.error
    return call.result


async def _await_with_deadline(awaitable: Awaitable[Any], timeout: float) -> Any:
    """Await ``awaitable`` (as a task) for at most ``timeout`` seconds in all; at the
    deadline, or on :func:`stop_calls`, cancel it (closing its connection) and raise
    :class:`DeadlineExceeded` or :class:`CallsStopped`."""
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise DeadlineExceeded(timeout)
            done, _ = await asyncio.wait((task,), timeout=min(STOP_POLL, left))
            if done:
                return task.result()
            _raise_if_stopped()
    finally:
        if not task.done():
            task.cancel()
            task.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark an abandoned task's outcome as seen (no 'never retrieved' warning)."""
    if not task.cancelled():
        task.exception()


_litellm_lock = threading.Lock()
_litellm: Any = None


def import_litellm() -> Any:
    """Import litellm offline: no cost-map download, no tokenizer hub, no debug noise.

    Imported on the first call, in the calling thread. (Importing it in a background
    thread from collection on was measured and does not pay: the import is CPU-bound,
    so under the GIL it only slows collection down; see benchmarks/core.py, row 4.)
    """
    global _litellm
    if _litellm is not None:
        return _litellm
    with _litellm_lock:
        if _litellm is not None:
            return _litellm
        go_offline()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litellm
        litellm.suppress_debug_info = True
        litellm.telemetry = False
        # litellm logs a warning whenever its logging worker meets a new event loop,
        # which every async test (one asyncio.run each) does: not the user's concern.
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)
        _litellm = litellm
    for model in _free_models:
        _register_free(litellm, model)
    return litellm


_free_models: set[str] = {SIMULATOR_MODEL}


def register_free_model(model: str) -> None:
    """Price ``model`` (a litellm name) at $0: the simulator, a local model. Known to
    litellm, it also skips litellm's slow search for an unknown model's capabilities
    on every call."""
    _free_models.add(model)
    if _litellm is not None:
        _register_free(_litellm, model)


def _register_free(litellm: Any, model: str) -> None:
    if model not in litellm.model_cost:
        litellm.register_model({model: {
            "input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
            "litellm_provider": "openai", "mode": "chat", "max_tokens": 8192,
            "max_input_tokens": 128000, "max_output_tokens": 8192,
            "supports_function_calling": True, "supports_tool_choice": True,
        }})


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


class RateLimiter:
    """Spaces requests to at most ``rpm`` per minute (per model), across threads
    and event loops: each caller reserves the next free slot, then waits for it."""

    def __init__(self, rpm: float | None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def _reserve(self, model: str) -> float:
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(model, now))
            self._next[model] = slot + self.interval
            return slot - now

    def wait(self, model: str) -> None:
        delay = self._reserve(model)
        if delay > 0:
            _sleep(delay)

    async def await_slot(self, model: str) -> None:
        delay = self._reserve(model)
        if delay > 0:
            await _asleep(delay)


class Budget:
    """Session limits on dollars and calls. Once spent, no new sample starts;
    calls of samples already running still go through."""

    def __init__(self, max_cost: float | None = None, max_calls: int | None = None) -> None:
        self.max_cost = max_cost
        self.max_calls = max_calls
        self.cost = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def charge(self, cost: float | None) -> None:
        with self._lock:
            self.calls += 1
            self.cost += cost or 0.0

    @property
    def exhausted(self) -> str | None:
        """Why the budget is spent, or ``None``."""
        with self._lock:
            if self.max_calls is not None and self.calls >= self.max_calls:
                return f"--llm-max-calls={self.max_calls} reached ({self.calls} calls)"
            if self.max_cost is not None and self.cost >= self.max_cost:
                return f"--llm-max-cost={self.max_cost:g} reached (${self.cost:.4f} spent)"
        return None


@dataclass
class ModelSession:
    """What all clients of a session share: pacing, budget, cache."""

    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(None))
    budget: Budget = field(default_factory=Budget)
    cache: ResponseCache | None = None

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


# --------------------------------------------------------------------------
# classifying litellm's exceptions


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


# What litellm raises when a provider's 200 answer cannot be read (measured with
# litellm 1.110): openai/ -> InternalServerError "Empty or invalid response from LLM
# endpoint" (not JSON) or the JSONDecodeError's text (cut short); hosted_vllm/ and
# other OpenAI-like providers -> APIError with status 200 "Unable to get json
# response"; anthropic/, ollama_chat/ -> APIConnectionError (500); gemini/ ->
# BadRequestError (422) "Error converting to valid response block".
_MALFORMED_MARKERS = ("Empty or invalid response from LLM endpoint",
                      "Unable to get json response",
                      "Error converting to valid response block")
_JSON_ERROR = re.compile(r"(Expecting [^:]+|Unterminated string[^:]*|Extra data|"
                         r"Invalid control character[^:]*): line \d+ column \d+")


def _is_malformed(exc: BaseException) -> bool:
    """The provider answered, but not with something that reads as a completion."""
    if isinstance(exc, (MalformedResponse, json.JSONDecodeError)):
        return True
    if _status(exc) == 200:
        return True  # litellm.APIError(200): a success that could not be read
    text = str(exc)
    return any(marker in text for marker in _MALFORMED_MARKERS)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, (DeadlineExceeded, MalformedResponse)):
        return True
    if isinstance(exc, CallsStopped):
        return False
    if _is_malformed(exc):
        return True
    if _CONTEXT_OVERFLOW.search(str(exc)):
        return False  # the same prompt never fits: a usage error (see _usage_error)
    litellm = import_litellm()
    if isinstance(exc, (litellm.RateLimitError, litellm.Timeout, litellm.APIConnectionError,
                        litellm.ServiceUnavailableError, litellm.InternalServerError,
                        litellm.BadGatewayError)):
        return not _is_credentials_problem(exc)
    code = _status(exc)
    return code is not None and (code == 429 or code >= 500) and not _is_credentials_problem(exc)


_CONTEXT_OVERFLOW = re.compile(r"exceed context window|could not broadcast input array")
"""How llama.cpp's server (a 400 or a 500) says the prompt does not fit its context."""


def _is_credentials_problem(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "missing credentials" in text or ("api key" in text and "missing" in text)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (``Retry-After`` or ``retry-after-ms``)."""
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    headers = headers or getattr(exc, "headers", None) or {}
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        value = headers.get("retry-after")
        if value is not None:
            return max(0.0, float(value))
    except (TypeError, ValueError, AttributeError):
        return None
    return None


def _usage_error(exc: BaseException, config: ModelConfig) -> UsageError | None:
    """Translate what no retry can fix into a usage error that says what to do."""
    if isinstance(exc, (DeadlineExceeded, MalformedResponse, CallsStopped)) or \
            _is_malformed(exc):
        return None  # a provider fault (retried), or the session stopping
    litellm = import_litellm()
    text = str(exc)
    if _CONTEXT_OVERFLOW.search(text):
        size = f" of {config.context} tokens" if config.context else ""
        return UsageError(
            f"the prompt and max_tokens do not fit the context{size} of "
            f"{config.name or config.model}: shorten them, or start the server with more "
            f"context (--llm-local-context). The server said: {_short(text)}")
    if isinstance(exc, litellm.BadRequestError) and "LLM Provider NOT provided" in text:
        return UsageError(
            f"model {config.model!r} is not a model litellm knows how to call: prefix it with "
            "the provider, e.g. --llm-model=openai/gpt-4o-mini, anthropic/claude-3-5-haiku-"
            "latest or ollama/llama3 (see litellm's provider list)"
        )
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or \
            _is_credentials_problem(exc):
        where = (f"the key in ${config.api_key_env}" if config.api_key_env
                 else "no key (set --llm-api-key-env=NAME_OF_THE_ENV_VAR)")
        return UsageError(f"the provider rejected the credentials for {config.model!r}: "
                          f"{where}. Provider said: {_short(text)}")
    if isinstance(exc, litellm.NotFoundError):
        return UsageError(f"model {config.model!r} was not found at the provider: "
                          f"{_short(text)}")
    if isinstance(exc, litellm.ContentPolicyViolationError):
        return None  # the model's (or provider's) behaviour: a sample failure
    if isinstance(exc, litellm.BadRequestError):
        return UsageError(f"the provider rejected the request to {config.model!r} as invalid: "
                          f"{_short(text)}")
    return None


def _describe(exc: BaseException) -> str:
    """What went wrong with an attempt, for the error message of the call."""
    if isinstance(exc, (DeadlineExceeded, MalformedResponse)):
        return str(exc)
    text = f"{type(exc).__name__}: {_short(str(exc))}"
    if _is_malformed(exc) or (_JSON_ERROR.search(str(exc)) and _status(exc) in (None, 500)):
        return ("the provider's answer does not read as a completion (not JSON, cut short "
                f"or malformed): {text}")
    return text


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        import_litellm()
        started = time.perf_counter()
        policy = _CallPolicy(self.config)
        attempt = None
        try:
            for attempt in policy.retrying(tenacity.Retrying, sleep=_sleep):
                with attempt:
                    _raise_if_stopped()
                    self.session.limiter.wait(self.model)
                    _raise_if_stopped()
                    policy.requests += 1
                    completion = _run_with_deadline(
                        lambda abandoned: self._attempt(request, started, abandoned),
                        request.timeout)
        except Exception as exc:  # noqa: BLE001 - translated below
            raise self._failure(exc, attempt, started, policy, request) from exc
        return self._finish(request, completion, _attempts(attempt), started)

    async def acall(self, prompt: str, **params: Any) -> Completion:
        """Awaitable form of ``llm(prompt)``."""
        return await self.achat([{"role": "user", "content": prompt}], **params)

    async def achat(self, messages: list[dict[str, Any]], **params: Any) -> Completion:
        """Awaitable form of :meth:`chat`."""
        request = self._request(messages, params)
        cached = self._from_cache(request)
        if cached is not None:
            return cached
        import_litellm()
        started = time.perf_counter()
        policy = _CallPolicy(self.config)
        attempt = None
        try:
            async for attempt in policy.retrying(tenacity.AsyncRetrying, sleep=_asleep):
                with attempt:
                    _raise_if_stopped()
                    await self.session.limiter.await_slot(self.model)
                    _raise_if_stopped()
                    policy.requests += 1
                    completion = await _await_with_deadline(
                        self._aattempt(request, started), request.timeout)
        except Exception as exc:  # noqa: BLE001 - translated below
            raise self._failure(exc, attempt, started, policy, request) from exc
        return self._finish(request, completion, _attempts(attempt), started)

    def _attempt(self, request: _Request, started: float,
                 abandoned: threading.Event) -> Completion:
        """One request and its whole answer (run in a helper thread by :meth:`chat`)."""
        response = import_litellm().completion(**request.kwargs)
        if request.stream:
            return self._consume_stream(response, started, abandoned)
        return self._parse(response)

    async def _aattempt(self, request: _Request, started: float) -> Completion:
        """One request and its whole answer (awaited under a deadline by :meth:`achat`)."""
        response = await import_litellm().acompletion(**request.kwargs)
        if request.stream:
            return await self._consume_astream(response, started)
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
            _raise_if_stopped()
            response = _run_with_deadline(lambda _: litellm.embedding(**kwargs),
                                          self.config.timeout)
        except CallsStopped:
            raise
        except Exception as exc:  # noqa: BLE001
            usage = _usage_error(exc, self.config)
            if usage is not None:
                raise usage from None
            raise ModelCallError(f"embedding call to {kwargs['model']} failed: {_describe(exc)}",
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
        replay_key = self._cache_key(ctx, messages, {**merged, "stream": stream})
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

        return _Request(kwargs, stream, replay_key, float(deadline), sampling_params(merged))

    def _cache_key(self, ctx: context.SampleContext | None, messages: list[dict[str, Any]],
                   params: dict[str, Any]) -> str:
        """The replay key: what shapes the answer (not the derived per-sample seed, so a
        recording replays under any session seed), the sample, and which identical call
        of the sample this is (a judge asked three times replays three answers)."""
        if ctx is None:
            return cache_key(self.model, messages, params, -1)
        first = cache_key(self.model, messages, params, ctx.index)
        ordinal = ctx.call_counts.get(first, 0)
        ctx.call_counts[first] = ordinal + 1
        return first if ordinal == 0 else cache_key(self.model, messages, params, ctx.index,
                                                     ordinal)

    def _from_cache(self, request: _Request) -> Completion | None:
        cache = self.session.cache
        if cache is None:
            return None
        payload = cache.get(request.key)
        if payload is None:
            return None
        completion = replace(Completion.from_dict(payload), cached=True, retries=0)
        _record(completion, error=None, params=request.params)
        return completion

    def _failure(self, exc: Exception, attempt: Any, started: float,
                 policy: _CallPolicy, request: _Request) -> Exception:
        """What a call that failed for good raises: a usage error for what retrying
        cannot fix, CallsStopped once calls are stopped, a ModelCallError once retries
        are exhausted (or their budget is), else the error itself."""
        usage = _usage_error(exc, self.config)
        if usage is not None:
            return usage
        stopped = calls_stopped()
        if isinstance(exc, CallsStopped) or (stopped is not None and _is_retryable(exc)):
            return self._stopped(stopped or "calls were stopped", policy, started, request)
        if not _is_retryable(exc):
            return exc
        attempts = _attempts(attempt)
        message = f"{self.model}: no answer after {attempts} attempt(s): "
        if policy.gave_up is not None:
            message += f"{policy.gave_up}; the last attempt: {_describe(exc)}"
        else:
            message += _describe(exc)
        self._record_failure(message, attempts, started, request)
        return ModelCallError(message, attempts=attempts, cause=exc)

    def _stopped(self, reason: str, policy: _CallPolicy, started: float,
                 request: _Request) -> CallsStopped:
        sent = policy.requests
        message = (f"{self.model}: model calls were stopped ({reason}) after {sent} "
                   "request(s) of this call; no further request or retry was made")
        if sent:
            self._record_failure(message, sent, started, request)
        return CallsStopped(message, reason=reason, attempts=sent)

    def _record_failure(self, message: str, attempts: int, started: float,
                        request: _Request) -> None:
        _record(None, error=message, model=self.model, retries=attempts - 1,
                latency=time.perf_counter() - started, params=request.params)
        self.session.budget.charge(None)

    def _finish(self, request: _Request, completion: Completion, attempts: int,
                started: float) -> Completion:
        completion = replace(completion, retries=attempts - 1,
                             latency=time.perf_counter() - started,
                             cost=self._cost(completion))
        self.session.budget.charge(completion.cost)
        _record(completion, error=None, params=request.params)
        cache = self.session.cache
        if cache is not None:
            cache.put(request.key, self.model, completion.to_dict())
        return completion

    def _cost(self, completion: Completion) -> float | None:
        if self.config.simulated:
            return 0.0  # the built-in simulator is free
        u = completion.usage
        if u.prompt_tokens is None and u.completion_tokens is None:
            return None
        litellm = import_litellm()
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=self.model, prompt_tokens=u.prompt_tokens or 0,
                completion_tokens=u.completion_tokens or 0)
        except Exception:  # noqa: BLE001 - unknown model: cost unknown, not an error
            return None
        return float(prompt_cost + completion_cost)

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
                                    f"({type(exc).__name__}: {_short(str(exc), 120)})") from exc
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            model=getattr(response, "model", None) or self.model,
            finish_reason=finish,
            tool_calls=calls,
            usage=Usage(getattr(usage, "prompt_tokens", None),
                        getattr(usage, "completion_tokens", None)),
        )

    def _consume_stream(self, chunks: Iterable[Any], started: float,
                        abandoned: threading.Event | None = None) -> Completion:
        acc = _StreamAccumulator(self.model, started)
        for chunk in chunks:
            if abandoned is not None and abandoned.is_set():
                _close(chunks)  # the caller gave up (deadline, stop): free the connection
                raise DeadlineExceeded(self.config.timeout)
            acc.add(chunk)
        return acc.completion(_content_type(chunks))

    async def _consume_astream(self, chunks: Any, started: float) -> Completion:
        acc = _StreamAccumulator(self.model, started)
        try:
            async for chunk in chunks:
                acc.add(chunk)
        except BaseException:
            # cancelled at the deadline, or the stream broke: close the connection
            await _aclose(chunks)
            raise
        return acc.completion(_content_type(chunks))

    def __repr__(self) -> str:
        where = " (simulator)" if self.config.simulated else ""
        return f"<LLMClient {self.model}{where}>"


def _attempts(attempt: Any) -> int:
    return attempt.retry_state.attempt_number if attempt is not None else 1


def _backoff(initial: float, attempt_number: int) -> float:
    """Exponential backoff from ``initial`` seconds, up to 30 s, with full jitter."""
    base = min(30.0, initial * 2 ** (attempt_number - 1))
    return base * random.uniform(0.5, 1.5)


def _secs(value: float) -> str:
    value = max(0.0, value)
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


class _CallPolicy:
    """One call's tenacity policy: retryable errors only, ``retries`` extra attempts,
    waiting what the server asked (Retry-After, capped) or exponential backoff with
    jitter; no retry once calls are stopped or when the next wait would end past the
    ``retry_budget`` (``gave_up`` then says why). Counts the requests it lets start."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.started = time.monotonic()
        self.requests = 0
        self.gave_up: str | None = None
        self._delays: dict[int, tuple[float, float | None]] = {}

    def retrying(self, kind: Any, *, sleep: Callable[[float], Any]) -> Any:
        return kind(retry=tenacity.retry_if_exception(_is_retryable), stop=self.stop,
                    wait=self.wait, sleep=sleep, reraise=True)

    def _delay(self, state: Any) -> tuple[float, float | None]:
        """(the wait before the next attempt, the Retry-After asked), once per attempt:
        tenacity asks ``stop`` and ``wait`` in an order that varies across versions."""
        n = state.attempt_number
        if n not in self._delays:
            exc = state.outcome.exception() if state.outcome is not None else None
            asked = retry_after(exc) if exc is not None else None
            wait = (min(asked, MAX_RETRY_AFTER) if asked is not None
                    else _backoff(self.config.backoff, n))
            self._delays[n] = (wait, asked)
        return self._delays[n]

    def wait(self, state: Any) -> float:
        return self._delay(state)[0]

    def stop(self, state: Any) -> bool:
        if state.attempt_number > self.config.retries or calls_stopped() is not None:
            return True
        wait, asked = self._delay(state)
        budget = self.config.retry_budget
        left = budget - (time.monotonic() - self.started)
        needed = asked if asked is not None else wait
        if needed <= left:
            return False
        what = (f"the provider asked to wait {asked:g} s (Retry-After)" if asked is not None
                else f"the next retry would wait {_secs(wait)} s (backoff)")
        self.gave_up = (f"gave up retrying: {what}, more than the {_secs(left)} s left of "
                        f"the {budget:g} s retry budget (--llm-retry-budget)")
        return True


@dataclass
class _Request:
    kwargs: dict[str, Any]
    stream: bool
    key: str
    timeout: float
    """The deadline of each attempt's whole answer, in seconds."""
    params: dict[str, Any]
    """The sampling parameters sent (recorded with the call: temperature, seed, ...)."""


def _content_type(chunks: Any) -> str | None:
    """The content type the provider answered a streamed request with, if litellm kept it."""
    hidden = getattr(chunks, "_hidden_params", None)
    headers = hidden.get("additional_headers") if isinstance(hidden, dict) else None
    value = headers.get("llm_provider-content-type") if isinstance(headers, dict) else None
    return value if isinstance(value, str) else None


def _close(chunks: Any) -> None:
    close = getattr(chunks, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001 - best effort: the connection is being dropped
            pass


async def _aclose(chunks: Any) -> None:
    close = getattr(chunks, "aclose", None)
    if callable(close):
        try:
            await close()
        except Exception:  # noqa: BLE001 - best effort: the connection is being dropped
            pass


class _StreamAccumulator:
    """Assembles streamed chunks into one Completion, timing the first token."""

    def __init__(self, model: str, started: float) -> None:
        self.model = model
        self.started = started
        self.first: float | None = None
        self.parts: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage = Usage()
        self.response_model: str | None = None
        self.received = False
        """Whether any chunk carried something from the provider (a role, text, a tool
        call, usage): litellm turns a body without events into one empty final chunk."""

    def add(self, chunk: Any) -> None:
        usage = getattr(chunk, "usage", None)
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            self.usage = Usage(usage.prompt_tokens, usage.completion_tokens)
            self.received = True
        self.response_model = getattr(chunk, "model", None) or self.response_model
        if not getattr(chunk, "choices", None):
            return
        choice = chunk.choices[0]
        delta = choice.delta
        content = getattr(delta, "content", None)
        tool_deltas = getattr(delta, "tool_calls", None) or []
        if content or tool_deltas or getattr(delta, "role", None):
            self.received = True
        if (content or tool_deltas) and self.first is None:
            self.first = time.perf_counter() - self.started
        if content:
            self.parts.append(content)
        for td in tool_deltas:
            slot = self.tools.setdefault(getattr(td, "index", 0) or 0,
                                         {"id": None, "name": "", "arguments": ""})
            if getattr(td, "id", None):
                slot["id"] = td.id
            fn = getattr(td, "function", None)
            if fn is not None:
                if getattr(fn, "name", None):
                    slot["name"] = fn.name
                if getattr(fn, "arguments", None):
                    slot["arguments"] += fn.arguments
        if choice.finish_reason:
            self.finish = choice.finish_reason

    def completion(self, content_type: str | None = None) -> Completion:
        """The assembled answer; :class:`MalformedResponse` if the stream brought
        nothing from the provider (``content_type``: what it answered with)."""
        if not self.received:
            if content_type and "event-stream" not in content_type:
                raise MalformedResponse(
                    f"the provider answered a streamed request with a plain {content_type} "
                    "body, not an event stream")
            raise MalformedResponse("the provider's stream ended without a single chunk "
                                    "(no role, text, tool call or usage)")
        calls = tuple(ToolCall(t["name"], t["arguments"], t["id"])
                      for _, t in sorted(self.tools.items()))
        return Completion(
            text="".join(self.parts), model=self.response_model or self.model,
            finish_reason=self.finish, tool_calls=calls, usage=self.usage,
            time_to_first_token=self.first,
        )


def _record(completion: Completion | None, *, error: str | None, model: str | None = None,
            retries: int = 0, latency: float = 0.0,
            params: dict[str, Any] | None = None) -> None:
    """Add a CallRecord to the running sample (no-op outside a sample)."""
    ctx = context.current_sample()
    if ctx is None:
        return
    from llmcheck.records.schema import CallRecord

    if completion is None:
        ctx.calls.append(CallRecord(model=model or "?", latency=latency, retries=retries,
                                    error=error, params=params or {}))
        return
    ctx.calls.append(CallRecord(
        model=completion.model, latency=completion.latency,
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens, cost=completion.cost,
        retries=completion.retries, cached=completion.cached,
        time_to_first_token=completion.time_to_first_token, error=error,
        params=params or {},
    ))


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


def budget_split(value: float | None, workers: int) -> float | None:
    """A per-worker share of a session limit (pytest-xdist splits limits evenly)."""
    if value is None or workers <= 1:
        return value
    return value / workers


def calls_split(value: int | None, workers: int) -> int | None:
    if value is None or workers <= 1:
        return value
    return max(1, math.floor(value / workers))
