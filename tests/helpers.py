"""Helpers shared by the tests in every folder (imported as ``helpers``: tests/ is on
pytest's ``pythonpath``). Fixtures live in tests/conftest.py; plain functions live here,
so a test module imports them by name instead of keeping a copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def load_report(pytester: pytest.Pytester, report_dir: str = "reports") -> dict:
    """The JSON report a pytester session wrote, as a dict."""
    path = Path(pytester.path) / report_dir / "llmcheck.json"
    assert path.exists(), f"no report at {path}"
    return json.loads(path.read_text())


def by_name(report: dict) -> dict[str, dict]:
    """A report's test records keyed by the test function's name (the last part of
    its node id)."""
    return {t["nodeid"].split("::")[-1]: t for t in report["tests"]}


def scenario_server(scenario: dict):
    """A simulator serving ``scenario`` on a free loopback port (use it as a context
    manager)."""
    from llmcheck.simulator import SimulatorServer

    return SimulatorServer(scenario=scenario)


EXTRACT_SUITE = """
import llmcheck

@llmcheck.repeat(runs=8, min_pass_rate=0.5, concurrency=2)
def test_extract(llm):
    reply = llm("Return Ada Lovelace as JSON with name and age.")
    assert reply.json(allow_fence=True)["name"] == "Ada Lovelace"
"""
"""A suite of one LLM test that extracts a person as JSON: what a first user writes."""
