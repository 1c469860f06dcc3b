"""What a run of one test is given (:class:`RunSpec`), what it reports as it goes
(:class:`Progress`), how each sample's seed is derived, and the tally of finished
samples in index order that the verdict is taken on."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmcheck import stats
from llmcheck.records.schema import SampleRecord, TestSettings


def sample_seed(session_seed: int, test_id: str, index: int) -> int:
    """A stable 32-bit seed for sample ``index`` of ``test_id`` in a session."""
    digest = hashlib.sha256(f"{session_seed}:{test_id}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Progress:
    finished: int
    planned: int
    passed: int
    failed: int
    errors: int
    in_flight: int


@dataclass
class RunSpec:
    """Everything the runner needs to know besides the body."""

    test_id: str
    settings: TestSettings
    session_seed: int = 0
    failure_types: tuple[type[BaseException], ...] = ()
    """Exceptions that are sample failures although not ``Exception`` subclasses
    (the plugin passes ``pytest.fail.Exception``)."""
    progress: Callable[[Progress], None] | None = None
    stop_check: Callable[[], str | None] | None = None
    """Asked before each new sample; a returned reason (a spent budget) stops launching."""
    model: str | None = None
    """The model the test's calls go to (recorded, not used by the runner)."""
    simulated: bool = False
    """The calls go to a simulator the plugin started."""
    on_sample: Callable[[SampleRecord], None] | None = None
    """Called with every finished sample (the plugin journals them to disk)."""
    on_interrupt: Callable[[], None] | None = None
    """Called at once on Ctrl-C, before waiting for anything (the plugin stops every
    model call, so samples still running end within a second instead of retrying)."""
    fingerprint: str | None = None
    """What the test asks (a hash of its source and parameters), put on its record."""
    fault_plan: Any = None
    """The :class:`~llmcheck.injection.catalogue.FaultPlan` injected into every sample's
    model requests (None: no faults). The caller installs the interception."""
    tool_faults: Any = None
    """The tool fault plan of every sample's tool loops (``@llmcheck.tool_faults``)."""
    keep_io: int = 2000
    """Characters kept of each message sent and of the answer of a failing sample's last
    calls (``--llm-keep-io``; 0 keeps none)."""
    full_trace: bool = False
    """Keep every chained exception in a failing sample's traceback (pytest's
    ``--full-trace``); by default llmcheck's own chains are left out."""

    @property
    def runs(self) -> int:
        return self.settings.runs

    @property
    def fault_text(self) -> str | None:
        """The plans as the test's record states them:
        ``rate_limit:0.3 (seed 0); tool_error:0.2 (seed 0)``, or None."""
        plans = [p for p in (self.fault_plan, self.tool_faults) if p]
        return "; ".join(f"{p.spec()} (seed {p.seed})" for p in plans) or None


@dataclass
class Tally:
    """What finished, and what the verdict counts: the samples in index order, from 0
    up to the first index that has not finished yet (or up to the deciding sample)."""

    samples: dict[int, SampleRecord] = field(default_factory=dict)
    refused: dict[int, SampleRecord] = field(default_factory=dict)
    """Samples one of whose requests the session's budget refused: recorded, never
    counted, and skipped in the index order (which request the budget refuses depends
    on when it starts, not on what the model answers)."""
    counted: int = 0
    """How many samples the verdict counts."""
    next: int = 0
    """The next index in order: samples 0..next-1 are counted, or refused."""
    passed: int = 0
    failed: int = 0
    errors: int = 0
    decision: stats.Decision | None = None
    decided_after: int | None = None

    @property
    def finished(self) -> int:
        return len(self.samples)


