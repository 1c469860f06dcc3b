"""llmcheck: reliability testing for stochastic LLM outputs.

Run each LLM test many times, turn the samples into a pass rate with a
confidence interval, and give a verdict a team can trust.

The public names load on first use (:data:`_EXPORTS` says from where), so
``import llmcheck`` and loading the pytest plugin cost almost nothing in a run that
never touches an LLM test. Type checkers and editors read the ``TYPE_CHECKING``
imports instead, so they see real signatures; tests/test_typing.py keeps the three
lists (those imports, ``_EXPORTS``, ``__all__``) equal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from llmcheck.version import __version__ as __version__

# isort: off
if TYPE_CHECKING:  # what editors and type checkers see; at run time names load lazily
    from llmcheck.core.decorator import repeat
    from llmcheck.injection.decorator import faults
    from llmcheck.injection.catalogue import FaultPlan
    from llmcheck.injection.inprocess import inject
    from llmcheck.core.context import SampleContext, current_sample
    from llmcheck.core.latency import record_duration
    from llmcheck.errors import (InfrastructureError, LLMCheckError, LLMCheckWarning,
                                 ReportError, UsageError)
    from llmcheck.records.schema import (SampleRecord, SessionRecord, TestRecord,
                                         TestSettings, load_report, load_session)
    from llmcheck.stats import clopper_pearson_interval, pass_at_k, pass_hat_k, wilson_interval
    from llmcheck.model.completion import Completion, ToolCall
    from llmcheck.model.client import CallsStopped, LLMClient, ModelCallError
    from llmcheck.checks import (
        Case, CheckFailed, JudgeError, assert_contains, assert_ends_with, assert_golden,
        assert_json, assert_judge, assert_label, assert_length, assert_matches, assert_no_pii,
        assert_not_matches, assert_not_refusal, assert_number_in_range, assert_schema,
        assert_starts_with, assert_tool_call, cases, check, load_cases, soft)
    from llmcheck.episodes.checks import (
        assert_final_state, assert_max_steps, assert_no_tool_errors, assert_tool_called_with,
        assert_tool_not_called, assert_tools_called)
    from llmcheck.episodes.recorded import recorded_episode
    from llmcheck.episodes.episode import Episode
    from llmcheck.episodes.faults import tool_faults
    from llmcheck.episodes.loop import EpisodeBudget, arun_tool_loop, run_tool_loop
    from llmcheck.episodes.tools import tool
    from llmcheck.episodes.conversation import Conversation
    from llmcheck.episodes.user import SimulatedUser, run_conversation
    from llmcheck.episodes.dialogue_checks import (
        assert_every_reply, assert_goal_reached, assert_never_contradicts)
    from llmcheck.checks.stream import assert_stream_matches
# isort: on

_EXPORTS: dict[str, tuple[str, ...]] = {
    "llmcheck.core.decorator": ("repeat",),
    "llmcheck.injection.decorator": ("faults",),
    "llmcheck.injection.catalogue": ("FaultPlan",),
    "llmcheck.injection.inprocess": ("inject",),
    "llmcheck.core.context": ("current_sample", "SampleContext"),
    "llmcheck.core.latency": ("record_duration",),
    "llmcheck.errors": ("LLMCheckError", "UsageError", "InfrastructureError", "ReportError",
                        "LLMCheckWarning"),
    "llmcheck.records.schema": ("SampleRecord", "TestRecord", "TestSettings", "SessionRecord",
                         "load_session", "load_report"),
    "llmcheck.stats": ("wilson_interval", "clopper_pearson_interval", "pass_at_k",
                       "pass_hat_k"),
    "llmcheck.model.completion": ("Completion", "ToolCall"),
    "llmcheck.model.client": ("LLMClient", "ModelCallError", "CallsStopped"),
    "llmcheck.checks": (
        "assert_schema", "assert_json", "assert_matches", "assert_not_matches",
        "assert_contains", "assert_length", "assert_starts_with", "assert_ends_with",
        "assert_number_in_range", "assert_label", "assert_no_pii", "assert_not_refusal",
        "assert_golden", "assert_tool_call", "assert_judge", "check", "soft", "cases",
        "load_cases", "Case", "CheckFailed", "JudgeError",
    ),
    "llmcheck.episodes.checks": (
        "assert_tools_called", "assert_tool_called_with", "assert_tool_not_called",
        "assert_max_steps", "assert_no_tool_errors", "assert_final_state",
    ),
    "llmcheck.episodes.recorded": ("recorded_episode",),
    "llmcheck.episodes.episode": ("Episode",),
    "llmcheck.episodes.faults": ("tool_faults",),
    "llmcheck.episodes.loop": ("EpisodeBudget", "arun_tool_loop", "run_tool_loop"),
    "llmcheck.episodes.tools": ("tool",),
    "llmcheck.episodes.conversation": ("Conversation",),
    "llmcheck.episodes.user": ("SimulatedUser", "run_conversation"),
    "llmcheck.episodes.dialogue_checks": ("assert_every_reply", "assert_goal_reached",
                                          "assert_never_contradicts"),
    "llmcheck.checks.stream": ("assert_stream_matches",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [  # a literal list, so type checkers take these names as exported
    "assert_stream_matches",
    "CallsStopped", "Case", "CheckFailed", "Completion", "Episode", "EpisodeBudget",
    "FaultPlan", "InfrastructureError", "arun_tool_loop", "run_tool_loop", "tool",
    "tool_faults",
    "JudgeError", "LLMCheckError", "LLMCheckWarning", "LLMClient", "ModelCallError",
    "ReportError", "SampleContext", "SampleRecord", "SessionRecord", "TestRecord",
    "TestSettings", "ToolCall", "UsageError", "__version__", "assert_contains",
    "assert_ends_with", "assert_final_state", "assert_golden", "assert_json", "assert_judge",
    "assert_label", "assert_length", "assert_matches", "assert_max_steps", "assert_no_pii",
    "assert_no_tool_errors", "assert_not_matches",
    "assert_not_refusal", "assert_number_in_range", "assert_schema", "assert_starts_with",
    "assert_tool_call", "assert_tool_called_with", "assert_tool_not_called",
    "assert_tools_called", "cases", "check", "clopper_pearson_interval", "current_sample",
    "faults", "inject", "load_cases", "load_report", "load_session", "pass_at_k", "pass_hat_k",
    "record_duration", "recorded_episode", "repeat", "soft", "wilson_interval",
    "Conversation", "SimulatedUser", "run_conversation", "assert_every_reply",
    "assert_goal_reached", "assert_never_contradicts",
]


if not TYPE_CHECKING:  # a type checker flags a misspelt name instead of taking it as Any

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module 'llmcheck' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return __all__
