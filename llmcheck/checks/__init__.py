"""The assertion library: checks that record what they measured in the sample.

Every ``assert_*`` accepts a :class:`~llmcheck.model.completion.Completion` or a
``str`` (and, where it makes sense, an already-parsed value), records one
:class:`~llmcheck.records.schema.CheckResult` in the running sample, and raises
:class:`CheckFailed` (an ``AssertionError``) when the output lacks the
property. Bad arguments raise :class:`~llmcheck.errors.UsageError` instead: a
broken test is not a failing model. ``with soft():`` collects failures and
raises once; ``@check`` turns a predicate into a recorded check.

Nothing here imports pytest, litellm or jsonschema at import time; they are
imported by the few functions that need them.
"""

from __future__ import annotations

from llmcheck.checks.base import CheckFailed, check, soft
from llmcheck.checks.cases import Case, cases, load_cases
from llmcheck.checks.golden import assert_golden, normalize_text
from llmcheck.checks.judge import JudgeError, assert_judge
from llmcheck.checks.pii import assert_no_pii, find_pii
from llmcheck.checks.refusal import REFUSAL_PHRASES, assert_not_refusal
from llmcheck.checks.schema import assert_json, assert_schema
from llmcheck.checks.text import (
    assert_contains,
    assert_ends_with,
    assert_label,
    assert_length,
    assert_matches,
    assert_not_matches,
    assert_number_in_range,
    assert_starts_with,
)
from llmcheck.checks.tools import assert_tool_call

__all__ = [
    "REFUSAL_PHRASES",
    "Case",
    "CheckFailed",
    "JudgeError",
    "assert_contains",
    "assert_ends_with",
    "assert_golden",
    "assert_json",
    "assert_judge",
    "assert_label",
    "assert_length",
    "assert_matches",
    "assert_no_pii",
    "assert_not_matches",
    "assert_not_refusal",
    "assert_number_in_range",
    "assert_schema",
    "assert_starts_with",
    "assert_tool_call",
    "cases",
    "check",
    "find_pii",
    "load_cases",
    "normalize_text",
    "soft",
]
