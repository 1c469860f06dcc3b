"""A test's settings, resolved once into the :class:`TestSettings` its record carries.

The marker's keywords win over the session's settings (command line, environment,
ini, default), except ``runs``, where the command line and the environment win.
The policy is chosen by :func:`llmcheck.stats.design.resolve_policy`; equal
settings share one policy object (:func:`llmcheck.stats.make_policy`), so the
runner, the plugin and the record's own inference use the one built here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmcheck.config.settings import MAX_RUNS, SETTINGS, Resolved, marker_settings
from llmcheck.errors import UsageError
from llmcheck.records.schema import LatencyRequirement, TestSettings
from llmcheck.stats.design import resolve_policy, session_share

__all__ = ["resolve_test"]


def resolve_test(marker_kwargs: Mapping[str, Any], session: Mapping[str, Resolved],
                 where: str = "@pytest.mark.llm", marker_args: tuple[Any, ...] = (),
                 session_tests: int = 1, *, allow_never_pass: bool = False,
                 max_runs: int = MAX_RUNS) -> TestSettings:
    """Resolve one test's settings, once: its own keywords win over the session's
    settings, except ``runs``, where the command line and the environment win (so
    ``pytest --llm-runs=50`` really runs every test 50 times).

    ``session_tests`` is the number of hypotheses in the session (every LLM test, also
    under xdist, and each of their latency requirements), over which
    ``--llm-session-alpha`` is shared. A test that can never
    pass is a usage error, unless ``allow_never_pass`` (the planner shows such designs);
    so is one whose runs would be above ``max_runs``, checked before the (costly)
    design is tuned."""
    given = marker_settings(marker_kwargs, where, marker_args)

    def value(name: str) -> Any:
        if name in given:
            return given[name]
        return session[name].value if name in session else SETTINGS[name].default

    if session["runs"].source in ("command line", "environment"):
        runs = session["runs"].value
    else:
        runs = value("runs")  # the test's own, the ini's, or None
    early_stop = not session["no_early_stop"].value and value("early_stop")
    session_alpha = session["session_alpha"].value if "session_alpha" in session else None
    margin = value("margin")
    try:
        chosen = resolve_policy(
            value("verdict"), min_pass_rate=value("min_pass_rate"),
            confidence=value("confidence"), margin=margin, alpha=value("alpha"),
            beta=value("beta"), runs=runs, session_alpha=session_alpha,
            session_tests=session_tests, allow_never_pass=allow_never_pass,
            max_runs=max_runs)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    policy = chosen.policy
    latency = [LatencyRequirement(metric=metric, quantile=q, limit=limit)
               for metric, q, limit in value("latency") or ()]
    return TestSettings(
        runs=policy.max_samples, verdict=policy.name, min_pass_rate=policy.min_pass_rate,
        confidence=policy.confidence, margin=margin, alpha=value("alpha"), beta=chosen.beta,
        interval=value("interval"), early_stop=early_stop,
        concurrency=value("concurrency"), model=given.get("model"),
        temperature=given.get("temperature"), max_tokens=given.get("max_tokens"),
        latency=latency, design=policy.design(),
        session_share=None if session_alpha is None else
        session_share(session_alpha, session_tests))
