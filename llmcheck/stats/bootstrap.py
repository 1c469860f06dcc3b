"""A percentile bootstrap over cases, for the pass rate pooled over the cases
(parametrizations) of one test.

Cases differ (some prompts are harder), so their samples are not one binomial and
the pooled binomial interval alone is too narrow when they do: resampling whole
cases shows how much the pooled rate moves with the choice of cases. numpy is
imported only when an interval is computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["BOOTSTRAP_RESAMPLES", "cases_bootstrap"]

BOOTSTRAP_RESAMPLES = 2000


def cases_bootstrap(passes: Sequence[int], scored: Sequence[int], confidence: float,
                    seed_text: str,
                    resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float] | None:
    """The central ``confidence`` percentile interval of the pooled rate (passes over
    scored samples, summed over the cases drawn) over ``resamples`` draws of the cases
    with replacement; None when no case scored a sample. Seeded by ``seed_text`` (the
    test's name), so a report is reproducible."""
    import numpy as np

    wins = np.array(passes, dtype=float)
    counts = np.array(scored, dtype=float)
    if counts.sum() == 0:
        return None
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "big")
    picks = np.random.default_rng(seed).integers(0, len(counts),
                                                 size=(resamples, len(counts)))
    totals = counts[picks].sum(axis=1)
    rates = wins[picks].sum(axis=1)[totals > 0] / totals[totals > 0]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return float(low), float(high)
