"""Labels: the output is one label from a fixed set, compared after trimming
quotes, punctuation and (by default) case."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from llmcheck.checks.base import (
    as_text,
    conclude,
    excerpt,
    short_repr,
)
from llmcheck.checks.text.patterns import as_items, items_label, options_label
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion
from llmcheck.redact import redact

_LABEL_TRIM = " \t\r\n\"'`*_.,;:!?()[]{}<>\u201c\u201d\u2018\u2019\u00ab\u00bb\u3002"


def normalize_label(text: str, case_sensitive: bool = False) -> str:
    """NFKC, whitespace collapsed, surrounding quotes/markdown/punctuation removed,
    case folded (unless ``case_sensitive``): ``' **Positive.**\\n'`` -> ``'positive'``."""
    text = " ".join(unicodedata.normalize("NFKC", text).split()).strip(_LABEL_TRIM)
    return text if case_sensitive else text.casefold()


def assert_label(
    output: Completion | str,
    labels: Iterable[str],
    *,
    case_sensitive: bool = False,
) -> str | None:
    """Check that the output is exactly one of ``labels`` and return that label.

    Both the output and the labels are compared after :func:`normalize_label`,
    so ``"Positive."``, ``"**positive**"`` and ``" POSITIVE\\n"`` all count as
    ``"positive"``; an answer that merely *contains* a label (``"The sentiment
    is positive"``) fails, with a hint. Returns the label as given in
    ``labels``. Recorded as ``label(['negative', 'positive'])``; ``value`` is the
    normalized output (cut to 60 chars).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    values = as_items(labels, "assert_label",
                    "label")
    canon: dict[str, str] = {}
    for label in values:
        key = normalize_label(label, case_sensitive)
        if not key:
            raise UsageError(f"assert_label: label {label!r} is empty after normalization")
        if key in canon and canon[key] != label:
            raise UsageError(f"assert_label: labels {canon[key]!r} and {label!r} are the same "
                             "after normalization; pass case_sensitive=True or drop one")
        canon[key] = label
    text = as_text(output, "assert_label")
    got = normalize_label(text, case_sensitive)
    name = f"label({items_label(values)}{options_label(case_sensitive)})"
    shown = normalize_label(redact(text), case_sensitive)[:60]  # masked before lowercased
    if got in canon:
        conclude(name, True, value=shown)
        return canon[got]
    message = f"expected one of {short_repr(values, 200)}, got {excerpt(text, 120)}"
    inside = [label for key, label in canon.items()
              if re.search(rf"(?<!\w){re.escape(key)}(?!\w)", got)]
    if inside:
        message += f" (it mentions {short_repr(inside, 120)} but is not just a label)"
    conclude(name, False, message, shown)
    return None
