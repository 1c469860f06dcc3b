"""The one list of each set of names a setting accepts.

Plain data at the bottom of the house: the settings table validates with these,
and the statistics and the records that give them meaning import them from
here, so no layer needs a higher one to know what a valid name is.
"""

from __future__ import annotations

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
