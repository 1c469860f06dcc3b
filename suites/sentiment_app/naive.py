"""The naive version: one call, no retries, whatever comes back is the answer.

It turns litellm's retries off (``num_retries=0``, ``max_retries=0``), as apps do to
keep latency predictable, or as any client without retries behaves (plain ``requests``,
curl): a rate limit or a 5xx becomes the user's error.
"""

from __future__ import annotations

import litellm

from sentiment_app import parse_label, prompt


def classify(review: str, *, model: str, api_base: str | None = None,
             api_key: str | None = None) -> str | None:
    response = litellm.completion(
        model=model, api_base=api_base, api_key=api_key, temperature=0,
        messages=[{"role": "user", "content": prompt(review)}],
        num_retries=0, max_retries=0, timeout=10)
    return parse_label(response.choices[0].message.content)
