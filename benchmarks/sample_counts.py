"""How many samples each verdict policy spends, and how often it is wrong.

Compares the truncated, curtailed SPRT (``sequential``) between 0.80 and 0.95
with the fixed-sample test it replaces (n=50, pass iff >= 45 pass), and shows
what the default ``threshold`` policy at N=20, m=0.9 gets wrong. Every figure
is given exactly (dynamic programming over the policy's states) and by seeded
simulation of the runner protocol::

    python benchmarks/sample_counts.py [--runs 20000] [--smoke]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llmcheck.stats import (  # noqa: E402  (after the sys.path fix above)
    SequentialPolicy,
    ThresholdPolicy,
    binomial_test,
    make_policy,
    simulate_policy,
)

TRUE_RATES = (0.80, 0.875, 0.90, 0.95)


def sequential_table(policy: SequentialPolicy, runs: int) -> list[list[object]]:
    """One row per true rate: sequential (simulated and exact) beside the fixed test."""
    n, c = policy.required_samples, policy.critical_value
    rows: list[list[object]] = []
    for i, p in enumerate(TRUE_RATES):
        sim_pass, sim_mean, longest = simulate_policy(policy, p, runs, seed=1000 + i)
        exact_pass, exact_mean = policy.operating_characteristic(p)
        fixed_pass = binomial_test(c, n, p, "greater")  # P(X >= c)
        rows.append(
            [
                f"{p:.3f}",
                f"{sim_mean:.2f}",
                f"{exact_mean:.2f}",
                longest,
                f"{sim_pass:.4f}",
                f"{exact_pass:.4f}",
                n,
                f"{fixed_pass:.4f}",
                f"{1 - exact_mean / n:.0%}",
            ]
        )
    return rows


def threshold_table(runs: int) -> list[list[object]]:
    """The default policy's wrong verdicts at N=20, m=0.9, near the required rate."""
    policy = ThresholdPolicy(0.9, max_samples=20)
    rows: list[list[object]] = []
    for i, (p, label) in enumerate(((0.85, "false pass"), (0.95, "false fail"))):
        sim_pass, sim_mean, longest = simulate_policy(policy, p, runs, seed=2000 + i)
        exact_pass, exact_mean = policy.operating_characteristic(p)
        wrong_exact = exact_pass if p < 0.9 else 1 - exact_pass
        wrong_sim = sim_pass if p < 0.9 else 1 - sim_pass
        rows.append(
            [
                f"{p:.2f}",
                label,
                f"{wrong_sim:.4f}",
                f"{wrong_exact:.4f}",
                f"{sim_mean:.2f}",
                f"{exact_mean:.2f}",
                longest,
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="simulated runs per true rate")
    parser.add_argument("--smoke", action="store_true", help="quick check: 500 runs")
    args = parser.parse_args(argv)
    runs = 500 if args.smoke else args.runs
    if runs < 1:
        parser.error(f"--runs must be >= 1, got {runs}")
    started = time.perf_counter()

    policy = make_policy("sequential", min_pass_rate=0.875, margin=0.075, alpha=0.05, beta=0.05)
    assert isinstance(policy, SequentialPolicy)
    alpha_hat = policy.operating_characteristic(policy.p0)[0]
    beta_hat = 1 - policy.operating_characteristic(policy.p1)[0]
    n, c = policy.required_samples, policy.critical_value
    print(
        f"sequential: m=0.875, margin=0.075 (p0={policy.p0}, p1={policy.p1}), "
        f"alpha=beta=0.05, N={policy.max_samples}; LLR boundaries "
        f"[{policy.lower:.3f}, {policy.upper:.3f}]; {runs} seeded runs per rate"
    )
    print(
        f"exact alpha={alpha_hat:.4f}, beta={beta_hat:.4f}; fixed test n={n}, c={c}: "
        f"alpha={binomial_test(c, n, policy.p0, 'greater'):.4f}, "
        f"beta={1 - binomial_test(c, n, policy.p1, 'greater'):.4f}"
    )
    print(
        tabulate(
            sequential_table(policy, runs),
            headers=[
                "true p",
                "seq mean n (sim)",
                "seq E[n] (exact)",
                "seq max n",
                "seq P(pass) sim",
                "seq P(pass) exact",
                "fixed n",
                "fixed P(pass)",
                "seq saves",
            ],
            disable_numparse=True,
        )
    )
    print()
    print(f"threshold: N=20, m=0.9 (pass iff >= 18/20), curtailed; {runs} seeded runs per rate")
    print(
        tabulate(
            threshold_table(runs),
            headers=[
                "true p",
                "error",
                "rate (sim)",
                "rate (exact)",
                "mean n (sim)",
                "E[n] (exact)",
                "max n",
            ],
            disable_numparse=True,
        )
    )
    print(f"\n({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
