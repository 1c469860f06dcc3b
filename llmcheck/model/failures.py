"""What went wrong with a model call, read from litellm's exceptions: which failures
are worth a retry, how long the provider asked to wait, which are the user's to fix
(a usage error that says what to do), and how to describe the rest."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from llmcheck.errors import UsageError
from llmcheck.model.deadline import CallsStopped, DeadlineExceeded
from llmcheck.model.provider import import_litellm
from llmcheck.redact import redact

if TYPE_CHECKING:
    from llmcheck.model.client import ModelConfig


class MalformedResponse(Exception):
    """The provider answered, but not with a completion (no choices, a plain body to
    a streamed request...). Internal: a provider fault, retried, then a ModelCallError."""



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


def is_retryable(exc: BaseException) -> bool:
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


def is_unknown_provider(exc: BaseException) -> bool:
    """litellm could not tell which provider serves the model (a name without prefix)."""
    return (isinstance(exc, import_litellm().BadRequestError)
            and "LLM Provider NOT provided" in str(exc))


def unknown_provider_advice(model: str) -> str:
    """What to do about a model litellm cannot place (preflight and the first call)."""
    return (f"litellm cannot tell which provider serves {model!r}; prefix it with the "
            "provider, e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest or "
            "ollama/llama3 (litellm's provider list: https://docs.litellm.ai/docs/providers)")


def usage_error(exc: BaseException, config: ModelConfig) -> UsageError | None:
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
            f"context (--llm-local-context). The server said: {short(text)}")
    if is_unknown_provider(exc):
        return UsageError(f"model {config.model!r}: {unknown_provider_advice(config.model)}")
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or \
            _is_credentials_problem(exc):
        where = (f"the key in ${config.api_key_env}" if config.api_key_env
                 else "no key (set --llm-api-key-env=NAME_OF_THE_ENV_VAR)")
        return UsageError(f"the provider rejected the credentials for {config.model!r}: "
                          f"{where}. Provider said: {short(text)}")
    if isinstance(exc, litellm.NotFoundError):
        return UsageError(f"model {config.model!r} was not found at the provider: "
                          f"{short(text)}")
    if isinstance(exc, litellm.ContentPolicyViolationError):
        return None  # the model's (or provider's) behaviour: a sample failure
    if isinstance(exc, litellm.BadRequestError):
        return UsageError(f"the provider rejected the request to {config.model!r} as invalid: "
                          f"{short(text)}")
    return None


def describe(exc: BaseException) -> str:
    """What went wrong with an attempt, for the error message of the call."""
    if isinstance(exc, (DeadlineExceeded, MalformedResponse)):
        return str(exc)
    text = f"{type(exc).__name__}: {short(str(exc))}"
    if _is_malformed(exc) or (_JSON_ERROR.search(str(exc)) and _status(exc) in (None, 500)):
        return ("the provider's answer does not read as a completion (not JSON, cut short "
                f"or malformed): {text}")
    return text


def short(text: str, limit: int = 300) -> str:
    """``text`` on one line, redacted and then cut to ``limit`` characters (in that
    order: a key cut first would no longer match the whole secret)."""
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


