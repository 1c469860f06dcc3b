"""Statistics: intervals, exact tests, pass@k / pass^k, and verdict policies.

Everything here is plain Python on counts, so it serves the pytest plugin, the
CLI and notebooks alike. It never imports pytest, and scipy only lazily inside
the few functions that need a special function (Clopper-Pearson quantiles and
the vectorised search in :func:`fixed_sample_size`): ``import llmcheck.stats``
stays cheap.

* :mod:`llmcheck.stats.intervals`: Wilson and Clopper-Pearson intervals, the
  exact binomial test, pass@k and pass^k, :func:`samples_for_conclusive`.
* :mod:`llmcheck.stats.policies`: :class:`Decision`, the :class:`Policy` base,
  the ``threshold`` and ``interval`` policies, :func:`make_policy` and
  :func:`simulate_policy`.
* :mod:`llmcheck.stats.sequential`: the ``sequential`` policy (a truncated,
  curtailed SPRT) and :func:`fixed_sample_size`.
* :mod:`llmcheck.stats.stopping`: inference after early stopping: the exact
  interval under a policy's stopping rule and the bias-adjusted rate.
* :mod:`llmcheck.stats.design`: :func:`resolve_policy`, the one place a test's
  policy and runs are chosen from its settings (and a session's error budget), and
  a session's :func:`false_fail_chance`.
* :mod:`llmcheck.stats.bootstrap`: the percentile bootstrap over the cases of a
  parametrized test.
* :mod:`llmcheck.stats.settle`: :func:`samples_to_conclusive`, the samples that would
  settle an inconclusive verdict under any policy.
* :mod:`llmcheck.stats.quantiles`: exact order-statistic intervals and verdicts for a
  quantile of a per-sample duration (latency requirements).
* :mod:`llmcheck.stats.reliability`: intervals for pass^k and pass@k, for one test and
  pooled over the cases of a parametrized test.

Every public name of these nine modules is re-exported here.
"""

from __future__ import annotations

from llmcheck.stats import (
    bootstrap,
    design,
    intervals,
    policies,
    quantiles,
    reliability,
    sequential,
    settle,
    stopping,
)
from llmcheck.stats.bootstrap import *  # noqa: F403
from llmcheck.stats.design import *  # noqa: F403
from llmcheck.stats.intervals import *  # noqa: F403
from llmcheck.stats.policies import *  # noqa: F403
from llmcheck.stats.quantiles import *  # noqa: F403
from llmcheck.stats.reliability import *  # noqa: F403
from llmcheck.stats.sequential import *  # noqa: F403
from llmcheck.stats.settle import *  # noqa: F403
from llmcheck.stats.stopping import *  # noqa: F403

# each module's __all__ is the one list of its public names
__all__: list[str] = []
__all__ += intervals.__all__
__all__ += policies.__all__
__all__ += sequential.__all__
__all__ += stopping.__all__
__all__ += design.__all__
__all__ += bootstrap.__all__
__all__ += settle.__all__
__all__ += reliability.__all__
__all__ += quantiles.__all__
