"""What a scenario says: what the simulator answers, how fast, and how often it fails.

A scenario maps prompt patterns to weighted answer variants. Each variant is a
text, a tool call, or both, with an optional ``label`` naming the defect it
stands for, so a suite can be pointed at a model that is "right 80% of the time,
wraps its JSON in prose 10% of the time, ...". Latency and error rates are set
per scenario and may be overridden per route; ``faults`` script exact failures
("the first two requests get a 429") for tests of retry logic.

Example (YAML; JSON with the same structure works too)::

    name: demo
    seed: 7
    latency: {median_ms: 20, p95_ms: 80}       # or {ms: 100} for a fixed delay
    errors: {rate_limit: 0.02, retry_after_s: 0.5}
    faults:
      - {kind: server_error, after: 0, count: 1}   # request #1 gets a 500
    routes:
      - name: extraction
        match: ['ada lovelace', '\\bjson\\b']      # every pattern must match
        answers:
          - {text: '{"name": "Ada Lovelace", "age": 36}', weight: 8}
          - {text: 'Sure! {"name": "Ada Lovelace", "age": 36}', weight: 1,
             label: prose_around_json}
      - name: weather
        match: 'weather in (?P<city>\\w+)'
        requires_tool: get_weather
        answers:
          - tool_call: {name: get_weather, arguments: {city: Paris, unit: celsius}}
    default:
      answers:
        - text: 'A short answer.'

Faults: ``errors`` gives a rate per kind and ``faults`` scripts kinds, from the
fault catalogue every injection point shares (:mod:`llmcheck.injection.catalogue`):
``rate_limit``, ``server_error``, ``timeout``, ``stream_cut``, ``connection_error``,
``malformed_json``, ``truncated``, ``empty``, ``refusal``, ``wrong_schema``, ``slow``
and ``bad_tool_call``; ``retry_after_s``, ``timeout_s`` and ``slow_s`` are their
parameters. The kinds that damage an answer (``truncated``, ``slow``,
``stream_cut``) damage the answer the simulator would have given.

History: scenario files carry no version. Files written when the simulator knew
four kinds (``rate_limit``, ``server_error``, ``timeout``, ``malformed``) read
unchanged and draw the same faults for the same seeds: ``malformed`` is the old
name of ``stream_cut`` (read as ``stream_cut`` in ``errors`` and ``faults``, and
in the ``X-Llmcheck-Fault`` request header), and a non-streamed answer cut by it
is still a 200 with half the body.

Patterns are regular expressions searched (case-insensitively unless
``ignore_case: false``) in the last user message (``scope: last_user``) or in the
whole conversation rendered as ``role: text`` lines (``scope: conversation``).
Routes are tried in order and the first whose patterns all match wins; nothing
matching means ``default``. A variant with ``template: true`` may use
``{{name}}`` placeholders in its text and its tool call's arguments, filled by plain
substitution (never evaluated) from the route's named regex groups, ``{{model}}``,
``{{last_user}}`` and ``{{last_tool}}`` (the content of the last tool result).

Tool loops: ``requires_tool`` (a name or a list) makes a route match only when the
request offers those tools, ``after_tool: NAME`` only when the last message is the
result of a call of tool NAME (a ``tool`` message whose ``tool_call_id`` names one of
the assistant's calls of it), so a scenario plays one step of an agent per route.
Conversations: ``system`` patterns must match the system prompt too, so one scenario
plays both sides (a simulated user's instructions, a support agent's).

Streams: ``stream: {ttft_ms: {median_ms: 80, p95_ms: 200}, gap_ms: {median_ms: 5,
p95_ms: 15}}`` (scenario-wide, or per route, field by field) paces a streamed answer:
the first chunk that carries a token after ``ttft_ms`` (in place of ``latency``),
each later one ``gap_ms`` after the one before; drawn from the request's seed like
``latency``, and sent back in the ``X-Llmcheck-Stream-Delays`` header.

This module is the format (pydantic models that reject unknown keys); reading files
and saying where they are wrong is :mod:`llmcheck.simulator.scenario`.
"""

from __future__ import annotations

import json
import math
import re
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmcheck.injection.catalogue import LEGACY_ALIASES
from llmcheck.simulator.timing import Latency, StreamTiming
from llmcheck.simulator.timing import Strict as _Strict

FaultKind = Literal[
    "rate_limit",
    "server_error",
    "timeout",
    "stream_cut",
    "connection_error",
    "malformed_json",
    "truncated",
    "empty",
    "refusal",
    "wrong_schema",
    "slow",
    "bad_tool_call",
]
FAULT_KINDS: tuple[str, ...] = typing.get_args(FaultKind)
"""Every kind of the fault catalogue (:data:`llmcheck.injection.catalogue.KINDS`), in the
order the simulator lays their rates on [0, 1): the four kinds older scenario files
knew come first, ``stream_cut`` where ``malformed`` was, so an old file draws the
same faults for the same seeds."""
LEGACY_FAULT_KINDS: dict[str, str] = dict(LEGACY_ALIASES)
"""Old names still read, and the catalogue kind each one means."""

FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
BUILTIN_PLACEHOLDERS = frozenset({"model", "last_user", "last_tool"})
DEFAULT_ROUTE_NAME = "default"


def canonical_fault_kind(kind: str) -> str:
    """``kind`` under its catalogue name (``malformed`` is ``stream_cut``)."""
    return LEGACY_FAULT_KINDS.get(kind, kind)


class ToolCall(_Strict):
    """A function call the simulated model makes instead of (or beside) answering."""

    name: str = Field(min_length=1)
    arguments: Any = Field(default_factory=dict)
    """A mapping (sent JSON-encoded) or a string (sent verbatim, e.g. broken JSON)."""

    @field_validator("arguments")
    @classmethod
    def _check_arguments(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, Mapping):
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"arguments must be JSON-serialisable: {exc}") from exc
            return dict(value)
        raise ValueError(
            "arguments must be a mapping (sent JSON-encoded) or a string (sent verbatim), "
            f"got {type(value).__name__}"
        )

    def arguments_json(self) -> str:
        """The ``function.arguments`` string OpenAI puts on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


class Variant(_Strict):
    """One possible answer of a route, drawn with probability proportional to ``weight``.

    A bare string is shorthand for ``{text: <string>}`` with weight 1.
    """

    text: str | None = None
    tool_call: ToolCall | None = None
    weight: float = Field(default=1.0, gt=0)
    label: str | None = None
    """The defect this variant represents (``wrong_type``, ``truncated``...); None = good."""
    finish_reason: FinishReason | None = None
    """Defaults to ``tool_calls`` for a tool call, ``length`` for label ``truncated``,
    else ``stop``."""
    template: bool = False
    """Fill ``{{name}}`` placeholders in ``text`` (plain substitution, no evaluation)."""

    @model_validator(mode="before")
    @classmethod
    def _text_shorthand(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _needs_content(self) -> Variant:
        if self.text is None and self.tool_call is None:
            raise ValueError("an answer needs `text`, `tool_call`, or both")
        return self

    @property
    def effective_finish_reason(self) -> str:
        """The finish_reason sent when the request does not cut the answer short."""
        if self.finish_reason is not None:
            return self.finish_reason
        if self.tool_call is not None:
            return "tool_calls"
        if self.label == "truncated":
            return "length"
        return "stop"


class ErrorRates(_Strict):
    """Probabilities of each fault per request, plus the parameters of the faults.

    One rate per kind of :data:`FAULT_KINDS` (all 0 by default; their sum at most 1).
    The old key ``malformed`` is read as ``stream_cut``.
    """

    rate_limit: float = Field(default=0.0, ge=0, le=1)
    server_error: float = Field(default=0.0, ge=0, le=1)
    timeout: float = Field(default=0.0, ge=0, le=1)
    stream_cut: float = Field(default=0.0, ge=0, le=1)
    connection_error: float = Field(default=0.0, ge=0, le=1)
    malformed_json: float = Field(default=0.0, ge=0, le=1)
    truncated: float = Field(default=0.0, ge=0, le=1)
    empty: float = Field(default=0.0, ge=0, le=1)
    refusal: float = Field(default=0.0, ge=0, le=1)
    wrong_schema: float = Field(default=0.0, ge=0, le=1)
    slow: float = Field(default=0.0, ge=0, le=1)
    bad_tool_call: float = Field(default=0.0, ge=0, le=1)
    retry_after_s: float = Field(default=1.0, ge=0)
    """Sent in the ``Retry-After`` header of a 429."""
    timeout_s: float = Field(default=30.0, gt=0)
    """How long a ``timeout`` fault holds the request before closing the connection."""
    slow_s: float = Field(default=2.0, ge=0)
    """The delay a ``slow`` fault adds before the answer (on top of the latency)."""

    @model_validator(mode="before")
    @classmethod
    def _legacy_names(cls, value: Any) -> Any:
        return _renamed_legacy_keys(value)

    @model_validator(mode="after")
    def _sum_at_most_one(self) -> ErrorRates:
        total = sum(self.rates().values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"error rates add up to {total:g}, more than 1")
        return self

    def rates(self) -> dict[str, float]:
        """The rate of every kind, in :data:`FAULT_KINDS` order."""
        return {kind: getattr(self, kind) for kind in FAULT_KINDS}

    def merged(self, override: ErrorRates | None) -> ErrorRates:
        """These rates with the fields explicitly set on ``override`` replacing them."""
        if override is None:
            return self
        data = self.model_dump()
        data.update({k: getattr(override, k) for k in override.model_fields_set})
        return ErrorRates.model_validate(data)


def _renamed_legacy_keys(value: Any) -> Any:
    """An ``errors`` mapping with its old keys (``malformed``) under their catalogue names."""
    if not isinstance(value, Mapping) or not any(k in value for k in LEGACY_FAULT_KINDS):
        return value
    data = dict(value)
    for old, new in LEGACY_FAULT_KINDS.items():
        if old in data:
            if new in data:
                raise ValueError(f"`{old}` is the old name of `{new}`; give only `{new}`")
            data[new] = data.pop(old)
    return data


class Fault(_Strict):
    """A scripted fault: requests ``after+1`` .. ``after+count`` get ``kind``.

    Requests are numbered per server from 1, over all chat completions, or over
    the requests that matched ``route`` when it is given.
    """

    kind: FaultKind
    """A kind of :data:`FAULT_KINDS`; the old name ``malformed`` is read as ``stream_cut``."""
    after: int = Field(default=0, ge=0)
    count: int = Field(default=1, ge=1)
    route: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    """Overrides ``errors.retry_after_s`` for a ``rate_limit`` fault."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Overrides ``errors.timeout_s`` for a ``timeout`` fault."""
    slow_s: float | None = Field(default=None, ge=0)
    """Overrides ``errors.slow_s`` for a ``slow`` fault."""

    @field_validator("kind", mode="before")
    @classmethod
    def _legacy_kind(cls, value: Any) -> Any:
        return canonical_fault_kind(value) if isinstance(value, str) else value

    def applies_to(self, number: int) -> bool:
        """Whether request number ``number`` (1-based) gets this fault."""
        return self.after < number <= self.after + self.count


class _RouteBase(_Strict):
    answers: list[Variant] = Field(min_length=1)
    latency: Latency | None = None
    """Overrides the scenario's latency for this route."""
    stream: StreamTiming | None = None
    """Fields set here override the scenario's ``stream`` pacing for this route."""
    errors: ErrorRates | None = None
    """Fields set here override the scenario's ``errors`` for this route."""

    @field_validator("answers")
    @classmethod
    def _finite_total(cls, value: list[Variant]) -> list[Variant]:
        if not math.isfinite(sum(v.weight for v in value)):
            raise ValueError("the answers' weights add up to more than the largest number")
        return value


class Route(_RouteBase):
    """Prompts matching every pattern in ``match`` get one of ``answers``."""

    name: str = Field(min_length=1)
    match: list[str] = Field(default_factory=list)
    """Patterns that must all match (may be empty only with ``after_tool``)."""
    scope: Literal["last_user", "conversation"] = "last_user"
    ignore_case: bool = True
    requires_tool: str | list[str] | None = None
    """Match only when the request offers a tool of this name (a list: every one)."""
    after_tool: str | None = Field(default=None, min_length=1)
    """Match only when the last message is the result of a call of this tool (a
    ``tool`` message answering it, by ``tool_call_id``): a step of a tool loop."""
    system: list[str] = Field(default_factory=list)
    """Patterns the system prompt must match too: which side of a conversation a request
    is for (a simulated user's instructions, or the agent's)."""

    _patterns: list[re.Pattern[str]] = PrivateAttr(default_factory=list)
    _system: list[re.Pattern[str]] = PrivateAttr(default_factory=list)

    @field_validator("match", "system", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("match", "system")
    @classmethod
    def _compiles(cls, value: list[str], info: ValidationInfo) -> list[str]:
        name = info.data.get("name", "?")
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"route {name!r}: invalid regular expression {pattern!r}: {exc}"
                ) from exc
        return value

    @property
    def required_tools(self) -> list[str]:
        """The tools the request must offer for this route to match."""
        if self.requires_tool is None:
            return []
        return [self.requires_tool] if isinstance(self.requires_tool, str) else self.requires_tool

    @model_validator(mode="after")
    def _compile_and_check_templates(self) -> Route:
        if not self.match and self.after_tool is None:
            raise ValueError(f"route {self.name!r}: `match` needs at least one pattern "
                             "(only a route with `after_tool` may leave it out)")
        if any(not isinstance(t, str) or not t for t in self.required_tools) or (
                isinstance(self.requires_tool, list) and not self.requires_tool):
            raise ValueError(f"route {self.name!r}: `requires_tool` is a tool name or a "
                             "non-empty list of tool names")
        flags = re.IGNORECASE | re.DOTALL if self.ignore_case else re.DOTALL
        self._patterns = [re.compile(p, flags) for p in self.match]
        self._system = [re.compile(p, flags) for p in self.system]
        groups = {g for p in self._patterns for g in p.groupindex}
        _check_placeholders(self.answers, groups, f"route {self.name!r}")
        return self

    @property
    def patterns(self) -> list[re.Pattern[str]]:
        """The compiled ``match`` patterns."""
        return self._patterns

    def fits_system(self, system: str) -> bool:
        """Whether the system prompt matches every ``system`` pattern."""
        return all(p.search(system) for p in self._system)


class DefaultRoute(_RouteBase):
    """Answers for prompts that no route matches."""

    @model_validator(mode="after")
    def _check_templates(self) -> DefaultRoute:
        _check_placeholders(self.answers, set(), "default route")
        return self


def _check_placeholders(answers: list[Variant], groups: set[str], where: str) -> None:
    allowed = groups | BUILTIN_PLACEHOLDERS
    for i, variant in enumerate(answers):
        if not variant.template:
            continue
        templated = [variant.text or ""]
        if variant.tool_call is not None:
            templated.append(variant.tool_call.arguments_json())
        for name in _PLACEHOLDER.findall("\n".join(templated)):
            if name not in allowed:
                raise ValueError(
                    f"{where}, answers[{i}]: unknown placeholder {{{{{name}}}}}; "
                    f"allowed: {', '.join(sorted(allowed))}"
                )


class Scenario(_Strict):
    """Everything the simulator needs: routes, default answers, latency, errors, faults."""

    name: str = "scenario"
    description: str = ""
    seed: int = 0
    """Seeds the per-server RNG and every seeded draw."""
    models: list[str] = Field(default_factory=lambda: ["llmcheck-sim"], min_length=1)
    """Listed by ``GET /v1/models``; any model name is accepted in requests."""
    embedding_dimensions: int = Field(default=256, ge=8, le=4096)
    latency: Latency = Field(default_factory=lambda: Latency(ms=0))
    stream: StreamTiming | None = None
    """How streamed answers are paced (None: every event at once, after ``latency``)."""
    errors: ErrorRates = Field(default_factory=ErrorRates)
    faults: list[Fault] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    default: DefaultRoute = Field(
        default_factory=lambda: DefaultRoute(
            answers=[Variant(text="This is a simulated answer from llmcheck.")]
        )
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        seen: set[str] = set()
        for route in self.routes:
            if route.name == DEFAULT_ROUTE_NAME:
                raise ValueError(f"route name {DEFAULT_ROUTE_NAME!r} is reserved")
            if route.name in seen:
                raise ValueError(f"duplicate route name {route.name!r}")
            seen.add(route.name)
        known = seen | {DEFAULT_ROUTE_NAME}
        for i, fault in enumerate(self.faults):
            if fault.route is not None and fault.route not in known:
                raise ValueError(
                    f"faults[{i}].route: unknown route {fault.route!r}; "
                    f"known: {', '.join(sorted(known))}"
                )
        for part in (*self.routes, self.default):
            self.errors.merged(part.errors)  # rates combined must still add up to <= 1
        return self

    def route_named(self, name: str) -> Route | DefaultRoute:
        """The route called ``name`` (``default`` for the default route)."""
        if name == DEFAULT_ROUTE_NAME:
            return self.default
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)


__all__ = [
    "BUILTIN_PLACEHOLDERS",
    "DEFAULT_ROUTE_NAME",
    "FAULT_KINDS",
    "LEGACY_FAULT_KINDS",
    "DefaultRoute",
    "ErrorRates",
    "Fault",
    "FaultKind",
    "FinishReason",
    "Latency",
    "Route",
    "Scenario",
    "StreamTiming",
    "ToolCall",
    "Variant",
    "canonical_fault_kind",
]
