"""Model text with any code point goes through every writer (issue 18, item 12).

A provider's valid JSON answer may hold a lone surrogate (``"\\ud800"``), NUL, U+FFFE
or an astral character. UTF-8 cannot encode a lone surrogate: the journal, the cache,
the proxy's cache write and the JSON report used to raise on it (a 60-line traceback,
a test missing from the report, samples scored as failures, a dropped connection).
Each writer now keeps the text whole, escaped where its format cannot hold it.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from fault_server import FaultServer
from helpers import by_name

ODD = "a\ud800b\x00c\ufffe\U0001f600\udfffé"
"""A lone high and low surrogate, NUL, a noncharacter, an astral emoji, a Latin letter."""

SUITE = f"""
import llmcheck
import openai

ODD = {ODD!r}

@llmcheck.repeat(runs=3, min_pass_rate=0.5, verdict="threshold", early_stop=False)
def test_llm(llm):
    assert llm("hi").text == ODD

@llmcheck.repeat(runs=3, min_pass_rate=0.5, verdict="threshold", early_stop=False)
def test_llm_fails(llm):
    assert False, "bad answer: " + llm("hi").text

@llmcheck.repeat(runs=3, min_pass_rate=0.5, verdict="threshold", early_stop=False)
def test_app(llm_endpoint):
    app = openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key)
    reply = app.chat.completions.create(
        model=llm_endpoint.model, messages=[{{"role": "user", "content": "hi"}}])
    assert reply.choices[0].message.content == ODD
"""


def _run(pytester: pytest.Pytester, server: FaultServer, cache: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:randomly", "--llm-model=openai/m", f"--llm-api-base={server.url}",
        f"--llm-cache={cache}", "--junitxml=junit.xml")


def test_odd_code_points_round_trip_every_writer(pytester, model_stack):
    """Recorded with the cache on, through the llm client and an openai-SDK app via
    llm_endpoint: every sample is scored on the real answer, the report, markdown,
    HTML, JUnit XML and terminal hold the text (escaped where needed), and a replay
    from the cache gives the same answers without a request."""
    from llmcheck.records.schema import load_session

    pytester.makepyfile(SUITE)
    with FaultServer("ok", text=ODD) as server:
        result = _run(pytester, server, "write")
        recorded = server.request_count
        out = result.stdout.str() + result.stderr.str()
        assert "UnicodeEncodeError" not in out and "INTERNALERROR" not in out, out
        assert result.ret == pytest.ExitCode.TESTS_FAILED, out
        result.assert_outcomes(passed=2, failed=1)
        assert recorded == 9, server.requests

        report = by_name(json.loads((pytester.path / "reports" / "llmcheck.json").read_text()))
        assert set(report) == {"test_llm", "test_llm_fails", "test_app"}
        for name in ("test_llm", "test_app"):
            assert (report[name]["passed"], report[name]["failed"]) == (3, 0), report[name]
        assert (report["test_llm_fails"]["passed"], report["test_llm_fails"]["failed"]) == (0, 3)

        session = load_session(pytester.path / "reports" / "llmcheck.json")
        failing = next(t for t in session.tests if t.nodeid.endswith("test_llm_fails"))
        assert failing.failure_groups[0].message.startswith("bad answer: " + ODD)
        assert all(s.message.startswith("bad answer: " + ODD) for s in failing.samples)

        escaped = "bad answer: a\\ud800b\\x00c"  # as the terminal and the views show it
        assert escaped in out
        for view in ("llmcheck.md", "llmcheck.html"):
            text = (pytester.path / "reports" / view).read_text(encoding="utf-8")
            assert "ud800b" in text and "\U0001f600" in text, view

        junit = ET.parse(pytester.path / "junit.xml")  # well-formed XML
        failure = next(case.find("failure") for case in junit.iter("testcase")
                       if case.get("name") == "test_llm_fails")
        assert failure is not None and "\\ud800" in failure.text

        # replay: the cache gives back the very text, for both call paths
        result = _run(pytester, server, "read")
        assert server.request_count == recorded, "a replayed call reached the provider"
        result.assert_outcomes(passed=2, failed=1)
        replayed = by_name(json.loads((pytester.path / "reports" / "llmcheck.json").read_text()))
        for name in ("test_llm", "test_app"):
            assert (replayed[name]["passed"], replayed[name]["failed"]) == (3, 0)
