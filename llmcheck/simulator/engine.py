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
    last_tool,
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
    StreamTiming,
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
    ttft_s: float | None = None
    """A paced stream's wait before its first token chunk (None: the stream is not
    paced; its events go at once after ``latency_s``)."""
    gap: Latency | None = None
    """A paced stream's gap before each later token chunk (None: no gap)."""
    gap_seed: int = 0
    """Seeds the gaps' draws (see :meth:`stream_delays`)."""

    def stream_delays(self, tokens: int) -> list[float]:
        """Seconds to wait before each of a paced stream's ``tokens`` token chunks: the
        time to first token, then the gaps, drawn from :attr:`gap_seed` (so the same
        seeded request is paced the same on any server); empty when not paced."""
        if self.ttft_s is None or tokens <= 0:
            return []
        rng = random.Random(self.gap_seed)
        gaps = [self.gap.sample_seconds(rng) if self.gap is not None else 0.0
                for _ in range(tokens - 1)]
        return [self.ttft_s, *gaps]

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
    stream: StreamTiming | None = None
    cumulative: list[float] = field(default_factory=list)
    top: int = 0


class _Draw(NamedTuple):
    """A request's random draws: fault, latency, and a (variant index, call id) per choice;
    for a paced stream, its time to first token and the seed of its gaps."""

    fault_u: float
    latency_s: float
    picks: list[tuple[int, str]]
    ttft_s: float | None = None
    gap_seed: int = 0


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
        self._pace_rng = random.Random(f"{scenario.seed}|pace")
        """Unseeded paced streams draw their timing here, so the per-server stream of
        every other draw stays what it was before streams were paced."""
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
            stream=(self.scenario.stream.merged(route.stream) if self.scenario.stream
                    else route.stream),
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
        tool_result_of = last_tool(messages)[0]
        for route in self.scenario.routes:
            if not set(route.required_tools) <= (tools or set()):
                continue
            if route.after_tool is not None and route.after_tool != tool_result_of:
                continue
            if route.system and not route.fits_system("\n".join(
                    message_text(m) for m in messages if m.get("role") == "system")):
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
        scripted, draw = self._count_and_draw(plan, key, req["n"], req["temperature"] == 0,
                                              req["stream"])
        fault = _choose_fault(forced_fault, scripted, plan.errors, draw.fault_u)
        context = {"model": req["model"], "last_user": last_user(messages),
                   "last_tool": last_tool(messages)[1], **groups}
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
            ttft_s=draw.ttft_s,
            gap=plan.stream.gap_ms if plan.stream is not None else None,
            gap_seed=draw.gap_seed,
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
        self, plan: _RoutePlan, key: bytes | None, n: int, greedy: bool, stream: bool = False
    ) -> tuple[Fault | None, _Draw]:
        """Number the request (the scripted fault it gets, if any) and draw its randomness.

        Counting and the unseeded draws happen under one lock, so the k-th request
        gets the k-th draws of the per-server stream; a seeded request only takes
        its attempt number under the lock and draws from its own RNGs.
        """
        with self._lock:
            scripted = self._number_request(plan.name)
            if key is None:  # the per-server stream, drawn under the lock
                return scripted, self._draw(plan, self._rng, [self._rng] * n, greedy,
                                            self._pace_rng if stream else None)
            attempt = self._next_attempt(key)
        draw_rng = random.Random(key + b"|draw|" + str(attempt).encode())
        return scripted, self._draw(
            plan,
            draw_rng,
            [random.Random(key + b"|answer|" + str(i).encode()) for i in range(n)],
            greedy,
            draw_rng if stream else None,
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
        pace_rng: random.Random | None = None,
    ) -> _Draw:
        """The fault draw, the latency, a (variant index, tool-call id) per choice, and,
        for a streamed request (``pace_rng`` given) to a paced route, the time to first
        token and the gaps' seed, drawn last from ``pace_rng`` so that every other draw
        is what it always was."""
        fault_u = draw_rng.random()
        latency_s = plan.latency.sample_seconds(draw_rng)
        picks = [cls._pick(plan, rng, greedy) for rng in choice_rngs]
        if pace_rng is None or plan.stream is None:
            return _Draw(fault_u, latency_s, picks)
        timing = plan.stream
        ttft_s = timing.ttft_ms.sample_seconds(pace_rng) if timing.ttft_ms else latency_s
        return _Draw(fault_u, latency_s, picks, ttft_s, pace_rng.getrandbits(64))

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
            if variant.template:
                args = _fill_json(args, context)
            calls = (ToolCallOut(call_id, variant.tool_call.name, args),)
            tokens += approx_tokens(variant.tool_call.name) + approx_tokens(args) + 3
        return Answer(content, calls, finish, variant.label, tokens)


def _fill_json(arguments: str, context: Mapping[str, str]) -> str:
    """Tool-call arguments with ``{{name}}`` placeholders filled, each value JSON-escaped
    (so a request's text cannot break out of its string); arguments that are not JSON
    (a variant's deliberately broken string) are filled as plain text."""
    try:
        json.loads(arguments)
    except ValueError:
        return _PLACEHOLDER.sub(lambda m: context.get(m.group(1), ""), arguments)
    return _PLACEHOLDER.sub(lambda m: json.dumps(context.get(m.group(1), ""))[1:-1], arguments)


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
