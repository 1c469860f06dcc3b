"""llmcheck: reliability testing for stochastic LLM outputs.

Run each LLM test many times, turn the samples into a pass rate with a
confidence interval, and give a verdict a team can trust.

The public names below are loaded on first use, so that ``import llmcheck``
(and loading the pytest plugin) costs almost nothing in a run that never
touches an LLM test. :data:`_EXPORTS` is their one list: ``__all__`` and the
loader are derived from it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "llmcheck.core.decorator": ("repeat", "faults"),
    "llmcheck.injection.catalogue": ("FaultPlan",),
    "llmcheck.injection.inprocess": ("inject",),
    "llmcheck.core.context": ("current_sample", "SampleContext"),
    "llmcheck.errors": ("LLMCheckError", "UsageError", "InfrastructureError", "ReportError",
                        "LLMCheckWarning"),
    "llmcheck.records.schema": ("SampleRecord", "TestRecord", "TestSettings", "SessionRecord",
                         "load_session", "load_report"),
    "llmcheck.stats": ("wilson_interval", "clopper_pearson_interval", "pass_at_k",
                       "pass_hat_k"),
    "llmcheck.model.completion": ("Completion", "ToolCall"),
    "llmcheck.model.client": ("ModelCallError", "CallsStopped"),
    "llmcheck.checks": (
        "assert_schema", "assert_json", "assert_matches", "assert_not_matches",
        "assert_contains", "assert_length", "assert_starts_with", "assert_ends_with",
        "assert_number_in_range", "assert_label", "assert_no_pii", "assert_not_refusal",
        "assert_golden", "assert_tool_call", "assert_judge", "check", "soft", "cases",
        "load_cases", "Case", "CheckFailed", "JudgeError",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_MODULE_OF, "__version__"])


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'llmcheck' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
