"""A model-played simulated user against the simulator over real HTTP: seeded
conversations, call roles recorded apart, faults only where asked, judge calls of role
judge, and the usage-by-role line of a plugin run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import llmcheck
from llmcheck.core.context import SampleContext, _reset, _set, call_role
from llmcheck.episodes.episode import Episode
from llmcheck.injection import inprocess
from llmcheck.injection.catalogue import FaultPlan
from llmcheck.model import client as client_module
from llmcheck.model.accounting import ModelSession
from llmcheck.model.client import LLMClient, ModelCallError, ModelConfig
from llmcheck.model.proxy import FaultProxy

AGENT = "You are a support agent for an online shop. Ask for the order number first."
PERSONA = "A customer whose blender arrived broken; the order number is 1042."
GOAL = "Get order 1042 refunded."


def sim_client(url: str, **params) -> LLMClient:
    return LLMClient(ModelConfig(model="openai/llmcheck-sim", api_base=url, api_key_env=None,
                                 retries=0, simulated=True, params=params), ModelSession())


@pytest.fixture
def llm(simulator):
    """The simulator's client, also the session's default (what plays the user)."""
    before = client_module._default
    client = sim_client(simulator.url)
    client_module.set_default_client(client)
    yield client
    client_module.set_default_client(before)


@pytest.fixture
def patched():
    was = inprocess.installed()
    inprocess.install()
    yield
    if not was:
        inprocess.uninstall()


def converse(llm, seed: int, *, plan: FaultPlan | None = None, **user
             ) -> tuple[SampleContext, Episode]:
    """One sample's conversation: its context (calls, faults) and its episode."""
    ctx = SampleContext(index=seed, seed=seed, fault_plan=plan)
    token = _set(ctx)
    try:
        return ctx, llmcheck.run_conversation(llmcheck.Conversation(llm, system=AGENT),
                                              llmcheck.SimulatedUser(PERSONA, GOAL, **user))
    finally:
        _reset(token)


def test_the_simulator_plays_both_sides_and_a_seed_replays_the_conversation(llm):
    runs = {seed: converse(llm, seed) for seed in range(8)}
    assert converse(llm, 3)[1].messages == runs[3][1].messages  # same seed, same talk

    ctx, done = runs[3]
    assert (done.stop_reason, done.ended_by) == ("user_stopped", "done")
    assert [m["role"] for m in done.messages] == ["system", "user", "assistant", "user",
                                                  "assistant"]
    assert "What is your order number?" in done.messages[2]["content"]
    assert [c.role for c in ctx.calls] == ["user", "app", "user", "app", "user"]
    assert all(c.params.get("seed") == 3 for c in ctx.calls)  # the sample's seed
    refunded = {seed: "refunded order 1042" in episode.final_text
                for seed, (_, episode) in runs.items()}
    assert any(refunded.values()) and not all(refunded.values())  # seed 0: order 1024
    # the user steps carry the calls that wrote them
    user_steps = [s for s in done.steps if s.role == "user"]
    assert all(s.completion is not None for s in user_steps)


def test_user_calls_get_no_fault_and_leave_the_apps_fault_draws_alone(llm, patched):
    plan = FaultPlan({"refusal": 0.5}, seed=11)
    for seed in range(4):
        ctx, _ = converse(llm, seed, plan=plan, max_turns=3)
        app = [c for c in ctx.calls if c.role == "app"]
        assert all(f.call < len(app) for f in ctx.faults)  # only the app's calls numbered
        assert [(f.call, f.kind) for f in ctx.faults] == [
            (n, plan.draw(seed, n)) for n in range(len(app)) if plan.draw(seed, n)]
    # asked for, the user's calls get faults too (and take call numbers)
    always = FaultPlan({"refusal": 1.0}, seed=11)
    clean, _ = converse(llm, 5, plan=always, max_turns=2)
    faulty, episode = converse(llm, 5, plan=always, max_turns=2, faults=True)
    assert len(clean.faults) == sum(c.role == "app" for c in clean.calls) == 2
    assert len(faulty.faults) == len(faulty.calls) == 4
    assert "sorry" in episode.steps[0].text.lower()  # the user's own call refused


def test_a_user_call_through_the_proxy_is_recorded_as_the_users_and_not_faulted(
        simulator, patched):
    with FaultProxy(simulator.url, FaultPlan({"server_error": 1.0}, seed=3),
                    register=True) as proxy:
        client = sim_client(proxy.url)
        ctx = SampleContext(index=0, seed=1)
        token = _set(ctx)
        try:
            with pytest.raises(ModelCallError):
                client("app call")
            with call_role("user"):
                assert client("user call").text
            with pytest.raises(ModelCallError):
                client("app call again")
        finally:
            _reset(token)
    proxied = [(c.role, c.fault) for c in ctx.calls if c.via == "proxy"]
    assert proxied == [("app", "server_error"), ("user", None), ("app", "server_error")]
    assert [f.call for f in ctx.faults] == [0, 1]  # the user's call took no number


def test_judge_calls_are_the_judges(simulator):
    before = client_module._default
    client_module.set_default_client(sim_client(simulator.url, temperature=0))
    try:
        ctx, episode = converse(client_module.default_client(), 2)
        token = _set(ctx)
        try:
            llmcheck.assert_goal_reached(episode, check="order 1042 is refunded")
            llmcheck.assert_judge(episode.final_text, "The reply confirms a refund.")
        finally:
            _reset(token)
    finally:
        client_module.set_default_client(before)
    assert [c.role for c in ctx.calls][-2:] == ["judge", "judge"]
    assert [c.passed for c in ctx.checks] == [True, True]
    assert ctx.exchanges[-1].role == "judge"


DOCS = Path(__file__).resolve().parents[2] / "docs" / "conversations.md"
JUDGED = f"""
import llmcheck


@llmcheck.repeat(runs=2, min_pass_rate=0.5)
def test_judged(llm):
    episode = llmcheck.run_conversation(
        llmcheck.Conversation(llm, system={AGENT!r}),
        llmcheck.SimulatedUser({PERSONA!r}, {GOAL!r}))
    with llmcheck.soft():
        llmcheck.assert_goal_reached(episode, check="the order is refunded")
"""


def test_the_docs_example_runs_and_calls_are_counted_by_role(pytester, model_stack):
    """One plugin run: the docs page's complete example, and a test with a judge."""
    example = re.search(r"<!-- conversation-example -->\n```python\n(.*?)```",
                        DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert example, "docs/conversations.md has its example between its markers"
    pytester.makepyfile(test_docs_example=example.group(1), test_judged=JUDGED)
    result = pytester.runpytest_inprocess("--llm-seed=5", "--llm-runs=6",
                                          "-p", "no:cacheprovider")
    out = result.stdout.str()
    report = json.loads((pytester.path / "reports" / "llmcheck.json").read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    docs = tests["test_support_refunds_the_right_order"]
    assert docs["passed"] >= 4 and all(s["episode"]["source"] == "conversation"
                                       for s in docs["samples"]), out
    line = re.search(r"llmcheck model usage: .*", out)
    assert line, out
    roles = re.search(r"(\d+) app calls, (\d+) simulated-user calls, (\d+) judge calls",
                      line.group(0))
    assert roles, line.group(0)
    app, user, judge = map(int, roles.groups())
    assert judge == tests["test_judged"]["run"] and user > app >= 8  # the user speaks last
    assert f"{app + user + judge} call(s)" in line.group(0)
    md = (pytester.path / "reports" / "llmcheck.md").read_text()
    assert f"model calls by role: {roles.group(0)}" in md
    assert (report["usage"]["user_calls"], report["usage"]["judge_calls"]) == (user, judge)
