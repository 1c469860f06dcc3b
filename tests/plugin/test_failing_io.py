"""A failing sample keeps what it sent to the model and what came back; a passing one
keeps nothing. Both call paths (the ``llm`` fixture and an app's own client through
``llm_endpoint``) are run through the real plugin against a loopback provider
(:class:`fault_server.FaultServer`) whose answer is hostile: a ``</script>``, backtick
fences and markdown table pipes at its start, a long middle, and a tail."""

from __future__ import annotations

import re

import pytest
from fault_server import FaultServer
from helpers import by_name

HEAD = "</script><script>alert('io')</script>\n```` ``` fence\n| a | b |\n| --- | --- |\n"
TAIL = "\n| c | d |\n~~~ END-OF-ANSWER ````"
ANSWER = HEAD + "M" * 2100 + TAIL
"""2,2xx characters: cut in the middle at the default 2000, keeping HEAD and TAIL (not
longer: the provider streams it two characters an event)."""
KEY = "sk-proj-KeptIoKey0123456789abcdefXYZ"

SUITE = """
import os
import llmcheck
import openai

def prompt(index):
    return [{"role": "system", "content": "You label reviews. Key: " + os.environ["IO_KEY"]},
            {"role": "user", "content": f"Label review number {index} |x| " + "P" * 3000}]

def ask_as_an_app(endpoint, index, stream):
    app = openai.OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0)
    reply = app.chat.completions.create(model=endpoint.model, stream=stream,
                                        messages=prompt(index))
    if stream:
        list(reply)

repeat = llmcheck.repeat(min_pass_rate=0.1, concurrency=2, verdict="threshold",
                         early_stop=False, runs=6)

@repeat
def test_fixture(llm, llm_sample):
    reply = llm.chat(prompt(llm_sample.index))
    assert llm_sample.index % 2 == 1, "even samples fail"

@repeat
def test_app(llm_endpoint, llm_sample):
    ask_as_an_app(llm_endpoint, llm_sample.index, stream=False)
    assert llm_sample.index % 2 == 1, "even samples fail"

@llmcheck.repeat(runs=2, min_pass_rate=0.1, concurrency=2, verdict="threshold",
                 early_stop=False)
def test_app_stream(llm_endpoint, llm_sample):
    ask_as_an_app(llm_endpoint, llm_sample.index, stream=True)
    assert llm_sample.index % 2 == 1, "even samples fail"
"""
TESTS = (("test_fixture", None), ("test_app", "proxy"), ("test_app_stream", "proxy"))


@pytest.fixture
def provider(model_stack):
    with FaultServer("ok", text=ANSWER + " " + KEY) as server:
        yield server


def _run(pytester, provider, monkeypatch, *args):
    monkeypatch.setenv("IO_KEY", KEY)
    pytester.makepyfile(SUITE)
    return pytester.runpytest("--llm-model=openai/provider-model",
                              f"--llm-api-base={provider.url}", "--llm-api-key-env=IO_KEY",
                              "-p", "no:randomly",
                              "-p", "no:xdist", *args)


def _read(pytester, name):
    return (pytester.path / "reports" / name).read_text(encoding="utf-8")


def test_a_failing_samples_prompt_and_answer_are_kept_and_a_passing_ones_are_not(
        pytester, report, provider, monkeypatch):
    result = _run(pytester, provider, monkeypatch)
    result.assert_outcomes(passed=len(TESTS))
    tests = by_name(report())
    raw = _read(pytester, "llmcheck.json")
    for name, via in TESTS:
        samples = tests[name]["samples"]
        assert len(samples) == (2 if name == "test_app_stream" else 6)
        for s in samples:
            if s["outcome"] == "passed":
                assert s["exchanges"] == []
                continue
            assert s["outcome"] == "failed" and s["index"] % 2 == 0
            [x] = s["exchanges"]
            assert x["call"] == 0 and x["via"] == via and x["messages_left_out"] == 0
            system, user = x["messages"]
            assert system["role"] == "system" and user["role"] == "user"
            # redacted: the key in the prompt and in the answer
            assert system["content"] == "You label reviews. Key: [REDACTED]"
            # cut in the middle at the default 2000 characters, saying how much
            assert user["content"].startswith(f"Label review number {s['index']} |x| PPP")
            assert re.search(r"\[… 1,0\d\d of 3,0\d\d characters cut …\]", user["content"])
            answer = x["answer"]
            assert answer.startswith(HEAD) and answer.endswith(" [REDACTED]")
            assert "END-OF-ANSWER" in answer
            cut = re.search(r"\n\[… ([\d,]+) of ([\d,]+) characters cut …\]\n", answer)
            assert cut is not None
            assert len(answer) - len(cut.group()) == 2000
    # the passing samples' prompts are nowhere in the report
    for index in (1, 3, 5):
        assert f"Label review number {index} " not in raw
    assert KEY not in raw


def test_the_markdown_and_html_failure_groups_show_them_inert(
        pytester, provider, monkeypatch):
    markdown_it = pytest.importorskip("markdown_it")
    _run(pytester, provider, monkeypatch).assert_outcomes(passed=len(TESTS))
    md = _read(pytester, "llmcheck.md")
    html = _read(pytester, "llmcheck.html")
    assert KEY not in md and KEY not in html

    # markdown: one fenced block per text, which the answer's backticks cannot close
    assert "### Prompts and answers of failing samples" in md
    parser = markdown_it.MarkdownIt("commonmark").enable("table")
    fences = [t.content for t in parser.parse(md) if t.type == "fence"]
    answers = [f for f in fences if f.startswith(HEAD)]
    prompts = [f for f in fences if f.startswith("[system]\nYou label reviews.")]
    assert len(answers) == len(prompts) == len(TESTS)  # one failing sample of each test
    assert all(TAIL.strip() in f for f in answers)
    assert {re.search(r"Label review number (\d+)", p).group(1) for p in prompts} == {"0"}
    rendered = parser.render(md)
    assert "alert('io')" not in re.sub(r"<pre>.*?</pre>", "", rendered, flags=re.S)
    assert "<script" not in rendered
    # the answer's table pipes make no table: every table is above the section
    section = md.splitlines().index("### Prompts and answers of failing samples")
    tables = [t.map[0] for t in parser.parse(md) if t.type == "table_open"]
    assert tables and all(line < section for line in tables)

    # HTML: shown escaped in the test's failure group, never as markup
    assert "&lt;/script&gt;&lt;script&gt;alert(&#39;io&#39;)" in html
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert not any("alert(" in s for s in scripts)
    for n in (0, 2, 4):
        assert f"Label review number {n} |x|" in html
    for n in (1, 3, 5):
        assert f"Label review number {n} " not in html and f"Label review number {n} " \
            not in md


def test_the_cap_holds_and_zero_keeps_nothing(pytester, report, provider, monkeypatch):
    _run(pytester, provider, monkeypatch, "--llm-keep-io=100").assert_outcomes(passed=len(TESTS))
    for test in report()["tests"]:
        failing = [s for s in test["samples"] if s["outcome"] != "passed"]
        assert failing
        for s in failing:
            [x] = s["exchanges"]
            for value in [m["content"] for m in x["messages"]] + [x["answer"]]:
                cut = re.search(r"\n\[… [\d,]+ of [\d,]+ characters cut …\]\n", value)
                kept = len(value) - (len(cut.group()) if cut else 0)
                assert kept <= 100, value
            assert x["answer"].startswith(HEAD[:50])

    _run(pytester, provider, monkeypatch, "--llm-keep-io=0").assert_outcomes(passed=len(TESTS))
    data = report()
    assert all(s["exchanges"] == [] for t in data["tests"] for s in t["samples"])
    assert "Prompts and answers" not in _read(pytester, "llmcheck.md")


def test_a_bad_keep_io_is_a_usage_error(pytester, provider, monkeypatch):
    result = _run(pytester, provider, monkeypatch, "--llm-keep-io=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-keep-io=lots is invalid*an integer >= 0*"])


ERROR_SUITE = """
import llmcheck
import openai

PROMPT = [{"role": "user", "content": "Label this review: unreachable."}]

@llmcheck.repeat(runs=2, concurrency=1)
def test_fixture(llm):
    llm.chat(PROMPT)

@llmcheck.repeat(runs=2, concurrency=1)
def test_app(llm_endpoint):
    app = openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key,
                        max_retries=0)
    app.chat.completions.create(model=llm_endpoint.model, messages=PROMPT)
"""


def test_an_errored_sample_keeps_its_prompt_and_says_no_answer_came(pytester, report,
                                                                     model_stack):
    """A provider that only rate-limits: every sample is an error, and each keeps the
    prompt it could not get answered; the HTML says why no answer came."""
    pytester.makepyfile(ERROR_SUITE)
    with FaultServer("retry_after") as provider:
        pytester.runpytest("--llm-model=openai/provider-model",
                           f"--llm-api-base={provider.url}", "--llm-retries=0",
                           "-p", "no:randomly", "-p", "no:xdist")
    tests = by_name(report())
    for name, via in (("test_fixture", None), ("test_app", "proxy")):
        samples = tests[name]["samples"]
        assert samples and all(s["outcome"] == "error" for s in samples)
        for s in samples:
            [x] = s["exchanges"]
            assert x["via"] == via and x["answer"] is None
            assert x["messages"] == [{"role": "user",
                                      "content": "Label this review: unreachable."}]
            assert s["calls"][x["call"]]["error"]
    html = _read(pytester, "llmcheck.html")
    assert html.count("Label this review: unreachable.") >= 2
    assert "(no answer: " in html
    md = _read(pytester, "llmcheck.md")
    assert "the answer:\n\n```text\n(no answer: " in md
