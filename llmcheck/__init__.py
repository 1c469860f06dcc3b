"""llmcheck: reliability testing for stochastic LLM outputs.

Run each LLM test many times, turn the samples into a pass rate with a
confidence interval, and give a verdict a team can trust.

The public names below are loaded on first use, so that ``import llmcheck``
(and loading the pytest plugin) costs almost nothing in a run that never
touches an LLM test.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "repeat": "llmcheck.decorator",
    "current_sample": "llmcheck.context",
    "SampleContext": "llmcheck.context",
    "SampleInfo": "llmcheck.runner",
    "LLMCheckError": "llmcheck.errors",
    "UsageError": "llmcheck.errors",
    "InfrastructureError": "llmcheck.errors",
    "ReportError": "llmcheck.errors",
    "SampleRecord": "llmcheck.records",
    "TestRecord": "llmcheck.records",
    "SessionRecord": "llmcheck.records",
    "load_session": "llmcheck.records",
    "wilson_interval": "llmcheck.stats",
    "clopper_pearson_interval": "llmcheck.stats",
    "pass_at_k": "llmcheck.stats",
    "pass_hat_k": "llmcheck.stats",
    "Completion": "llmcheck.completion",
    "ToolCall": "llmcheck.completion",
    "assert_schema": "llmcheck.checks",
    "assert_json": "llmcheck.checks",
    "assert_matches": "llmcheck.checks",
    "assert_not_matches": "llmcheck.checks",
    "assert_contains": "llmcheck.checks",
    "assert_length": "llmcheck.checks",
    "assert_starts_with": "llmcheck.checks",
    "assert_ends_with": "llmcheck.checks",
    "assert_number_in_range": "llmcheck.checks",
    "assert_label": "llmcheck.checks",
    "assert_no_pii": "llmcheck.checks",
    "assert_not_refusal": "llmcheck.checks",
    "assert_golden": "llmcheck.checks",
    "assert_tool_call": "llmcheck.checks",
    "assert_judge": "llmcheck.checks",
    "check": "llmcheck.checks",
    "soft": "llmcheck.checks",
    "cases": "llmcheck.checks",
    "load_cases": "llmcheck.checks",
    "Case": "llmcheck.checks",
    "CheckFailed": "llmcheck.checks",
    "JudgeError": "llmcheck.checks",
}

__all__ = [
    "Case",
    "CheckFailed",
    "Completion",
    "InfrastructureError",
    "JudgeError",
    "LLMCheckError",
    "ReportError",
    "SampleContext",
    "SampleInfo",
    "SampleRecord",
    "SessionRecord",
    "TestRecord",
    "ToolCall",
    "UsageError",
    "__version__",
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
    "clopper_pearson_interval",
    "current_sample",
    "load_cases",
    "load_session",
    "pass_at_k",
    "pass_hat_k",
    "repeat",
    "soft",
    "wilson_interval",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from llmcheck.checks import (
        Case,
        CheckFailed,
        JudgeError,
        assert_contains,
        assert_ends_with,
        assert_golden,
        assert_json,
        assert_judge,
        assert_label,
        assert_length,
        assert_matches,
        assert_no_pii,
        assert_not_matches,
        assert_not_refusal,
        assert_number_in_range,
        assert_schema,
        assert_starts_with,
        assert_tool_call,
        cases,
        check,
        load_cases,
        soft,
    )
    from llmcheck.completion import Completion, ToolCall
    from llmcheck.context import SampleContext, current_sample
    from llmcheck.decorator import repeat
    from llmcheck.errors import InfrastructureError, LLMCheckError, ReportError, UsageError
    from llmcheck.records import SampleRecord, SessionRecord, TestRecord, load_session
    from llmcheck.runner import SampleInfo
    from llmcheck.stats import clopper_pearson_interval, pass_at_k, pass_hat_k, wilson_interval


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
