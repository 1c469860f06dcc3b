"""The fault kinds and the ``KIND:RATE`` form that ``--llm-faults`` and
``@llmcheck.faults`` read, as plain data.

The settings table checks ``--llm-faults`` when the session starts, so a
misspelt kind is a usage error naming the option, not a failure of every LLM
test later; :class:`llmcheck.injection.catalogue.FaultPlan` applies the same
rules to a plan built in code. Both read them here, so they cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from llmcheck.config.names import did_you_mean
from llmcheck.errors import UsageError

FAULT_KINDS: dict[str, str] = {
    "rate_limit": "429 Too Many Requests with Retry-After",
    "timeout": "no answer before the client's deadline",
    "connection_error": "the connection is refused or reset",
    "server_error": "500, 502 or 503",
    "malformed_json": "a 200 whose answer should be JSON but does not parse",
    "truncated": "the answer cut off, finish_reason=length",
    "empty": "a 200 with empty content",
    "refusal": "the model declines to answer",
    "wrong_schema": "valid JSON with wrong fields or types",
    "slow": "the real answer, after added latency",
    "stream_cut": "the answer stops mid-way (an SSE stream without its end, or a cut body)",
    "bad_tool_call": "a tool call whose arguments do not parse",
}
"""Every fault kind with what it looks like, in the order
:meth:`~llmcheck.injection.catalogue.FaultPlan.draw` lays them on [0, 1)."""

TOOL_FAULT_KINDS: dict[str, str] = {
    "tool_error": "the tool raises instead of running",
    "tool_timeout": "the tool does not return before its timeout",
    "tool_garbage": "the tool's result is replaced by garbage text",
}
"""Faults of a tool loop's tools (``@llmcheck.tool_faults``, ``run_tool_loop(tool_faults=)``),
accepted only there; reports list them after the provider kinds."""

ALL_FAULT_KINDS = {**FAULT_KINDS, **TOOL_FAULT_KINDS}
"""Every kind a report may name, with what it does."""

LEGACY_FAULT_ALIASES = {"malformed": "stream_cut"}
"""Names of older scenario files: the simulator's ``malformed`` (a 200 whose body
stops half-way) is the catalogue's ``stream_cut`` of a non-streamed answer."""

_SPEC = re.compile(r"^\s*([a-z_]+)\s*[:=]\s*([^,:=\s]+)\s*$")


def check_fault_rates(rates: Mapping[str, Any],
                      kinds: Mapping[str, str] = FAULT_KINDS) -> dict[str, float]:
    """``rates`` (kind -> chance per call) checked and in canonical form: catalogue
    order, zero rates dropped, so equal plans compare equal. A usage error names an
    unknown kind (``kinds``: the provider faults, or :data:`TOOL_FAULT_KINDS` for a
    tool plan), a rate outside [0, 1], or rates adding up to more than 1 (a call gets
    at most one fault)."""
    for kind, rate in rates.items():
        if kind not in kinds:
            where = ("; a tool fault goes in @llmcheck.tool_faults(...)"
                     if kind in TOOL_FAULT_KINDS else "")
            raise UsageError(f"unknown fault kind {kind!r}{did_you_mean(kind, kinds)}; "
                             "the kinds are " + ", ".join(kinds) + where)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) \
                or not 0.0 <= float(rate) <= 1.0 or math.isnan(float(rate)):
            raise UsageError(f"fault rate {kind}={rate!r} must be a number from 0 to 1")
    total = sum(float(r) for r in rates.values())
    if total > 1.0 + 1e-9:
        raise UsageError(f"fault rates add up to {total:g}, more than 1: a call gets at "
                         "most one fault; lower them")
    return {k: float(rates[k]) for k in kinds
            if float(rates.get(k, 0.0)) > 0.0}


def parse_fault_rates(spec: object, kinds: Mapping[str, str] = FAULT_KINDS) -> dict[str, float]:
    """The rates of ``"rate_limit:0.3,timeout:0.1"`` (``=`` works as well as ``:``),
    checked by :func:`check_fault_rates`; an empty string, ``none`` or ``off`` is no
    faults."""
    if not isinstance(spec, str):
        raise UsageError(f"faults must be written like 'rate_limit:0.3,timeout:0.1', "
                         f"got {spec!r}")
    rates: dict[str, float] = {}
    if spec.strip().lower() not in ("", "none", "off"):
        for part in spec.split(","):
            match = _SPEC.match(part)
            if match is None:
                raise UsageError(f"cannot read fault {part.strip()!r} in {spec!r}: write "
                                 f"KIND:RATE, e.g. {next(iter(kinds))}:0.3; the kinds are "
                                 + ", ".join(kinds))
            kind, value = match.group(1), match.group(2)
            kind = LEGACY_FAULT_ALIASES.get(kind, kind)
            try:
                rate = float(value)
            except ValueError:
                raise UsageError(f"fault rate {kind}:{value} is not a number from 0 "
                                 "to 1") from None
            if kind in rates:
                raise UsageError(f"fault kind {kind!r} is given twice in {spec!r}")
            rates[kind] = rate
    return check_fault_rates(rates, kinds)


def fault_spec(rates: Mapping[str, float]) -> str:
    """``rates`` in the form :func:`parse_fault_rates` reads (``none`` for no faults)."""
    return ",".join(f"{k}:{v:g}" for k, v in rates.items()) or "none"
