"""The one list of each set of names a setting accepts.

Plain data at the bottom of the house: the settings table validates with these,
and the statistics and the records that give them meaning import them from
here, so no layer needs a higher one to know what a valid name is.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Literal, get_args

PolicyName = Literal["threshold", "sequential", "interval"]
"""The verdict policies (``--llm-verdict``), built by :func:`llmcheck.stats.make_policy`."""
POLICY_NAMES: tuple[str, ...] = get_args(PolicyName)

IntervalMethod = Literal["wilson", "clopper-pearson"]
"""The confidence-interval methods (``--llm-interval``), computed by
:func:`llmcheck.stats.confidence_interval`."""
INTERVAL_METHODS: tuple[str, ...] = get_args(IntervalMethod)

DEFAULT_VERDICT: PolicyName = "sequential"
"""The verdict policy when nobody sets one. It used to be ``threshold`` at 10 runs,
which passes a model at 0.80 against a required 0.9 38% of the time."""


def did_you_mean(name: str, known: Iterable[str],
                 stem: Callable[[str], str] = str) -> str:
    """`` (did you mean runs?)``: the nearest of ``known`` to a misspelt ``name`` (by
    difflib's ratio between their ``stem`` s), or "" when none is close; for every
    "unknown name" message."""
    by_stem = {stem(k): k for k in known}
    close = difflib.get_close_matches(stem(name), list(by_stem), n=1, cutoff=0.6)
    return f" (did you mean {by_stem[close[0]]}?)" if close else ""
