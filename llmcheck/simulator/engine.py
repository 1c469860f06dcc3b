"""Deciding what the simulator answers: route, fault, latency and answer variant.

The engine is the HTTP-free half of the simulator, so its choices can be tested
and reused without a socket. Request content is only matched against regexes
and hashed; nothing from a request or a scenario is ever evaluated.

Randomness:

* With a ``seed`` in the request, the answer variant is a pure function of
  (scenario seed, request seed, messages, choice index): the same sample index
  replays the same answer on any server, streaming or not. The fault draw and
  the latency are a function of the same key plus the *attempt number* (how
  often this server has seen that exact key), so a retry of a seeded request
  that drew a 429 is not doomed to draw it again, while a fresh server replays
  the same sequence of attempts identically.
* Without ``seed``, everything is drawn from one per-server RNG seeded with the
  scenario seed, under a lock (the engine may be shared between threads).
* At ``temperature: 0`` the highest-weight variant is always chosen (the first
  one listed on ties), like a greedy decoder; faults and latency are still drawn.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from llmcheck.simulator.request import (
    approx_tokens,
    check_forced_fault,
    last_user,
    message_text,
    offered_tools,
    parse_chat_request,
    prompt_tokens,
)
from llmcheck.simulator.schema import (
    _PLACEHOLDER,
    DEFAULT_ROUTE_NAME,
    DefaultRoute,
    ErrorRates,
    Fault,
    Latency,
    Route,
    Scenario,
    Variant,
)

_ATTEMPT_MEMORY = 100_000
"""Seeded keys remembered for attempt numbering; the memory is reset past this."""


@dataclass(frozen=True)
class ToolCallOut:
    """A tool call as it goes on the wire."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    """One rendered choice of a chat completion."""

    content: str | None
    tool_calls: tuple[ToolCallOut, ...]
    finish_reason: str
    label: str | None
    completion_tokens: int


@dataclass(frozen=True)
class Decision:
    """Everything the server needs to respond to one chat completion request."""

    route: str
    model: str
    stream: bool
    include_usage: bool
    latency_s: float
    fault: str | None = None
    fault_source: str | None = None
    """``header``, ``script`` or ``rate``: why the fault happened."""
    retry_after_s: float = 1.0
    timeout_s: float = 30.0
    slow_s: float = 2.0
    answers: tuple[Answer, ...] = ()
    prompt_tokens: int = 0

    @property
    def completion_tokens(self) -> int:
        """Completion tokens over all choices."""
        return sum(a.completion_tokens for a in self.answers)

    @property
    def labels(self) -> list[str | None]:
        """The defect label of each choice (None for a good answer)."""
        return [a.label for a in self.answers]


@dataclass
class _RoutePlan:
    """Per-route data precomputed once: effective latency/errors, cumulative weights."""

    route: Route | DefaultRoute
    name: str
    latency: Latency
    errors: ErrorRates
    cumulative: list[float] = field(default_factory=list)
    top: int = 0


class _Draw(NamedTuple):
    """A request's random draws: fault, latency, and a (variant index, call id) per choice."""

    fault_u: float
    latency_s: float
    picks: list[tuple[int, str]]


class _FaultChoice(NamedTuple):
    """The fault served (None for none), why, and its parameters."""

    kind: str | None
    source: str | None
    retry_after_s: float
    timeout_s: float
    slow_s: float


class Engine:
    """Chooses the route, fault, latency and answers of each request for one scenario.

    Thread-safe: the counters behind scripted faults and the unseeded RNG are
    guarded by a lock. One engine belongs to one server, so fault numbering
    and the unseeded RNG stream are per server.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None):
        if seed is not None:
            scenario = scenario.model_copy(update={"seed": seed})
        self.scenario = scenario
        self._lock = threading.Lock()
        self._rng = random.Random(scenario.seed)
        self._total = 0
        self._by_route: dict[str, int] = {}
        self._attempts: dict[bytes, int] = {}
        self._plans = {r.name: self._plan(r, r.name) for r in scenario.routes}
        self._default = self._plan(scenario.default, DEFAULT_ROUTE_NAME)

    def _plan(self, route: Route | DefaultRoute, name: str) -> _RoutePlan:
        weights = [v.weight for v in route.answers]
        cumulative, total = [], 0.0
        for w in weights:
            total += w
            cumulative.append(total)
        return _RoutePlan(
            route=route,
            name=name,
            latency=route.latency or self.scenario.latency,
            errors=self.scenario.errors.merged(route.errors),
            cumulative=cumulative,
            top=max(range(len(weights)), key=lambda i: (weights[i], -i)),
        )

    # ------------------------------------------------------------------ routing

    def match(
        self, messages: Sequence[Mapping[str, Any]], tools: set[str] | None = None
    ) -> tuple[str, dict[str, str]]:
        """Name of the first route matching the messages, and its named regex groups."""
        user_text = last_user(messages)
        conversation: str | None = None
        for route in self.scenario.routes:
            if route.requires_tool is not None and route.requires_tool not in (tools or ()):
                continue
            if route.scope == "conversation":
                if conversation is None:
                    conversation = "\n".join(
                        f"{m.get('role', '')}: {message_text(m)}" for m in messages
                    )
                haystack = conversation
            else:
                haystack = user_text
            groups: dict[str, str] = {}
            for pattern in route.patterns:
                found = pattern.search(haystack)
                if found is None:
                    break
                groups.update({k: v for k, v in found.groupdict().items() if v is not None})
            else:
                return route.name, groups
        return DEFAULT_ROUTE_NAME, {}

    # ----------------------------------------------------------------- deciding

    def decide(self, body: Any, forced_fault: str | None = None) -> Decision:
        """Validate a chat completion request body and decide the response.

        ``forced_fault`` (from the ``X-Llmcheck-Fault`` header: a kind of
        :data:`~llmcheck.simulator.scenario.FAULT_KINDS`, or the old name ``malformed``
        of ``stream_cut``) overrides every draw. Raises :class:`RequestError` for a
        request OpenAI would reject with a 400, or an unknown ``forced_fault``.
        """
        req = parse_chat_request(body, self.scenario.models[0])
        forced_fault = check_forced_fault(forced_fault)
        messages = req["messages"]
        route_name, groups = self.match(messages, offered_tools(body))
        plan = self._plans.get(route_name, self._default)
        key = self._seed_key(req["seed"], messages)
        scripted, draw = self._count_and_draw(plan, key, req["n"], req["temperature"] == 0)
        fault = _choose_fault(forced_fault, scripted, plan.errors, draw.fault_u)
        context = {"model": req["model"], "last_user": last_user(messages), **groups}
        return Decision(
            route=route_name,
            model=req["model"],
            stream=req["stream"],
            include_usage=req["include_usage"],
            latency_s=draw.latency_s,
            fault=fault.kind,
            fault_source=fault.source,
            retry_after_s=fault.retry_after_s,
            timeout_s=fault.timeout_s,
            slow_s=fault.slow_s,
            answers=self._answers(plan, draw.picks, context, req["max_tokens"]),
            prompt_tokens=prompt_tokens(messages, body.get("tools")),
        )

    def _seed_key(self, seed: int | None, messages: Sequence[Mapping[str, Any]]) -> bytes | None:
        """The key of a seeded request's draws (None without ``seed``): a hash of the
        scenario seed, the request seed and the messages."""
        if seed is None:
            return None
        return hashlib.sha256(
            json.dumps(
                [self.scenario.seed, seed, messages],
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
        ).digest()

    def _count_and_draw(
        self, plan: _RoutePlan, key: bytes | None, n: int, greedy: bool
    ) -> tuple[Fault | None, _Draw]:
        """Number the request (the scripted fault it gets, if any) and draw its randomness.

        Counting and the unseeded draws happen under one lock, so the k-th request
        gets the k-th draws of the per-server stream; a seeded request only takes
        its attempt number under the lock and draws from its own RNGs.
        """
        with self._lock:
            scripted = self._number_request(plan.name)
            if key is None:  # the per-server stream, drawn under the lock
                return scripted, self._draw(plan, self._rng, [self._rng] * n, greedy)
            attempt = self._next_attempt(key)
        return scripted, self._draw(
            plan,
            random.Random(key + b"|draw|" + str(attempt).encode()),
            [random.Random(key + b"|answer|" + str(i).encode()) for i in range(n)],
            greedy,
        )

    def _number_request(self, route: str) -> Fault | None:
        """Count one more request, overall and on ``route``, and return the scripted
        fault its numbers get, if any. The caller holds the lock."""
        self._total += 1
        route_number = self._by_route.get(route, 0) + 1
        self._by_route[route] = route_number
        return self._scripted_fault(self._total, route, route_number)

    def _next_attempt(self, key: bytes) -> int:
        """How often ``key`` was seen before (0 the first time). The caller holds the lock."""
        if len(self._attempts) >= _ATTEMPT_MEMORY:
            self._attempts.clear()
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        return attempt

    def _scripted_fault(self, total: int, route: str, route_number: int) -> Fault | None:
        for fault in self.scenario.faults:
            if fault.route is None:
                if fault.applies_to(total):
                    return fault
            elif fault.route == route and fault.applies_to(route_number):
                return fault
        return None

    @classmethod
    def _draw(
        cls,
        plan: _RoutePlan,
        draw_rng: random.Random,
        choice_rngs: list[random.Random],
        greedy: bool,
    ) -> _Draw:
        """The fault draw, the latency, and a (variant index, tool-call id) per choice."""
        fault_u = draw_rng.random()
        latency_s = plan.latency.sample_seconds(draw_rng)
        return _Draw(fault_u, latency_s, [cls._pick(plan, rng, greedy) for rng in choice_rngs])

    @staticmethod
    def _pick(plan: _RoutePlan, rng: random.Random, greedy: bool) -> tuple[int, str]:
        """Index of the chosen variant and a tool-call id, both drawn from ``rng``."""
        u = rng.random()
        index = (
            plan.top
            if greedy
            else min(
                bisect.bisect_right(plan.cumulative, u * plan.cumulative[-1]),
                len(plan.cumulative) - 1,
            )
        )
        return index, f"call_{rng.getrandbits(96):024x}"

    def _answers(
        self,
        plan: _RoutePlan,
        picks: Sequence[tuple[int, str]],
        context: Mapping[str, str],
        max_tokens: int | None,
    ) -> tuple[Answer, ...]:
        """Render the picked variant of each choice."""
        return tuple(
            self._render(plan.route.answers[index], call_id, context, max_tokens)
            for index, call_id in picks
        )

    @staticmethod
    def _render(
        variant: Variant, call_id: str, context: Mapping[str, str], max_tokens: int | None
    ) -> Answer:
        content = variant.text
        if content is not None and variant.template:
            content = _PLACEHOLDER.sub(lambda m: context.get(m.group(1), ""), content)
        finish = variant.effective_finish_reason
        if content is not None and max_tokens is not None and approx_tokens(content) > max_tokens:
            content = content[: max_tokens * 4]
            finish = "length"
        calls: tuple[ToolCallOut, ...] = ()
        tokens = approx_tokens(content or "")
        if variant.tool_call is not None:
            args = variant.tool_call.arguments_json()
            calls = (ToolCallOut(call_id, variant.tool_call.name, args),)
            tokens += approx_tokens(variant.tool_call.name) + approx_tokens(args) + 3
        return Answer(content, calls, finish, variant.label, tokens)


def _choose_fault(
    forced: str | None, scripted: Fault | None, errors: ErrorRates, u: float
) -> _FaultChoice:
    """The fault served, if any: the header's, else the script's, else one drawn at the
    route's error rates with ``u``. A scripted fault's own parameters win."""
    retry_after_s, timeout_s, slow_s = errors.retry_after_s, errors.timeout_s, errors.slow_s
    if forced is not None:
        return _FaultChoice(forced, "header", retry_after_s, timeout_s, slow_s)
    if scripted is not None:
        return _FaultChoice(
            scripted.kind,
            "script",
            scripted.retry_after if scripted.retry_after is not None else retry_after_s,
            scripted.timeout_s if scripted.timeout_s is not None else timeout_s,
            scripted.slow_s if scripted.slow_s is not None else slow_s,
        )
    kind = _draw_fault(errors, u)
    return _FaultChoice(
        kind, "rate" if kind is not None else None, retry_after_s, timeout_s, slow_s
    )


def _draw_fault(errors: ErrorRates, u: float) -> str | None:
    """The kind whose slice of [0, 1) holds ``u``: the rates laid end to end in
    :data:`FAULT_KINDS` order (so a file of the four old kinds draws as it always did)."""
    edge = 0.0
    for kind, rate in errors.rates().items():
        edge += rate
        if u < edge:
            return kind
    return None


__all__ = [
    "Answer",
    "Decision",
    "Engine",
    "ToolCallOut",
]
