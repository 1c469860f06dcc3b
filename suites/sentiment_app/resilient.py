"""The resilient version: retries with tenacity, a label check, and a fallback model.

- Transient provider failures (429, 5xx, timeouts, refused or reset connections) are
  retried with exponential backoff and jitter, waiting the Retry-After the provider
  asks for (capped), up to ``ATTEMPTS`` times per model;
- an answer that is not one of the labels (empty, a refusal, a cut-off reply) is
  retried like a transient failure;
- when the primary model keeps failing, the same request goes to ``fallback_model``.
"""

from __future__ import annotations

import litellm
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from sentiment_app import parse_label, prompt

ATTEMPTS = 4
MAX_RETRY_AFTER = 2.0  # seconds: a longer Retry-After means go to the fallback instead

TRANSIENT = (litellm.RateLimitError, litellm.InternalServerError,
             litellm.ServiceUnavailableError, litellm.BadGatewayError,
             litellm.APIConnectionError, litellm.Timeout)


class NotALabel(Exception):
    """The model answered, but not with one of the labels."""


_backoff = wait_exponential(multiplier=0.05, max=1.0) + wait_random(0, 0.05)


def _wait(state: RetryCallState) -> float:
    """The provider's Retry-After when it sent one (capped), else backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return min(float(headers.get("retry-after")), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return _backoff(state)


@retry(retry=retry_if_exception_type((*TRANSIENT, NotALabel)),
       stop=stop_after_attempt(ATTEMPTS), wait=_wait, reraise=True)
def _ask(review: str, model: str, api_base: str | None, api_key: str | None) -> str:
    response = litellm.completion(
        model=model, api_base=api_base, api_key=api_key, temperature=0,
        messages=[{"role": "user", "content": prompt(review)}],
        num_retries=0, max_retries=0, timeout=10)  # tenacity retries, not litellm
    label = parse_label(response.choices[0].message.content)
    if label is None:
        raise NotALabel(repr(response.choices[0].message.content)[:200])
    return label


def classify(review: str, *, model: str, api_base: str | None = None,
             api_key: str | None = None, fallback_model: str | None = None) -> str:
    try:
        return _ask(review, model, api_base, api_key)
    except (*TRANSIENT, NotALabel):
        if fallback_model is None:
            raise
        return _ask(review, fallback_model, api_base, api_key)
