"""A small app under test: it labels the sentiment of a product review by asking a model.

Three versions of the same feature, with the same prompt, as teams really write it:

- :mod:`.naive`: one litellm call, no retries, the answer trusted as it comes;
- :mod:`.resilient`: tenacity retries on what providers do transiently (honouring
  Retry-After), a check that the answer is a label, and a fallback model;
- :mod:`.chain`: a LangChain chain (``ChatOpenAI``) on any OpenAI-compatible URL.

The suites test them through ``llm_endpoint`` under injected provider faults
(``suites/test_app_faults.py``, ``suites/test_langchain_app.py``).
"""

LABELS = ("positive", "negative", "neutral")


def prompt(review: str) -> str:
    return ("Classify the sentiment of this product review as exactly one word: "
            f"positive, negative or neutral.\n\nReview: {review}")


def parse_label(text: str | None) -> str | None:
    """The label in a reply (case, spaces and a trailing full stop forgiven), or None."""
    word = (text or "").strip().strip(".").lower()
    return word if word in LABELS else None
