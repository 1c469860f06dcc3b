"""How fast the simulator answers: a delay (:class:`Latency`) and a stream's pace
(:class:`StreamTiming`), both drawn from a request's seed. Part of the scenario format
(:mod:`llmcheck.simulator.schema`, which exports them); kept apart because they say
when, not what."""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Latency(Strict):
    """Response delay: fixed (``ms``) or lognormal (``median_ms`` and optional ``p95_ms``)."""

    ms: float | None = Field(default=None, ge=0)
    median_ms: float | None = Field(default=None, gt=0)
    p95_ms: float | None = Field(default=None, gt=0)
    max_ms: float | None = Field(default=None, ge=0)
    """Upper cap on any drawn delay."""

    @model_validator(mode="after")
    def _one_form(self) -> Latency:
        if (self.ms is None) == (self.median_ms is None):
            raise ValueError(
                "give either `ms` (fixed delay) or `median_ms` (lognormal, optionally "
                "with `p95_ms`), not both or neither"
            )
        if self.p95_ms is not None:
            if self.median_ms is None:
                raise ValueError("`p95_ms` needs `median_ms`")
            if self.p95_ms < self.median_ms:
                raise ValueError(
                    f"`p95_ms` ({self.p95_ms}) must be >= `median_ms` ({self.median_ms})"
                )
        return self

    def sample_seconds(self, rng: random.Random) -> float:
        """Draw one delay in seconds. Lognormal sigma is fitted so the 95th percentile
        equals ``p95_ms`` (sigma = ln(p95/median) / 1.6449); without p95, sigma = 0.5."""
        if self.ms is not None:
            ms = self.ms
        else:
            assert self.median_ms is not None
            if self.p95_ms is None:
                sigma = 0.5
            else:
                sigma = math.log(self.p95_ms / self.median_ms) / 1.6449
            ms = self.median_ms * math.exp(sigma * rng.gauss(0.0, 1.0))
        if self.max_ms is not None:
            ms = min(ms, self.max_ms)
        return ms / 1000.0


class StreamTiming(Strict):
    """How a streamed answer is paced: ``ttft_ms``, the wait before the first chunk that
    carries a token (for a streamed answer it takes the place of ``latency``; without
    it, ``latency`` is that wait), and ``gap_ms``, the wait before each later one (none
    without it). Each is a :class:`Latency`: fixed (``ms``) or lognormal (``median_ms``,
    ``p95_ms``, ``max_ms``), drawn from the request's seed like ``latency``."""

    ttft_ms: Latency | None = None
    gap_ms: Latency | None = None

    @model_validator(mode="after")
    def _something(self) -> StreamTiming:
        if self.ttft_ms is None and self.gap_ms is None:
            raise ValueError("give `ttft_ms`, `gap_ms` or both (each a delay such as "
                             "{median_ms: 80, p95_ms: 200} or {ms: 5})")
        return self

    def merged(self, override: StreamTiming | None) -> StreamTiming:
        """This timing with the fields explicitly set on ``override`` replacing it."""
        if override is None:
            return self
        data = {k: getattr(self, k) for k in ("ttft_ms", "gap_ms")}
        data.update({k: getattr(override, k) for k in override.model_fields_set})
        return StreamTiming(**data)


__all__ = ["Latency", "StreamTiming", "Strict"]
