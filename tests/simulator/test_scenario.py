"""Scenario files: the shipped default, routing, and the errors a bad file gets."""

from __future__ import annotations

import hashlib
import json
import random
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
import scipy.stats
import yaml

from llmcheck.errors import UsageError
from llmcheck.injection import catalogue
from llmcheck.simulator import (
    Engine,
    ErrorRates,
    Fault,
    Latency,
    RequestError,
    Scenario,
    default_scenario,
    load_scenario,
)
from llmcheck.simulator.scenario import FAULT_KINDS, Variant

GET_WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}

# The trigger prompts documented at the top of default.yaml.
DOCUMENTED_PROMPTS = [
    ("extraction", "Return Ada Lovelace as JSON with name and age.", None),
    (
        "sentiment_positive",
        "Classify the sentiment of this review as positive, negative or neutral. "
        "Review: I love this blender, works great!",
        None,
    ),
    (
        "sentiment_negative",
        "Classify the sentiment of this review. Review: Terrible, it arrived broken.",
        None,
    ),
    (
        "sentiment_neutral",
        "Classify the sentiment of this review. Review: It arrived on Tuesday in a box.",
        None,
    ),
    ("weather_tool", "What's the weather in Paris?", [GET_WEATHER]),
    ("weather_no_tool", "What's the weather in Paris?", None),
    (
        "summary",
        "Summarize this passage in 1-3 sentences: Apollo 11 was the first crewed "
        "Moon landing, on July 20, 1969.",
        None,
    ),
    ("default", "What is a good name for a cat?", None),
]


def route_for(prompt: str, tools: list[dict[str, Any]] | None = None, system: str = "") -> str:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    body: dict[str, Any] = {"messages": messages}
    if tools:
        body["tools"] = tools
    return Engine(default_scenario()).decide(body).route


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ----------------------------------------------------------- default scenario


def test_default_scenario_loads() -> None:
    scenario = load_scenario(None)
    assert scenario is default_scenario()
    assert scenario.name == "default"
    assert {r.name for r in scenario.routes} >= {
        "extraction",
        "sentiment_positive",
        "sentiment_negative",
        "sentiment_neutral",
        "weather_tool",
        "summary",
    }
    assert scenario.latency.median_ms is not None and scenario.latency.median_ms <= 10


@pytest.mark.parametrize(("route", "prompt", "tools"), DOCUMENTED_PROMPTS)
def test_documented_prompts_reach_their_route(
    route: str, prompt: str, tools: list[dict[str, Any]] | None
) -> None:
    assert route_for(prompt, tools) == route


def test_classification_instructions_may_sit_in_the_system_message() -> None:
    system = "Classify the sentiment of the user's review: positive, negative or neutral."
    assert route_for("The worst purchase ever.", system=system) == "sentiment_negative"
    assert route_for("Amazing sound quality!", system=system) == "sentiment_positive"


def test_tool_choice_none_hides_the_tool() -> None:
    body = {
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [GET_WEATHER],
        "tool_choice": "none",
    }
    assert Engine(default_scenario()).decide(body).route == "weather_no_tool"


def _answers(route: str) -> list[Variant]:
    return list(default_scenario().route_named(route).answers)


def _good_share(route: str) -> float:
    answers = _answers(route)
    return sum(v.weight for v in answers if v.label is None) / sum(v.weight for v in answers)


@pytest.mark.parametrize(
    "route",
    ["extraction", "sentiment_positive", "sentiment_negative", "summary", "weather_tool"],
)
def test_topics_are_mostly_good_with_some_defects(route: str) -> None:
    assert 0.8 <= _good_share(route) < 1.0


def test_extraction_answers_are_what_their_labels_say() -> None:
    expected = {"name": "Ada Lovelace", "age": 36}
    labels = set()
    for variant in _answers("extraction"):
        assert variant.text is not None
        if variant.label is None:
            assert json.loads(variant.text) == expected
            continue
        labels.add(variant.label)
        try:
            parsed = json.loads(variant.text)
        except json.JSONDecodeError:
            assert variant.label in {"prose_around_json", "json_in_fence"}
        else:
            assert parsed != expected
    assert labels == {"prose_around_json", "json_in_fence", "wrong_type", "missing_key"}


def test_sentiment_answers_are_what_their_labels_say() -> None:
    for route, right in (
        ("sentiment_positive", "positive"),
        ("sentiment_negative", "negative"),
        ("sentiment_neutral", "neutral"),
    ):
        for variant in _answers(route):
            if variant.label is None:
                assert variant.text == right
            else:
                assert variant.text != right
        assert {v.label for v in _answers(route)} >= {
            None,
            "format_case_punctuation",
            "explanation",
            "out_of_set",
        }


def test_summary_answers_are_what_their_labels_say() -> None:
    for variant in _answers("summary"):
        text = variant.text or ""
        words = len(text.split())
        sentences = len(re.findall(r"[.!?](\s|$)", text))
        good = (
            "Apollo 11" in text
            and "1969" in text
            and words <= 60
            and 1 <= sentences <= 3
            and "as an ai language model" not in text.lower()
        )
        assert good == (variant.label is None), (variant.label, text)
    by_label = {v.label: v for v in _answers("summary")}
    assert len((by_label["too_long"].text or "").split()) > 60
    assert "1969" not in (by_label["missing_year"].text or "")
    assert "As an AI language model" in (by_label["forbidden_phrase"].text or "")
    assert by_label["truncated"].effective_finish_reason == "length"


def test_weather_answers_are_what_their_labels_say() -> None:
    for variant in _answers("weather_tool"):
        if variant.label is None:
            assert variant.tool_call is not None
            assert variant.tool_call.name == "get_weather"
            assert variant.tool_call.arguments == {"city": "Paris", "unit": "celsius"}
    labels = {v.label for v in _answers("weather_tool")}
    assert labels == {None, "missing_unit", "wrong_city", "prose_instead_of_tool"}


# ----------------------------------------------------------------- formats


def test_yaml_and_json_files_load_the_same(tmp_path: Path) -> None:
    data = {
        "name": "both",
        "seed": 9,
        "latency": {"ms": 0},
        "routes": [
            {
                "name": "greet",
                "match": ["^hello"],
                "answers": [{"text": "hi", "weight": 2}, {"text": "hey", "label": "casual"}],
            }
        ],
        "faults": [{"kind": "rate_limit", "count": 2, "retry_after": 0.2}],
    }
    from_yaml = load_scenario(write(tmp_path, yaml.safe_dump(data)))
    from_json = load_scenario(write(tmp_path, json.dumps(data), "scenario.json"))
    from_dict = load_scenario(data)
    assert from_yaml == from_json == from_dict
    assert load_scenario(from_dict) is from_dict
    assert from_yaml.routes[0].patterns[0].search("HELLO there")  # case-insensitive default


# --------------------------------------------------------------- validation


def test_bad_field_names_file_path_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
routes:
  - name: a
    match: a
    answers: [{text: a}]
  - name: b
    match: b
    answers: [{text: b}]
  - name: c
    match: c
    answers:
      - text: c
        weight: 0
""",
    )
    with pytest.raises(UsageError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert "routes[2].answers[0].weight: Input should be greater than 0 (line 12)" in message


def test_unknown_keys_are_errors_that_list_the_allowed_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "routes:\n  - name: a\n    match: a\n    answrs: [{text: a}]\n")
    with pytest.raises(UsageError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "routes[0].answrs: unknown key; allowed: " in message
    assert "answers" in message.split("allowed:")[1]
    with pytest.raises(UsageError, match=r"latencyy: unknown key"):
        load_scenario({"latencyy": {"ms": 1}})


def test_invalid_regex_is_reported_with_its_route(tmp_path: Path) -> None:
    path = write(
        tmp_path, "routes:\n  - name: broken\n    match: ['ok', '(unclosed']\n    answers: [x]\n"
    )
    with pytest.raises(UsageError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "routes[0].match: route 'broken': invalid regular expression '(unclosed'" in message
    assert "(line 3)" in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"latency": {"ms": 5, "median_ms": 5}}, "latency: give either `ms`"),
        ({"latency": {}}, "latency: give either `ms`"),
        ({"latency": {"median_ms": 50, "p95_ms": 10}}, "must be >= `median_ms`"),
        ({"errors": {"rate_limit": 0.7, "timeout": 0.5}}, "error rates add up to 1.2"),
        ({"errors": {"rate_limit": 1.5}}, "errors.rate_limit: Input should be less than"),
        ({"faults": [{"kind": "explode"}]}, "faults[0].kind: Input should be 'rate_limit'"),
        ({"faults": [{"kind": "timeout", "route": "nope"}]}, "unknown route 'nope'"),
        ({"routes": [{"name": "a", "match": "a", "answers": []}]}, "routes[0].answers"),
        ({"routes": [{"name": "a", "match": "a", "answers": [{"weight": 1}]}]}, "needs `text`"),
        (
            {"routes": [{"name": "a", "match": "a", "answers": ["x"]}] * 2},
            "duplicate route name 'a'",
        ),
        (
            {"routes": [{"name": "default", "match": "a", "answers": [{"text": "x"}]}]},
            "'default' is reserved",
        ),
        (
            {
                "routes": [
                    {
                        "name": "t",
                        "match": "(?P<city>\\w+)",
                        "answers": [{"text": "{{town}}", "template": True}],
                    }
                ]
            },
            "unknown placeholder {{town}}; allowed: city, last_tool, last_user, model",
        ),
        (
            {
                "routes": [
                    {"name": "t", "match": "x", "errors": {"server_error": 0.6}, "answers": ["x"]}
                ],
                "errors": {"rate_limit": 0.6},
            },
            "error rates add up to 1.2",
        ),
        (
            {"default": {"answers": [{"tool_call": {"name": "f", "arguments": 3}}]}},
            "arguments must be a mapping",
        ),
    ],
)
def test_invalid_scenarios_are_usage_errors(data: dict[str, Any], expected: str) -> None:
    with pytest.raises(UsageError) as info:
        load_scenario(data)
    assert expected in str(info.value)
    assert "<scenario dict>" in str(info.value)


def test_unreadable_or_unparsable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(UsageError, match="cannot read scenario file .*missing.yaml"):
        load_scenario(missing)
    bad_yaml = write(tmp_path, "routes:\n  - name: [unclosed\n")
    with pytest.raises(UsageError, match=r"scenario.yaml:\d+: invalid YAML"):
        load_scenario(bad_yaml)
    bad_json = write(tmp_path, "{\n  'single': 1\n}", "bad.json")
    with pytest.raises(UsageError, match=r"bad.json:2: invalid JSON"):
        load_scenario(bad_json)
    with pytest.raises(UsageError, match="mapping at the top level"):
        load_scenario(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(UsageError, match="file path, a mapping or a Scenario"):
        load_scenario(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- behaviour


def test_lognormal_latency_matches_its_median_and_p95() -> None:
    latency = Latency(median_ms=20, p95_ms=80)
    rng = random.Random(0)
    draws = sorted(latency.sample_seconds(rng) * 1000 for _ in range(20_000))
    assert statistics.median(draws) == pytest.approx(20, rel=0.05)
    assert draws[int(0.95 * len(draws))] == pytest.approx(80, rel=0.08)
    capped = Latency(median_ms=20, p95_ms=80, max_ms=30)
    assert max(capped.sample_seconds(rng) for _ in range(1000)) <= 0.030
    assert Latency(ms=100).sample_seconds(rng) == 0.1


def test_route_scope_and_first_match_wins() -> None:
    scenario = Scenario.model_validate(
        {
            "routes": [
                {
                    "name": "sys",
                    "scope": "conversation",
                    "match": "^system: be terse",
                    "answers": ["a"],
                },
                {"name": "any", "match": ".", "answers": ["b"]},
                {"name": "never", "match": ".", "answers": ["c"]},
            ]
        }
    )
    engine = Engine(scenario)
    terse: list[dict[str, Any]] = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    assert engine.match(terse) == ("sys", {})
    assert engine.match([{"role": "user", "content": "hi"}]) == ("any", {})
    assert engine.match([{"role": "user", "content": ""}]) == ("default", {})


def test_scripted_fault_numbering() -> None:
    scenario = Scenario.model_validate(
        {"faults": [{"kind": "server_error", "after": 2, "count": 2}]}
    )
    engine = Engine(scenario)
    body = {"messages": [{"role": "user", "content": "x"}]}
    assert [engine.decide(body).fault for _ in range(6)] == [
        None,
        None,
        "server_error",
        "server_error",
        None,
        None,
    ]


# ------------------------------------------------------ the shared fault catalogue

OLD_SCENARIO = """\
# A scenario file written when the simulator knew four fault kinds.
seed: 11
errors:
  rate_limit: 0.1
  server_error: 0.05
  timeout: 0
  malformed: 0.2
  retry_after_s: 0.5
  timeout_s: 3
faults:
  - {kind: malformed, after: 0, count: 2}
routes:
  - name: flaky
    match: flaky
    errors: {malformed: 0.4}
    answers: [flaky answer]
"""


def test_every_catalogue_kind_is_a_scenario_kind() -> None:
    assert sorted(FAULT_KINDS) == sorted(catalogue.KINDS)
    assert FAULT_KINDS[:4] == ("rate_limit", "server_error", "timeout", "stream_cut")
    rates = {kind: 0.01 for kind in catalogue.KINDS}
    errors = load_scenario({"errors": rates}).errors
    assert errors.rates() == rates
    assert [Fault(kind=kind).kind for kind in catalogue.KINDS] == list(catalogue.KINDS)


def test_an_old_scenario_file_reads_malformed_as_stream_cut(tmp_path: Path) -> None:
    old = load_scenario(write(tmp_path, OLD_SCENARIO))
    assert old.errors.stream_cut == 0.2 and old.errors.slow_s == 2.0
    assert [f.kind for f in old.faults] == ["stream_cut"]
    assert old.routes[0].errors is not None and old.routes[0].errors.stream_cut == 0.4
    renamed = load_scenario(
        write(tmp_path, OLD_SCENARIO.replace("malformed", "stream_cut"), "new.yaml")
    )
    assert old == renamed
    # ...and draws the same faults: the old kinds keep their slices of [0, 1)
    old_engine, new_engine = Engine(old), Engine(renamed)
    for i in range(300):
        body = {
            "messages": [{"role": "user", "content": f"flaky {i}" if i % 2 else "hi"}],
            "seed": i,
        }
        assert old_engine.decide(body) == new_engine.decide(body)
    # the shipped default scenario of earlier versions listed `malformed: 0` too
    assert load_scenario(
        {
            "errors": {
                "rate_limit": 0,
                "server_error": 0,
                "timeout": 0,
                "malformed": 0,
                "retry_after_s": 0.1,
                "timeout_s": 10,
            }
        }
    )


def test_errors_name_the_key_as_written(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\nerrors:\n  rate_limit: 0\n  malformed: 3\n")
    with pytest.raises(
        UsageError,
        match=r"errors\.malformed: Input should be less than or "
        r"equal to 1 \(line 4\)",
    ):
        load_scenario(path)
    with pytest.raises(UsageError, match=r"errors\.stream_cut: Input should be less"):
        load_scenario({"errors": {"stream_cut": 3}})


def test_the_old_and_new_name_together_are_an_error() -> None:
    with pytest.raises(UsageError, match="`malformed` is the old name of `stream_cut`"):
        load_scenario({"errors": {"malformed": 0.1, "stream_cut": 0.1}})
    with pytest.raises(UsageError, match=r"errors: error rates add up to 1\.2"):
        load_scenario({"errors": {"malformed": 0.6, "empty": 0.6}})
    with pytest.raises(UsageError, match=r"faults\[0\]\.kind: Input should be 'rate_limit'"):
        load_scenario({"faults": [{"kind": "malformd"}]})


def test_slow_s_is_a_fault_parameter_with_overrides() -> None:
    assert ErrorRates().slow_s == 2.0
    scenario = load_scenario(
        {
            "errors": {"slow_s": 0.5},
            "faults": [{"kind": "slow", "count": 1}, {"kind": "slow", "after": 1, "slow_s": 0.1}],
        }
    )
    engine = Engine(scenario)
    body = {"messages": [{"role": "user", "content": "x"}]}
    first, second, third = (engine.decide(body) for _ in range(3))
    assert (first.fault, first.fault_source, first.slow_s) == ("slow", "script", 0.5)
    assert (second.fault, second.slow_s) == ("slow", 0.1)
    assert third.fault is None
    with pytest.raises(UsageError, match="errors.slow_s: Input should be greater than"):
        load_scenario({"errors": {"slow_s": -1}})


def test_the_header_may_force_every_kind_and_the_old_name() -> None:
    engine = Engine(default_scenario())
    body = {"messages": [{"role": "user", "content": "x"}]}
    for kind in catalogue.KINDS:
        decision = engine.decide(body, kind)
        assert (decision.fault, decision.fault_source) == (kind, "header")
    assert engine.decide(body, "malformed").fault == "stream_cut"
    with pytest.raises(RequestError, match="unknown X-Llmcheck-Fault 'explode'.*bad_tool_call"):
        engine.decide(body, "explode")


FAULT_RATES = {
    "rate_limit": 0.08,
    "server_error": 0.04,
    "timeout": 0.03,
    "stream_cut": 0.05,
    "connection_error": 0.02,
    "malformed_json": 0.06,
    "truncated": 0.05,
    "empty": 0.04,
    "refusal": 0.03,
    "wrong_schema": 0.05,
    "slow": 0.07,
    "bad_tool_call": 0.03,
}


def _assert_binomial(counts: dict[Any, int], rates: dict[Any, float], n: int) -> None:
    """Every count inside the central 99.99% of Binomial(n, rate): with 13 categories
    the chance of a false alarm is below 0.2% (and the draws are seeded: none here)."""
    for key, rate in rates.items():
        low, high = scipy.stats.binom.interval(0.9999, n, rate)
        assert low <= counts.get(key, 0) <= high, (key, counts.get(key, 0), rate * n)


def test_drawn_faults_match_their_rates_over_many_seeded_requests() -> None:
    scenario = load_scenario({"seed": 5, "errors": FAULT_RATES})
    n = 8000
    expected: dict[str | None, float] = {**FAULT_RATES, None: 1 - sum(FAULT_RATES.values())}

    def faults(engine: Engine) -> list[str | None]:
        return [
            engine.decide({"messages": [{"role": "user", "content": "q"}], "seed": i}).fault
            for i in range(n)
        ]

    drawn = faults(Engine(scenario))
    counts = {kind: drawn.count(kind) for kind in expected}
    _assert_binomial(counts, expected, n)
    assert all(f is None or f in FAULT_RATES for f in drawn)
    # the draw of a seeded request is a function of the request: a fresh engine agrees
    assert faults(Engine(scenario)) == drawn
    # unseeded requests draw from the per-server stream at the same rates
    engine = Engine(scenario)
    stream = [
        engine.decide({"messages": [{"role": "user", "content": "q"}]}).fault for _ in range(n)
    ]
    _assert_binomial({kind: stream.count(kind) for kind in expected}, expected, n)


# ------------------------------------------------- decisions pinned across refactors

REGRESSION_PROMPTS: list[tuple[list[dict[str, Any]], list[dict[str, Any]] | None]] = [
    ([{"role": "user", "content": "Return Ada Lovelace as JSON with name and age."}], None),
    (
        [
            {"role": "user", "content": "Classify the sentiment of this review."},
            {"role": "user", "content": "Review: I love this blender, works great!"},
        ],
        None,
    ),
    ([{"role": "user", "content": "What's the weather in Paris?"}], [GET_WEATHER]),
    (
        [
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "tool", "content": "18 C, sunny"},
        ],
        [GET_WEATHER],
    ),
    ([{"role": "user", "content": DOCUMENTED_PROMPTS[6][1]}], None),
    ([{"role": "user", "content": "What is a good name for a cat?"}], None),
]


def _regression_scenario() -> Scenario:
    """The default scenario plus error rates and scripted faults, so every branch runs."""
    base = default_scenario()
    return base.model_copy(
        update={
            "errors": base.errors.model_copy(
                update={
                    "rate_limit": 0.1,
                    "server_error": 0.05,
                    "timeout": 0.05,
                    "stream_cut": 0.05,
                }
            ),
            "faults": [
                Fault(kind="rate_limit", after=3, count=2, retry_after=0.25),
                Fault(kind="timeout", route="summary", after=1, count=1, timeout_s=2.5),
                Fault(kind="server_error", route="default", after=0, count=1),
            ],
        }
    )


def _decision_records() -> list[list[Any]]:
    """Every field of ~2,000 decisions: 50 server seeds x the prompts above x request kinds."""
    records: list[list[Any]] = []
    for server_seed in range(50):
        engine = Engine(_regression_scenario(), seed=server_seed)
        for messages, tools in REGRESSION_PROMPTS:
            base: dict[str, Any] = {"model": "m", "messages": messages}
            if tools:
                base["tools"] = tools
            bodies: list[tuple[dict[str, Any], str | None]] = [
                (base, None),  # the per-server RNG stream
                ({**base, "seed": server_seed * 7, "n": 2}, None),
                ({**base, "seed": server_seed * 7, "n": 2}, None),  # attempt 2 of the same key
                ({**base, "temperature": 0, "max_tokens": 5, "stream": True}, None),
                ({**base, "seed": 1, "stream_options": {"include_usage": True}}, "malformed"),
            ]
            for body, forced in bodies:
                d = engine.decide(body, forced)
                records.append(
                    [
                        d.route,
                        d.model,
                        d.stream,
                        d.include_usage,
                        round(d.latency_s, 12),
                        # The digest predates the fault catalogue, where `malformed` was
                        # renamed `stream_cut`; the draws themselves did not change.
                        "malformed" if d.fault == "stream_cut" else d.fault,
                        d.fault_source,
                        d.retry_after_s,
                        d.timeout_s,
                        d.prompt_tokens,
                        [
                            [
                                a.content,
                                [[c.id, c.name, c.arguments] for c in a.tool_calls],
                                a.finish_reason,
                                a.label,
                                a.completion_tokens,
                            ]
                            for a in d.answers
                        ],
                    ]
                )
    return records


def test_decisions_are_unchanged_for_fixed_seeds() -> None:
    # The digest was computed with the engine before `decide` was split into steps;
    # any change to routing, draws, faults or rendering for a given seed changes it.
    records = _decision_records()
    assert len(records) == 50 * len(REGRESSION_PROMPTS) * 5
    # The records exercise every path, so the digest pins something real.
    assert {r[6] for r in records} == {None, "header", "script", "rate"}
    assert {r[0] for r in records} >= {
        "extraction",
        "sentiment_positive",
        "weather_tool",
        "weather_followup",
        "summary",
        "default",
    }
    assert any(a[3] is not None for r in records for a in r[10])  # some defect labels
    assert any(a[2] == "length" for r in records for a in r[10])  # some cut by max_tokens
    assert records[0] == EXPECTED_FIRST_RECORD
    digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
    assert digest == EXPECTED_DECISIONS_DIGEST


EXPECTED_FIRST_RECORD: list[Any] = [
    "extraction",
    "m",
    False,
    False,
    0.005177365936,
    None,
    None,
    0.1,
    10.0,
    19,
    [['{"name": "Ada Lovelace", "age": 36}', [], "stop", None, 9]],
]
EXPECTED_DECISIONS_DIGEST = "25a0412304080eb7e91e2466ef59f2df69e14296e1ee4f9acaeb22253b6f9df3"
