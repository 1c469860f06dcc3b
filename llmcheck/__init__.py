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
}

__all__ = [
    "InfrastructureError",
    "LLMCheckError",
    "ReportError",
    "SampleContext",
    "SampleInfo",
    "SampleRecord",
    "SessionRecord",
    "TestRecord",
    "UsageError",
    "__version__",
    "clopper_pearson_interval",
    "current_sample",
    "load_session",
    "pass_at_k",
    "pass_hat_k",
    "repeat",
    "wilson_interval",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
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
