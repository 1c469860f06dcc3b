"""The plugin's markers: ``llm`` (what ``@llmcheck.repeat`` puts on a test),
``llm_faults`` (``@llmcheck.faults``) and ``llm_tool_faults``
(``@llmcheck.tool_faults``), their help lines, and the refusal of a fault marker on a
test that is not an LLM test (there would be no samples to inject into)."""

from __future__ import annotations

import pytest

from llmcheck.config.settings import marker_signature

MARKER_DOC = (f"llm({marker_signature()}): run this test many times and judge it by its "
              "pass rate (see @llmcheck.repeat)")
FAULTS_MARKER_DOC = ("llm_faults(plan): inject provider faults into the samples of this LLM "
                     "test (see @llmcheck.faults)")
TOOL_FAULTS_MARKER_DOC = ("llm_tool_faults(plan): inject tool faults into the tool loops of "
                          "this LLM test's samples (see @llmcheck.tool_faults)")
FAULT_MARKERS = {"llm_faults": "faults", "llm_tool_faults": "tool_faults"}
"""Fault markers and the decorator that sets each."""


def register(config: pytest.Config) -> None:
    for doc in (MARKER_DOC, FAULTS_MARKER_DOC, TOOL_FAULTS_MARKER_DOC):
        config.addinivalue_line("markers", doc)


def refuse_fault_markers(item: pytest.Item) -> None:
    """Fail ``item`` (not an LLM test) if it carries a fault marker."""
    for marker, decorator in FAULT_MARKERS.items():
        if item.get_closest_marker(marker) is not None:
            pytest.fail(f"{item.nodeid}: @llmcheck.{decorator} injects faults into the "
                        "samples of an LLM test; add @llmcheck.repeat(...) to run the test "
                        "as one", pytrace=False)
