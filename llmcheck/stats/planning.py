"""Sample-size planning: what each verdict policy costs and how often it errs.

``llmcheck plan`` shows, before anything runs, for each verdict policy: its
maximum number of samples N (for ``sequential`` also the equivalent fixed
test and the SPRT boundaries) and, at several true pass rates, the exact
chance of a PASS (the operating characteristic), the mean number of samples
and the 95th percentile of the number of samples. For a session of K tests it
adds the chance that at least one test FAILs although every test sits at the
upper rate ``m + margin``, and the chance that at least one PASSes although
every test sits at the lower rate ``m - margin``.

Every figure comes from the policies themselves (:func:`llmcheck.stats.make_policy`,
their ``settled``/``decide``, ``design()`` and ``operating_characteristic``): this
module only walks the same states to get the whole distribution of the stopping
time, not just its mean. Samples that end in an error are not modelled (as in
:meth:`~llmcheck.stats.Policy.operating_characteristic`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmcheck.config.names import POLICY_NAMES
from llmcheck.config.settings import SETTINGS, validate
from llmcheck.errors import UsageError
from llmcheck.stats import fixed_sample_size, indifference_zone
from llmcheck.stats.design import resolve_policy
from llmcheck.stats.intervals import _check_unit
from llmcheck.stats.policies import Policy

__all__ = [
    "PlanOptions",
    "StoppingTime",
    "make_plan",
    "plan_json",
    "plan_options",
    "render_plan",
    "stopping_time_distribution",
]

QUANTILE = 0.95
"""The percentile of the number of samples shown (``p95_samples``)."""
PLAN_MAX_SAMPLES = 5_000
"""Largest N the planner takes: its exact figures cost about N^2 policy calls per rate."""
_TOLERANCE = 1e-12  # float slack when a cumulative probability is compared with QUANTILE


# --------------------------------------------------------------------------
# the stopping time, exactly


@dataclass(frozen=True)
class StoppingTime:
    """The exact distribution of when a run stops, and with which verdict.

    ``pass_at[n]`` is the probability that the run stops after exactly ``n``
    samples with a PASS, ``fail_at[n]`` with a FAIL (n = 0 .. max_samples).
    """

    pass_at: tuple[float, ...]
    fail_at: tuple[float, ...]

    @property
    def total(self) -> float:
        """The probability that the run stops at all (1 for a well-formed policy)."""
        return math.fsum(self.pass_at) + math.fsum(self.fail_at)

    @property
    def p_pass(self) -> float:
        """P(PASS): the operating characteristic at this rate."""
        return math.fsum(self.pass_at)

    @property
    def mean(self) -> float:
        """The expected number of samples."""
        pairs = zip(self.pass_at, self.fail_at, strict=True)
        return math.fsum(n * (a + b) for n, (a, b) in enumerate(pairs))

    def quantile(self, q: float) -> int:
        """The smallest n with P(samples <= n) >= q."""
        cumulative = 0.0
        for n, (a, b) in enumerate(zip(self.pass_at, self.fail_at, strict=True)):
            cumulative += a + b
            if cumulative >= q - _TOLERANCE:
                return n
        return len(self.pass_at) - 1


def stopping_time_distribution(policy: Policy, p: float) -> StoppingTime:
    """The exact stopping-time distribution of ``policy`` when each sample passes
    with probability ``p`` (no errors).

    Dynamic programming over the (passes, samples) states, asking the policy's
    own :meth:`~Policy.settled` and :meth:`~Policy.decide` with the remaining
    budget at each state, exactly as :meth:`Policy.operating_characteristic`
    and the runner do; its P(PASS) and mean are that method's figures.
    """
    p = _check_unit("p", p, open_low=False, open_high=False)
    cap = policy.max_samples
    if cap is None:
        raise UsageError(f"{policy.name}: the stopping time needs max_samples (an integer >= 1)")
    pass_at = [0.0] * (cap + 1)
    fail_at = [0.0] * (cap + 1)
    layer = [1.0]  # layer[s]: probability of reaching s passes after n samples, still running
    for n in range(cap + 1):
        nxt = [0.0] * (n + 2)
        for s, prob in enumerate(layer):
            if prob == 0.0:
                continue
            f = n - s
            if policy.settled(s, f, cap - n):
                (pass_at if policy.decide(s, f, cap - n).passed else fail_at)[n] += prob
            else:
                nxt[s + 1] += prob * p
                nxt[s] += prob * (1.0 - p)
        layer = nxt
    return StoppingTime(tuple(pass_at), tuple(fail_at))


# --------------------------------------------------------------------------
# options: every bad value is one line naming it and what is accepted


@dataclass(frozen=True)
class PlanOptions:
    """The validated inputs of a plan."""

    min_pass_rate: float
    margin: float
    alpha: float
    beta: float
    confidence: float
    runs: int | None  # None: the default of resolve_policy (the sequential design's N)
    tests: int
    policies: tuple[str, ...]
    rates: tuple[float, ...]
    session_alpha: float | None = None

    @property
    def lower(self) -> float:
        return indifference_zone(self.min_pass_rate, self.margin)[0]

    @property
    def upper(self) -> float:
        return indifference_zone(self.min_pass_rate, self.margin)[1]


def _setting(name: str, value: Any, option: str) -> Any:
    """``value`` validated as SETTINGS[name] (its default when None)."""
    if value is None:
        return SETTINGS[name].default
    return validate(name, value, option)


def _tests(value: Any) -> int:
    if value is None:
        return 1
    shown = f"--tests={value if isinstance(value, str) else repr(value)}"
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        k = int(value.strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{shown} is invalid: expected an integer >= 1") from None
    if k < 1:
        raise UsageError(f"{shown} is invalid (out of range): expected an integer >= 1")
    return k


def _runs(value: Any) -> int:
    n = validate("runs", value, "--runs")
    if n > PLAN_MAX_SAMPLES:
        raise UsageError(f"--runs={value} is invalid (out of range for the planner, whose "
                         f"exact figures cost N^2 steps): expected an integer >= 1 and <= "
                         f"{PLAN_MAX_SAMPLES}")
    return n


def _policies(value: str | None) -> tuple[str, ...]:
    if value is None or value.strip().lower() == "all":
        return POLICY_NAMES
    names = [validate("verdict", part, "--policy", shown=f"--policy={value}")
             for part in value.split(",")]
    return tuple(name for name in POLICY_NAMES if name in names)


def _rates(value: str | None, m: float, margin: float) -> tuple[float, ...]:
    """The rates of ``--rates``, or m +/- 0, 1 and 2 margins inside (0, 1)."""
    if value is None:
        candidates = [round(m + k * margin, 12) for k in (-2, -1, 0, 1, 2)]
        return tuple(sorted({x for x in candidates if 0 < x < 1}))
    accepted = "expected a comma-separated list of rates, each > 0 and < 1, e.g. 0.8,0.9,0.95"
    rates = []
    for part in value.split(","):
        try:
            x = float(part.strip())
        except ValueError:
            raise UsageError(f"--rates={value} is invalid ({part.strip() or 'an empty entry'} "
                             f"is not a number): {accepted}") from None
        if not 0 < x < 1:  # also rejects nan
            raise UsageError(f"--rates={value} is invalid ({part.strip()} is not strictly "
                             f"between 0 and 1): {accepted}")
        rates.append(x)
    return tuple(sorted(set(rates)))


def plan_options(
    *, min_pass_rate: Any = None, margin: Any = None, alpha: Any = None, beta: Any = None,
    confidence: Any = None, runs: Any = None, tests: Any = 1, policy: str | None = None,
    rates: str | None = None, session_alpha: Any = None,
) -> PlanOptions:
    """Validate the planner's inputs (strings from the command line, or numbers);
    None means the setting's default."""
    m = _setting("min_pass_rate", min_pass_rate, "--min-pass-rate")
    d = _setting("margin", margin, "--margin")
    try:
        indifference_zone(m, d)
    except UsageError as exc:
        raise UsageError(f"--min-pass-rate={m:g}: {exc}") from None
    return PlanOptions(
        min_pass_rate=m, margin=d, alpha=_setting("alpha", alpha, "--alpha"),
        beta=_setting("beta", beta, "--beta"),
        confidence=_setting("confidence", confidence, "--confidence"),
        runs=None if runs is None else _runs(runs),
        tests=_tests(tests), policies=_policies(policy), rates=_rates(rates, m, d),
        session_alpha=_setting("session_alpha", session_alpha, "--session-alpha"))


# --------------------------------------------------------------------------
# the plan


def _policy(name: str, opts: PlanOptions) -> Policy:
    """The policy a test with these settings gets in a session of ``opts.tests`` LLM
    tests: chosen by :func:`~llmcheck.stats.design.resolve_policy`, as in a run."""
    try:
        return resolve_policy(
            name, min_pass_rate=opts.min_pass_rate, confidence=opts.confidence,
            margin=opts.margin, alpha=opts.alpha, beta=opts.beta, runs=opts.runs,
            session_alpha=opts.session_alpha, session_tests=opts.tests,
            allow_never_pass=True, max_runs=PLAN_MAX_SAMPLES).policy
    except UsageError as exc:
        raise UsageError(f"llmcheck plan: {name}: {exc}") from None


def _at_least_one(p: float, k: int) -> float:
    """1 - (1 - p)^k: the chance that at least one of k independent events happens."""
    if p >= 1.0:
        return 1.0
    return -math.expm1(k * math.log1p(-p))


def _design(policy: Policy, opts: PlanOptions) -> dict[str, Any]:
    """The policy's decision rule, with the same keys for every policy (None: n/a)."""
    design = policy.design()
    out: dict[str, Any] = {
        "max_samples": policy.max_samples, "passes_needed": design.get("passes_needed"),
        "fixed_samples": None, "fixed_critical_value": None, "critical_value": None,
        "upper_boundary": None, "lower_boundary": None}
    if policy.name == "sequential":
        n, c = fixed_sample_size(opts.lower, opts.upper, policy.alpha, policy.beta)
        out.update(passes_needed=None, fixed_samples=n, fixed_critical_value=c,
                   critical_value=design["critical_value"],
                   upper_boundary=design["upper"], lower_boundary=design["lower"])
    return out


def plan_policy(name: str, opts: PlanOptions) -> dict[str, Any]:
    """The figures of one policy, as plain data (one object of ``--json``)."""
    policy = _policy(name, opts)
    dist = {p: stopping_time_distribution(policy, p)
            for p in sorted({*opts.rates, opts.lower, opts.upper})}
    rows = [{"rate": p, "p_pass": dist[p].p_pass, "mean_samples": dist[p].mean,
             "p95_samples": dist[p].quantile(QUANTILE)} for p in opts.rates]
    pass_upper, pass_lower = dist[opts.upper].p_pass, dist[opts.lower].p_pass
    return {
        "policy": name, "min_pass_rate": opts.min_pass_rate, "margin": opts.margin,
        "alpha": opts.alpha, "beta": getattr(policy, "beta", opts.beta),
        "confidence": opts.confidence, "session_alpha": opts.session_alpha,
        **_design(policy, opts), "rates": rows, "tests": opts.tests,
        "lower_rate": opts.lower, "upper_rate": opts.upper,
        "p_pass_at_lower": pass_lower, "p_pass_at_upper": pass_upper,
        "p_any_fail_at_upper": _at_least_one(1.0 - pass_upper, opts.tests),
        "p_any_pass_at_lower": _at_least_one(pass_lower, opts.tests),
        "warning": getattr(policy, "warning", None),
    }


def make_plan(opts: PlanOptions) -> list[dict[str, Any]]:
    """One :func:`plan_policy` object per policy asked for."""
    return [plan_policy(name, opts) for name in opts.policies]


def plan_json(plans: Sequence[dict[str, Any]]) -> str:
    """The plan as JSON: a list of objects, one per policy, with stable keys."""
    return json.dumps(list(plans), indent=2)


# --------------------------------------------------------------------------
# rendering


def _rate(x: float) -> str:
    return f"{x:.12g}"


def _heading(plan: dict[str, Any]) -> list[str]:
    """The lines that state a policy's decision rule."""
    n = plan["max_samples"]
    if plan["policy"] != "sequential":
        needed = plan["passes_needed"]
        rule = (f"passes iff >= {needed}/{n} pass" if needed is not None
                else f"never passes, not even with {n}/{n}")
        if plan["policy"] == "interval":
            rule += f" (Wilson {plan['confidence'] * 100:.12g}% lower bound >= required)"
        return [f"{plan['policy']}: N={n} at most, {rule}; stops once the verdict is settled"]
    upper, lower = plan["upper_boundary"], plan["lower_boundary"]
    bounds = (f"pass once LLR >= {upper:.3f}, fail once LLR <= {lower:.3f}"
              if upper is not None and lower is not None
              else "boundaries dropped (the curtailed fixed test meets alpha and beta)")
    return [
        f"sequential: N={n} at most; the equivalent fixed test runs N={plan['fixed_samples']}"
        f" and passes iff >= {plan['fixed_critical_value']} pass",
        f"  SPRT of p0={_rate(plan['lower_rate'])} against p1={_rate(plan['upper_rate'])}, "
        f"alpha={plan['alpha']:g}, beta={plan['beta']:g}: {bounds}",
        f"  at N={n} without a boundary, passes iff >= {plan['critical_value']} pass",
    ]


def _session_line(plan: dict[str, Any]) -> str:
    k = plan["tests"]
    tests = f"{k} test" if k == 1 else f"{k} tests"
    return (f"{tests}: P(at least one FAIL | every test at {_rate(plan['upper_rate'])}) = "
            f"{plan['p_any_fail_at_upper']:.4f}; P(at least one PASS | every test at "
            f"{_rate(plan['lower_rate'])}) = {plan['p_any_pass_at_lower']:.4f}")


def render_plan(plans: Sequence[dict[str, Any]]) -> str:
    """The plan as text: per policy its rule, a table by true rate, and the session line."""
    from tabulate import tabulate

    if not plans:
        return ""
    first = plans[0]
    blocks = [
        f"llmcheck plan: required rate {_rate(first['min_pass_rate'])}, margin "
        f"{first['margin']:g}, alpha {first['alpha']:g}, beta {first['beta']:g}, "
        f"confidence {first['confidence']:g}"
        + (f", session alpha {first['session_alpha']:g} over {first['tests']} tests"
           if first["session_alpha"] is not None else "")
        + "; exact figures, no errored samples"]
    headers = ["true rate", "P(pass)", "mean samples", f"{QUANTILE:.0%} of runs stop by"]
    for plan in plans:
        rows = [[_rate(r["rate"]), f"{r['p_pass']:.4f}", f"{r['mean_samples']:.2f}",
                 str(r["p95_samples"])] for r in plan["rates"]]
        table = tabulate(rows, headers, tablefmt="github", disable_numparse=True,
                         colalign=("right",) * len(headers))
        lines = [*_heading(plan), table, _session_line(plan)]
        if plan["warning"]:
            lines.append(f"warning: {plan['warning']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
