"""One call path: the ``llm`` fixture's client and an app's own client through
``llm_endpoint`` take the same accounting (budget, pacing, records, blame).

The provider in these tests is :class:`fault_server.FaultServer` on loopback, which
counts and timestamps every request it receives: what llmcheck's own records say is
checked against what reached the provider.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from fault_server import FaultServer
from helpers import by_name

HEADER = """
import llmcheck
import openai

PROMPT = [{"role": "user", "content": "Label this review: great."}]
"""
APP_TEST = """
@llmcheck.repeat(runs=10, min_pass_rate=0.5, concurrency=4)
def test_app(llm_endpoint):
    app = openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key)
    app.chat.completions.create(model=llm_endpoint.model, messages=PROMPT)
"""
FIXTURE_TEST = """
@llmcheck.repeat(runs=10, min_pass_rate=0.5, concurrency=4)
def test_fixture(llm):
    llm.chat(PROMPT)
"""
APP_AND_FIXTURE = HEADER + APP_TEST + FIXTURE_TEST


@pytest.fixture
def provider(model_stack):
    with FaultServer("ok") as server:
        yield server


def _provider_args(provider: FaultServer) -> list[str]:
    return ["--llm-model=openai/provider-model", f"--llm-api-base={provider.url}",
            "-p", "no:randomly"]


@pytest.mark.parametrize("first", ["test_app", "test_fixture"])
def test_max_calls_holds_across_the_fixture_and_an_apps_own_client(
        pytester, report, provider, first):
    """--llm-max-calls=3 with a test whose app calls through llm_endpoint and a test
    using llm: 3 requests reach the provider in all, whichever test runs first; the
    sample a refusal cut into is budget-stopped (never an error or a failure), the
    other test gets no sample, and the session fails."""
    tests = [APP_TEST, FIXTURE_TEST] if first == "test_app" else [FIXTURE_TEST, APP_TEST]
    pytester.makepyfile(HEADER + "".join(tests))
    result = pytester.runpytest("--llm-max-calls=3", *_provider_args(provider))
    assert provider.request_count == 3, provider.requests
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    tests = by_name(report())
    ran, starved = tests[first], tests["test_fixture" if first == "test_app" else "test_app"]
    assert ran["budget_stopped"] is True and starved["budget_stopped"] is True
    assert starved["run"] == 0 and not starved["samples"]
    # four samples start at once: three requests are admitted and any other sample that
    # started before the third admission is refused (how many depends on timing: one
    # that finished early makes room for a fifth); none is counted
    refused = [s for s in ran["samples"] if s["budget_refused"]]
    for sample in refused:
        assert sample["counted"] is False
        assert "--llm-max-calls=3 reached" in sample["message"]
    # the verdict skips the refused sample, whichever index it had, and counts the
    # three that got their answer
    counted = [s for s in ran["samples"] if s["counted"]]
    assert len(counted) == 3 and all(s["outcome"] == "passed" for s in counted)
    assert (ran["passed"], ran["failed"], ran["errors"]) == (3, 0, 0)
    assert ran["failure_groups"] == []  # a refusal is no failure of any kind
    sent = [c for s in ran["samples"] for c in s["calls"]]
    assert len(sent) == 3 and all(c["error"] is None for c in sent)
    result.stdout.fnmatch_lines(["*llmcheck budget:*--llm-max-calls=3 reached*"])


FALLBACK_APP = """
import llmcheck
import openai

@llmcheck.repeat(runs=10, min_pass_rate=0.5, concurrency=4)
def test_app_with_a_fallback(llm_endpoint):
    app = openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key)
    try:
        app.chat.completions.create(model=llm_endpoint.model,
                                    messages=[{"role": "user", "content": "hi"}])
    except openai.RateLimitError:
        return  # the app's fallback swallows the refusal: the body "passes"
"""


def test_a_refusal_the_app_swallowed_is_not_a_pass(pytester, report, provider):
    """An app whose fallback hides the budget's 429 still does not pass that sample: the
    sample is budget-refused whatever the body made of it, and the verdict counts only
    the samples whose requests were sent."""
    pytester.makepyfile(FALLBACK_APP)
    pytester.runpytest("--llm-max-calls=2", *_provider_args(provider))
    assert provider.request_count == 2
    test = by_name(report())["test_app_with_a_fallback"]
    refused = [s for s in test["samples"] if s["budget_refused"]]
    assert refused and all(not s["counted"] for s in refused)
    assert test["passed"] == 2 and test["errors"] == 0
    assert test["budget_stopped"] is True and test["failure_groups"] == []


def test_rpm_paces_the_fixture_and_an_apps_own_client_together(pytester, provider):
    """--llm-rpm=120 (one request every 0.5 s) with a test whose app calls through
    llm_endpoint and a test using llm: the k-th request of the session reaches the
    provider no earlier than (k-1) x 0.5 s after the session started, whichever path
    sent it (one limiter per model for both)."""
    import time

    pytester.makepyfile(HEADER + (APP_TEST + FIXTURE_TEST).replace("runs=10", "runs=4"))
    started = time.monotonic()
    result = pytester.runpytest("--llm-rpm=120", "--llm-no-early-stop",
                                *_provider_args(provider))
    result.assert_outcomes(passed=2)
    arrived = sorted(r["at"] - started for r in provider.requests)
    assert len(arrived) == 8
    early = [(k, round(at, 3)) for k, at in enumerate(arrived) if at < k * 0.5]
    assert not early, f"requests that came before their slot: {early} (all: {arrived})"


def test_a_request_past_the_budget_gets_a_clear_http_error(model_stack):
    """The proxy refuses a request past the session's budget with a 429 that names the
    budget and tells clients not to retry; nothing reaches the provider."""
    from llmcheck.model.accounting import Budget, ModelSession
    from llmcheck.model.proxy import FaultProxy

    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})

    def post(url: str) -> tuple[int, dict, dict]:
        request = urllib.request.Request(url + "/chat/completions", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), json.load(exc)

    with FaultServer("ok") as provider, FaultProxy(
            provider.url, accounts=ModelSession(budget=Budget(max_calls=1))) as proxy:
        assert post(proxy.url)[0] == 200
        status, headers, doc = post(proxy.url)
    assert status == 429 and headers.get("x-should-retry") == "false"
    assert doc["error"]["code"] == "llmcheck_budget_spent"
    assert "--llm-max-calls=1 reached" in doc["error"]["message"]
    assert "not sent" in doc["error"]["message"]
    assert provider.request_count == 1


def test_max_cost_counts_the_apps_calls(simulator):
    """--llm-max-cost counts what the app's calls through the proxy cost: once spent,
    the next request is refused before it is sent."""
    import openai

    from llmcheck.model.accounting import Budget, ModelSession
    from llmcheck.model.proxy import FaultProxy

    accounts = ModelSession(budget=Budget(max_cost=0.5))
    with FaultProxy(simulator.url, accounts=accounts,
                    cost=lambda model, p, c: 0.3) as proxy:
        app = openai.OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
        ask = dict(model="m", messages=[{"role": "user", "content": "hi"}])
        app.chat.completions.create(**ask)
        app.chat.completions.create(**ask)  # 0.3 spent: still under 0.5
        with pytest.raises(openai.RateLimitError, match="--llm-max-cost=0.5 reached"):
            app.chat.completions.create(**ask)
    assert simulator.request_count == 2
    assert accounts.budget.cost == pytest.approx(0.6)


TIMEOUT_APP = """
    import llmcheck
    import openai

    @llmcheck.repeat(runs=3, min_pass_rate=0.5, concurrency=3)
    @llmcheck.faults(timeout=1.0)
    def test_app_under_timeouts(llm_endpoint):
        app = openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key)
        app.chat.completions.create(model=llm_endpoint.model,
                                    messages=[{"role": "user", "content": "hi"}])
"""


def test_an_injected_timeout_through_the_endpoint_ends_within_llm_timeout(
        pytester, report, model_stack):
    """The openai SDK's default client (600 s deadline, 2 retries) through llm_endpoint
    with every request timing out: the proxy holds each for --llm-timeout, then answers
    504, so every request ends within --llm-timeout (+1 s) and the SDK raises its
    InternalServerError (504) after its own retries."""
    pytester.makepyfile(TIMEOUT_APP)
    result = pytester.runpytest("--llm-timeout=1.5", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    test = by_name(report())["test_app_under_timeouts"]
    calls = [c for s in test["samples"] for c in s["calls"]]
    assert len(calls) == 3 * 3  # the SDK's first try and its two retries, per sample
    for call in calls:
        assert call["via"] == "proxy" and call["fault"] == "timeout"
        assert call["error"] == "injected timeout: no answer within 1.5 s"
        assert 1.5 <= call["latency"] < 1.5 + 1.0
    for sample in test["samples"]:
        assert sample["outcome"] == "failed"
        assert sample["error_type"] == "openai.InternalServerError"
        assert sample["message"].startswith("under injected timeout: Error code: 504")


RECOVERING_APP = """
    import llmcheck
    import openai

    @llmcheck.repeat(runs=12, min_pass_rate=0.5, concurrency=4)
    @llmcheck.faults(server_error=0.5, seed=3)
    def test_app_that_retries(llm_endpoint):
        # the app's own retries (the openai SDK's): a server_error it retries past
        # leaves it with a usable answer, which it then gets wrong
        app = openai.OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key,
                            max_retries=3)
        reply = app.chat.completions.create(
            model=llm_endpoint.model,
            messages=[{"role": "user", "content": "Label this review: great."}])
        assert reply.choices[0].message.content == "a label the model never gives"
"""


def test_a_recovered_fault_is_not_blamed(pytester, report, model_stack):
    """An app that retries past an injected server_error and then gets a wrong label
    fails as a clean failure, not "under injected server_error"; the per-fault table
    counts the recovery and puts the sample under the clean row."""
    pytester.makepyfile(RECOVERING_APP)
    result = pytester.runpytest("--llm-no-early-stop", "--llm-backoff=0", "-p",
                                "no:randomly")
    result.assert_outcomes(failed=1)
    test = by_name(report())["test_app_that_retries"]
    recovered = [s for s in test["samples"]
                 if s["faults"] and all(f["recovered"] for f in s["faults"])]
    blamed = [s for s in test["samples"] if any(not f["recovered"] for f in s["faults"])]
    clean = [s for s in test["samples"] if not s["faults"]]
    assert recovered, "the seed gives some samples a server_error the app retried past"
    for sample in recovered:
        assert sample["outcome"] == "failed"
        assert not sample["message"].startswith("under injected")
        assert "a label the model never gives" in sample["message"]
        answered = [c for c in sample["calls"] if c["error"] is None]
        assert answered and answered[-1]["fault"] is None
    for sample in blamed:  # every try got a server_error: the fault is to blame
        assert sample["message"].startswith("under injected server_error")
        assert all(c["fault"] == "server_error" for c in sample["calls"])
    rows = {row["kind"]: row for row in test["faults"]}
    assert rows["server_error"]["recovered"] == len(recovered)
    assert rows["server_error"]["samples"] == len(blamed)
    assert rows["none"]["samples"] == len(recovered) + len(clean)
    assert rows["none"]["failed"] == len(recovered) + len(clean)
    # the terminal and the markdown report say how many recovered
    assert f"{len(recovered)} recovered" in result.stdout.str()
    markdown = (pytester.path / "reports" / "llmcheck.md").read_text()
    header = next(line for line in markdown.splitlines() if "| fault " in line)
    cells = [cell.strip() for cell in header.strip("|").split("|")]
    assert cells[cells.index("errors") + 1] == "recovered"
    row = next(line for line in markdown.splitlines() if "| `server_error` |" in line)
    values = [cell.strip() for cell in row.strip("|").split("|")]
    assert values[cells.index("recovered")] == str(len(recovered))


def test_judge_faults_marks_recovery():
    """The rule itself: a fault is recovered when a request after it (or the same
    request, for a slow answer) got a usable answer; an answer to a request a damaging
    fault answered (truncated, say) is not usable."""
    from llmcheck.core.outcome import judge_faults
    from llmcheck.records.schema import FaultRecord

    def fault(call: int, kind: str) -> FaultRecord:
        return FaultRecord(call=call, kind=kind, via="proxy")

    def recovered(faults: list[FaultRecord], answers: list[int]) -> list[bool]:
        return [f.recovered for f in judge_faults(faults, answers)]

    assert recovered([fault(0, "server_error")], [1]) == [True]
    assert recovered([fault(0, "server_error")], []) == [False]
    assert recovered([fault(1, "server_error")], [0]) == [False]      # answered before
    assert recovered([fault(0, "slow")], [0]) == [True]               # the slow answer came
    assert recovered([fault(0, "rate_limit"), fault(1, "truncated")], [1]) == [False, False]
    assert recovered([fault(0, "timeout"), fault(1, "rate_limit")], [2]) == [True, True]


def test_an_embedding_through_the_proxy_counts_against_the_budget(simulator):
    """Embeddings are model calls too: past --llm-max-calls the proxy refuses them
    the same way, and the provider never sees the refused one."""
    import openai

    from llmcheck.model.accounting import Budget, ModelSession
    from llmcheck.model.proxy import FaultProxy

    accounts = ModelSession(budget=Budget(max_calls=2))
    with FaultProxy(simulator.url, accounts=accounts) as proxy:
        app = openai.OpenAI(base_url=proxy.url, api_key="x", max_retries=0)
        app.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        app.embeddings.create(model="e", input=["one text"])
        with pytest.raises(openai.RateLimitError, match="--llm-max-calls=2 reached"):
            app.embeddings.create(model="e", input=["another text"])
    assert simulator.request_count == 2
