"""The simulator's support conversation, played through ``llmcheck.run_conversation``,
printed as a table.

1. How the conversations end over many sample seeds, against the rates the default
   scenario states (the customer gives order 1042 90% of the time, the wrong number 6%,
   gives up 4%), each with its 95% Wilson interval;
2. model calls per conversation by role (app, simulated user);
3. harness overhead: a conversation through ``run_conversation`` (episode, steps, role
   scope, records) against a bare loop making the same model calls, seconds each.

    python benchmarks/simulated_user.py            # full (200 seeds)
    python benchmarks/simulated_user.py --smoke    # quick check that it runs (CI)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tabulate import tabulate  # noqa: E402

import llmcheck  # noqa: E402
from llmcheck.core import context  # noqa: E402
from llmcheck.core.context import SampleContext, call_role  # noqa: E402
from llmcheck.model.accounting import ModelSession  # noqa: E402
from llmcheck.model.client import LLMClient, ModelConfig, set_default_client  # noqa: E402
from llmcheck.simulator import SimulatorServer  # noqa: E402
from llmcheck.simulator.scenario import default_scenario  # noqa: E402
from llmcheck.simulator.schema import Latency  # noqa: E402
from llmcheck.stats import wilson_interval  # noqa: E402

AGENT = "You are a support agent for an online shop. Ask for the order number first."
USER = llmcheck.SimulatedUser("A customer whose blender arrived broken; order number 1042.",
                              "Get order 1042 refunded.", max_turns=6)
STATED = {"refunded 1042": 0.90, "refunded another order": 0.06, "gave up": 0.04}


def outcome(episode: llmcheck.Episode) -> str:
    if episode.ended_by == "gave_up":
        return "gave up"
    if "refunded order 1042" in episode.final_text:
        return "refunded 1042"
    return "refunded another order" if "refunded order" in episode.final_text else "other"


def in_sample(seed: int, run: Callable[[], Any]) -> tuple[SampleContext, Any, float]:
    """``run()`` as sample ``seed``: its context, what it returned, and its seconds."""
    ctx = SampleContext(index=seed, seed=seed)
    token = context._set(ctx)
    started = time.perf_counter()
    try:
        result = run()
    finally:
        context._reset(token)
    return ctx, result, time.perf_counter() - started


def bare(llm: LLMClient) -> None:
    """The same calls without the harness: swap the roles by hand, stop on the token."""
    messages = [{"role": "system", "content": AGENT}]
    for _ in range(USER.max_turns):
        seen = [{"role": "system", "content": USER.system_prompt()},
                {"role": "user", "content": "[The conversation starts. Write your first "
                                            "message to the assistant.]"}]
        seen += [{"role": {"user": "assistant", "assistant": "user"}[m["role"]],
                  "content": m["content"]} for m in messages[1:]]
        said = llm.chat(seen).text
        if "<<" in said:
            return
        messages.append({"role": "user", "content": said})
        messages.append({"role": "assistant", "content": llm.chat(messages).text})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    seeds = 10 if args.smoke else args.seeds
    scenario = default_scenario().model_copy(update={"latency": Latency(ms=0)})
    with SimulatorServer(scenario=scenario) as sim:  # no simulated latency: harness cost
        llm = LLMClient(ModelConfig(model="openai/llmcheck-sim", api_base=sim.url,
                                    api_key_env=None, simulated=True), ModelSession())
        set_default_client(llm)
        ends: dict[str, int] = {}
        roles: dict[str, list[int]] = {"app": [], "user": []}
        harness, plain = [], []
        for seed in range(seeds):
            ctx, episode, took = in_sample(seed, lambda: llmcheck.run_conversation(
                llmcheck.Conversation(llm, system=AGENT), USER))
            harness.append(took)
            ends[outcome(episode)] = ends.get(outcome(episode), 0) + 1
            for role in roles:
                roles[role].append(sum(c.role == role for c in ctx.calls))
            with call_role("app"):
                plain.append(in_sample(seed, lambda: bare(llm))[2])
    rows = []
    for name, rate in STATED.items():
        low, high = wilson_interval(ends.get(name, 0), seeds, 0.95)
        rows.append([name, f"{rate:.2f}", f"{ends.get(name, 0) / seeds:.3f}",
                     f"[{low:.3f}, {high:.3f}]", "yes" if low <= rate <= high else "NO"])
    print(f"{seeds} conversations on the simulator (sample seeds 0-{seeds - 1})")
    print(tabulate(rows, ["how it ended", "stated", "observed", "95% Wilson", "agrees"]))
    print()
    print(tabulate([[r, f"{statistics.mean(v):.2f}", max(v)] for r, v in roles.items()],
                   ["calls per conversation", "mean", "max"]))
    print()
    h, p = statistics.median(harness), statistics.median(plain)
    print(tabulate([["run_conversation", f"{h * 1000:.2f}"], ["bare loop", f"{p * 1000:.2f}"],
                    ["ratio", f"{h / p:.3f}"]], ["per conversation (median)", "ms"]))


if __name__ == "__main__":
    main()
