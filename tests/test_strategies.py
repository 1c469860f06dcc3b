"""llmcheck.strategies: each strategy draws what it claims, violations are truly
invalid, failures shrink to short examples, and draw() is seeded per sample."""

from __future__ import annotations

import json
import re
import unicodedata
import warnings
from typing import Literal

import hypothesis
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import llmcheck.strategies
from llmcheck import strategies as S
from llmcheck.errors import UsageError
from llmcheck.model.jsontext import JSONTextError, loads


def find(strategy, condition):
    """hypothesis.find without the example database: the simplest example that
    satisfies ``condition``, whatever an earlier run saved (with the database, a
    saved '\\x85' came back as the "simplest" empty text)."""
    return hypothesis.find(strategy, condition,  # 2000 examples: find()'s own default
                           settings=settings(database=None, max_examples=2000))


FEW = settings(max_examples=40, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- text kinds


@FEW
@given(S.empty_text())
def test_empty_text_is_whitespace_only(text):
    assert text.strip() == ""
    assert all(ch.isspace() for ch in text)


def test_empty_text_includes_the_empty_string_and_unicode_spaces():
    assert find(S.empty_text(), lambda s: True) == ""
    find(S.empty_text(), lambda s: any(not ch.isascii() for ch in s))


@settings(max_examples=10, deadline=None, database=None)
@given(S.long_text())
def test_long_text_is_long(text):
    assert 10_000 <= len(text) <= 100_000


@settings(max_examples=5, deadline=None, database=None)
@given(S.long_text(min_size=500, max_size=600))
def test_long_text_respects_its_bounds(text):
    assert 500 <= len(text) <= 600


def test_long_text_rejects_bad_bounds():
    with pytest.raises(UsageError):
        S.long_text(min_size=10, max_size=5)


@FEW
@given(S.control_characters())
def test_control_characters_contain_a_control_or_zero_width_char(text):
    assert any(ch in S.CONTROL_CHARACTERS for ch in text)
    assert all(unicodedata.category(ch) in ("Cc", "Cf") for ch in S.CONTROL_CHARACTERS)


def test_control_characters_cover_nul_c1_and_zero_width():
    find(S.control_characters(), lambda s: "\x00" in s)
    find(S.control_characters(), lambda s: any("\x80" <= ch <= "\x9f" for ch in s))
    for ch in ("\u200b", "\u200c", "\u200d", "\ufeff"):
        find(S.control_characters(), lambda s, ch=ch: ch in s)


@FEW
@given(S.bidi_overrides())
def test_bidi_overrides_contain_a_direction_control(text):
    assert any(ch in S.BIDI_CONTROLS for ch in text)
    assert all(unicodedata.bidirectional(ch) in
               ("RLO", "LRO", "RLE", "LRE", "PDF", "RLI", "LRI", "FSI", "PDI", "R", "L", "AL")
               for ch in S.BIDI_CONTROLS)


def test_bidi_overrides_include_the_right_to_left_override():
    find(S.bidi_overrides(), lambda s: "\u202e" in s)


@FEW
@given(S.homoglyphs())
def test_homoglyphs_look_like_ascii_but_are_not(text):
    assert not text.isascii()
    back = "".join(S.HOMOGLYPH_TO_ASCII.get(ch, ch) for ch in text)
    assert back.isascii() and back != text
    for ch in text:
        if not ch.isascii():
            assert unicodedata.name(ch).split()[0] in ("CYRILLIC", "GREEK")


@FEW
@given(S.mixed_scripts())
def test_mixed_scripts_mix_latin_with_another_script(text):
    assert any(ch.isascii() and ch.isalpha() for ch in text)
    assert any(not ch.isascii() for ch in text)


def test_mixed_scripts_include_zwj_sequences_and_skin_tones():
    find(S.mixed_scripts(), lambda s: "\u200d" in s)
    find(S.mixed_scripts(), lambda s: any("\U0001f3fb" <= ch <= "\U0001f3ff" for ch in s))
    find(S.mixed_scripts(), lambda s: any(unicodedata.name(ch, "").startswith("ARABIC")
                                          for ch in s))


def unbalanced(text: str) -> bool:
    """A bracket closes before it opens or never closes, a comment never closes,
    or a quote or backtick (so also a code fence) occurs an odd number of times."""
    for opener, closer in ("()", "[]", "{}", "<>"):
        depth = 0
        for ch in text:
            depth += (ch == opener) - (ch == closer)
            if depth < 0:
                return True
        if depth:
            return True
    return (any(text.count(a) != text.count(b) for a, b in [("/*", "*/"), ("<!--", "-->")])
            or any(text.count(q) % 2 for q in ('"', "'", "`")))


@FEW
@given(S.unbalanced_delimiters())
def test_unbalanced_delimiters_are_unbalanced(text):
    assert unbalanced(text)


def test_unbalanced_delimiters_include_an_unclosed_code_fence():
    find(S.unbalanced_delimiters(), lambda s: s.count("```") % 2 == 1)


@FEW
@given(S.markup_injection())
def test_markup_injection_carries_html_or_markdown(text):
    assert re.search(r"<[a-zA-Z/!]|\]\(|\||\n# |\*\*", text)


def test_markup_injection_includes_script_onerror_links_and_tables():
    for needle in ("<script>", "onerror=", "](javascript:", "| 3 |"):
        find(S.markup_injection(), lambda s, n=needle: n in s)


INJECTION = re.compile(r"ignore|disregard|system|assistant|instruction|\[/?INST\]|im_start",
                       re.IGNORECASE)


@FEW
@given(S.prompt_injection())
def test_prompt_injection_carries_an_injection(text):
    assert INJECTION.search(text)


@FEW
@given(S.malformed_text())
def test_malformed_text_is_text(text):
    assert isinstance(text, str)


def test_malformed_text_draws_from_every_kind():
    find(S.malformed_text(), lambda s: len(s) >= 10_000)
    find(S.malformed_text(), lambda s: "\u202e" in s)
    find(S.malformed_text(), lambda s: "<script>" in s)
    find(S.malformed_text(), lambda s: "gnore" in s)


# ----------------------------------------------------------------------------- JSON


def test_strict_json_object_defines_malformed():
    assert S.strict_json_object('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    for text, reason in (('{"a": NaN}', "NaN is not valid JSON"),
                         ('{"a": 1, "a": 2}', "duplicated key 'a'"),
                         ("[1]", "top level is list"), ('"x"', "top level is str"),
                         ("{", "Expecting property name"), ('{"a": 1,}', "Expecting property"),
                         ('```json\n{"a": 1}\n```', "Expecting value at line 1 column 1"),
                         ('{"a": ' * 600 + "1" + "}" * 600, "nested deeper than 512 levels")):
        with pytest.raises(ValueError, match=re.escape(reason)):
            S.strict_json_object(text)


@settings(max_examples=150, deadline=None, database=None)
@given(S.malformed_json())
def test_malformed_json_never_parses_as_a_strict_object(text):
    with pytest.raises(ValueError):  # never a RecursionError, however deep
        S.strict_json_object(text)


def test_malformed_json_includes_kinds_lenient_python_json_accepts():
    # NaN, duplicated keys and the wrong top-level type parse with json.loads:
    for needle in ("NaN", "Infinity"):
        text = find(S.malformed_json(), lambda s, n=needle: n in s)
        assert isinstance(json.loads(text), dict)
    text = find(S.malformed_json(), lambda s: s.startswith("[{"))
    assert isinstance(json.loads(text), list)
    find(S.malformed_json(), lambda s: "//" in s or "/*" in s)
    find(S.malformed_json(), lambda s: s.startswith("{'"))
    find(S.malformed_json(), lambda s: s.count("{") > S.MAX_JSON_DEPTH)


def test_malformed_json_includes_duplicated_keys():
    """Asked of the library's JSON reader, which reports a duplicated key as such;
    this test once used json.loads with a hook, which a saved 2005-deep example
    turned into a RecursionError on every rerun."""
    def has_duplicates(s: str) -> bool:
        try:
            loads(s)
        except JSONTextError as exc:
            return exc.reason.startswith("duplicated key")
        return False

    assert not has_duplicates("[" * 2005 + "]" * 2005)
    find(S.malformed_json(), has_duplicates)


# ----------------------------------------------------------------------------- violating


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: str = Field(min_length=1, max_length=20)


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    age: int = Field(ge=0, le=150)
    role: Literal["admin", "user"]
    active: bool
    address: Address
    nickname: str | None = None


PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 10},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "status": {"enum": ["open", "closed"]},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["name", "age", "score", "tags", "status"],
    "additionalProperties": False,
}


def person_valid(value) -> bool:
    try:
        Person.model_validate(value)
    except ValidationError:
        return False
    return True


def schema_valid(value) -> bool:
    cls = jsonschema.validators.validator_for(PERSON_SCHEMA)
    return cls(PERSON_SCHEMA, format_checker=cls.FORMAT_CHECKER).is_valid(value)


@pytest.mark.parametrize("kind", S.VIOLATION_KINDS)
def test_violating_a_pydantic_model_is_invalid_for_each_kind(kind):
    @FEW
    @given(S.violating(Person, kinds=[kind]))
    def check(value):
        assert isinstance(value, dict)
        assert not person_valid(value)
        error_types = {e["type"] for e in _errors(value)}
        expected = {
            "wrong_type": {"string_type", "int_type", "int_parsing", "int_from_float",
                           "bool_type", "bool_parsing", "model_type", "dict_type",
                           "literal_error", "string_too_long", "model_attributes_type"},
            "missing_required": {"missing"},
            "extra_field": {"extra_forbidden"},
            "out_of_range": {"greater_than_equal", "less_than_equal", "literal_error",
                             "string_too_short", "string_too_long"},
        }[kind]
        assert error_types & expected, (value, error_types)
        assert len(_errors(value)) == 1  # a near miss: exactly one thing is wrong

    check()


def _errors(value) -> list[dict]:
    try:
        Person.model_validate(value)
    except ValidationError as exc:
        return exc.errors()
    return []


@pytest.mark.parametrize("kind", S.VIOLATION_KINDS)
def test_violating_a_json_schema_is_invalid_for_each_kind(kind):
    validator_for = jsonschema.validators.validator_for(PERSON_SCHEMA)
    validator = validator_for(PERSON_SCHEMA, format_checker=validator_for.FORMAT_CHECKER)
    validators = {
        "wrong_type": {"type", "enum"},
        "missing_required": {"required"},
        "extra_field": {"additionalProperties"},
        "out_of_range": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                         "minLength", "maxLength", "maxItems", "enum"},
    }[kind]

    @FEW
    @given(S.violating(PERSON_SCHEMA, kinds=[kind]))
    def check(value):
        errors = list(validator.iter_errors(value))
        assert errors and not schema_valid(value)
        assert len(errors) == 1, [e.message for e in errors]
        assert errors[0].validator in validators, (value, errors[0].validator)

    check()


def test_violating_covers_nested_fields_and_every_kind():
    find(S.violating(Person), lambda v: isinstance(v.get("address"), dict)
         and not _valid_address(v["address"]))
    for kind in S.VIOLATION_KINDS:
        find(S.violating(Person, kinds=[kind]), lambda v: True)


def _valid_address(value) -> bool:
    try:
        Address.model_validate(value)
    except ValidationError:
        return False
    return True


@FEW
@given(S.violating_json(Person))
def test_violating_json_is_json_text_that_fails_the_model(text):
    value = json.loads(text)
    assert isinstance(value, dict)
    with pytest.raises(ValidationError):
        Person.model_validate_json(text)


def test_violating_without_extra_forbidden_draws_no_extra_field():
    class Loose(BaseModel):
        name: str

    with pytest.raises(UsageError, match="no near miss"):
        S.violating(Loose, kinds=["extra_field"])
    with pytest.raises(UsageError):
        S.violating({"type": "object"})
    with pytest.raises(UsageError, match="unknown kinds"):
        S.violating(Person, kinds=["nonsense"])
    with pytest.raises(UsageError):
        S.violating(42)


# ----------------------------------------------------------------------------- shrinking


def test_shrinks_zero_width_text_to_the_character_alone():
    minimal = find(S.control_characters(), lambda s: any(ch in S.ZERO_WIDTH for ch in s))
    assert len(minimal) == 1

    minimal = find(S.malformed_text(), lambda s: "\u200b" in s)
    assert minimal == "\u200b"


def test_a_failing_property_reports_a_short_example():
    def sanitize(text: str) -> str:  # forgets zero-width characters
        return "".join(ch for ch in text if ch.isprintable() or ch.isspace()
                       or ch in S.ZERO_WIDTH)

    failures: list[str] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(S.malformed_text())
    def prop(text):
        out = sanitize(text)
        if any(ch in S.ZERO_WIDTH for ch in out):
            failures.append(text)
            raise AssertionError(text)

    with pytest.raises(AssertionError):
        prop()
    assert len(failures[-1]) <= 20, repr(failures[-1])


# ----------------------------------------------------------------------------- draw


def test_draw_is_deterministic_per_seed_and_varies_across_seeds():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for strategy in (S.malformed_text(), S.control_characters(), S.violating(Person)):
            first = [S.draw(strategy, seed=i) for i in range(10)]
            assert first == [S.draw(strategy, seed=i) for i in range(10)]
            assert len({repr(v) for v in first}) >= 5


def test_draw_uses_the_running_sample_and_differs_per_draw():
    from llmcheck.core import context
    from llmcheck.core.context import SampleContext

    def in_sample(seed: int) -> list[str]:
        token = context._set(SampleContext(index=0, seed=seed))
        try:
            return [S.draw(S.malformed_text()) for _ in range(3)]
        finally:
            context._reset(token)

    assert in_sample(7) == in_sample(7)
    assert in_sample(7) != in_sample(8)
    assert len(set(in_sample(7))) > 1  # the n-th draw of a sample is its own example


def test_draw_outside_a_sample_needs_a_seed():
    with pytest.raises(UsageError, match="seed"):
        S.draw(S.empty_text())


def test_the_module_is_importable_both_ways():
    assert llmcheck.strategies is S
    assert st.text  # hypothesis strategies compose with ours
    assert isinstance(S.draw(st.one_of(S.homoglyphs(), st.just("x")), seed=1), str)


def test_repeat_draws_a_reproducible_input_per_sample(pytester, monkeypatch):
    pytester.makepyfile(
        """
        import json, os
        import llmcheck
        from llmcheck import strategies

        def sanitize(text: str) -> str:
            bad = set(strategies.CONTROL_CHARACTERS) | set(strategies.BIDI_CONTROLS)
            return "".join(ch for ch in text if ch not in bad).strip()

        @llmcheck.repeat(runs=5, concurrency=1)
        def test_sanitize(llm_sample):
            text = strategies.draw(strategies.malformed_text())
            with open(os.environ["DRAWN"], "a") as f:
                f.write(json.dumps([llm_sample.index, text]) + "\\n")
            out = sanitize(text)
            assert not set(out) & set(strategies.CONTROL_CHARACTERS)
            assert not set(out) & set(strategies.BIDI_CONTROLS)
        """
    )

    def run(name: str) -> dict[int, str]:
        path = pytester.path / name
        monkeypatch.setenv("DRAWN", str(path))
        result = pytester.runpytest("--llm-seed=1234", "--llm-no-early-stop", "-p", "no:randomly")
        result.assert_outcomes(passed=1)
        return {i: text for i, text in map(json.loads, path.read_text().splitlines())}

    first, second = run("a.jsonl"), run("b.jsonl")
    assert sorted(first) == list(range(5))
    assert first == second  # same session seed, same inputs
    assert len(set(first.values())) >= 4  # a different input per sample
