"""assert_json / assert_schema: strict vs lenient parsing, paths, schema kinds, caching."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from llmcheck.checks import CheckFailed, assert_json, assert_schema
from llmcheck.checks import schema as schema_module
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion


class Address(BaseModel):
    street: str
    zip: int


class Person(BaseModel):
    name: str
    age: int = Field(ge=0)
    address: Address
    tags: list[str] = []


ADA = {"name": "Ada", "age": 36, "address": {"street": "St James's Square", "zip": 12345}}
ADA_JSON = json.dumps(ADA)

PERSON_SCHEMA = {
    "title": "PersonSchema",
    "type": "object",
    "required": ["name", "age", "address"],
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "email": {"type": "string", "format": "email"},
        "address": {
            "type": "object",
            "required": ["zip"],
            "properties": {"zip": {"type": "integer"}},
        },
    },
}


def test_pydantic_model_returns_the_instance(sample):
    person = assert_schema(ADA_JSON, Person)
    assert isinstance(person, Person) and person.address.zip == 12345
    [result] = sample.checks
    assert (result.name, result.passed, result.value) == ("schema(Person)", True, 0)


def test_completion_and_parsed_values_are_accepted():
    assert assert_schema(Completion(text=ADA_JSON, model="m"), Person).name == "Ada"
    assert assert_schema(ADA, Person).age == 36
    assert assert_schema(Person(**ADA), Person).age == 36
    assert assert_schema(ADA, PERSON_SCHEMA) == ADA
    assert assert_json(Completion(text="[1, 2]", model="m")) == [1, 2]


def test_nested_violations_are_all_listed_with_json_paths(sample):
    bad = {"name": 7, "age": -1, "address": {"street": "x", "zip": "abc"}}
    with pytest.raises(CheckFailed) as info:
        assert_schema(json.dumps(bad), Person)
    message = str(info.value)
    assert "3 violations of Person" in message
    assert "$.name: Input should be a valid string (got 7)" in message
    assert "$.age: Input should be greater than or equal to 0 (got -1)" in message
    assert "$.address.zip: Input should be a valid integer" in message
    assert sample.checks[0].value == 3


def test_json_schema_violations_have_paths_too():
    bad = {"name": "Ada", "age": "old", "email": "not-an-email", "address": {"zip": "abc"}}
    with pytest.raises(CheckFailed) as info:
        assert_schema(json.dumps(bad), PERSON_SCHEMA)
    message = str(info.value)
    assert message.startswith("schema(PersonSchema): 3 violations")
    assert "$.address.zip: 'abc' is not of type 'integer'" in message
    assert "$.age: 'old' is not of type 'integer'" in message
    assert "$.email: 'not-an-email' is not a 'email'" in message  # formats are checked


def test_list_of_models_via_type_adapter():
    people = assert_schema(json.dumps([ADA, ADA]), list[Person])
    assert [p.name for p in people] == ["Ada", "Ada"]
    with pytest.raises(CheckFailed) as info:
        assert_schema(json.dumps([ADA, {"name": "Bob"}]), list[Person])
    assert info.value.name == "schema(list[Person])"
    assert "$[1].age: Field required" in str(info.value)


def test_strict_fails_on_a_fence_with_a_lenient_hint_and_lenient_passes():
    fenced = f"Here you go:\n```json\n{ADA_JSON}\n```\n"
    with pytest.raises(CheckFailed) as info:
        assert_schema(fenced, Person)
    assert "would pass with lenient=True: the JSON is wrapped in a ```json code fence" in str(
        info.value)
    assert assert_schema(fenced, Person, lenient=True).name == "Ada"


def test_lenient_finds_json_in_prose():
    prose = f"Sure! The person is {ADA_JSON}. Let me know if you need more."
    with pytest.raises(CheckFailed, match="surrounded by prose"):
        assert_json(prose)
    assert assert_json(prose, lenient=True) == ADA
    assert assert_schema(prose, PERSON_SCHEMA, lenient=True) == ADA


def test_lenient_hint_says_when_the_embedded_json_would_still_fail():
    with pytest.raises(CheckFailed) as info:
        assert_schema('Result: {"name": "Ada"}', Person)
    message = str(info.value)
    assert "with lenient=True it would parse" in message
    assert "$.age: Field required" in message


def test_empty_and_non_json_outputs():
    for output, expected in (("", "the output is empty"), ("   \n", "the output is empty"),
                             ("hello", "not valid JSON"), ("{'a': 1}", "not valid JSON"),
                             ("NaN", "NaN is not valid JSON")):
        with pytest.raises(CheckFailed, match=expected):
            assert_json(output)
    with pytest.raises(CheckFailed, match="no JSON object or array found"):
        assert_json("just words", lenient=True)


def test_duplicated_keys_fail_where_a_parser_would_silently_pick_one():
    """pydantic and json.loads keep the last of two equal keys, other parsers the
    first: the app and the test could see different ages, so the check fails and
    says where the key repeats."""
    twice = '{"name": "Ada", "age": 36,\n "address": {"street": "x", "zip": 1}, "age": -1}'
    with pytest.raises(CheckFailed, match=r"duplicated key 'age' in one object at line 2 "
                                          r"column 40"):
        assert_schema(twice, Person)
    with pytest.raises(CheckFailed, match="duplicated key 'age'"):
        assert_json(f"```json\n{twice}\n```", lenient=True)


def test_strict_names_a_json_rule_broken_inside_prose():
    with pytest.raises(CheckFailed) as info:
        assert_json('Result: {"score": NaN}')
    assert "the JSON in the text is not valid either: NaN is not valid JSON" in str(info.value)
    assert "would pass with lenient=True" not in str(info.value)


def test_invalid_schemas_are_usage_errors():
    with pytest.raises(UsageError, match=r"invalid JSON Schema .* at \$\.type"):
        assert_schema("{}", {"type": "integr"})
    with pytest.raises(UsageError, match="not an instance"):
        assert_schema("{}", Person(**ADA))
    with pytest.raises(UsageError, match="TypeAdapter"):
        assert_schema("{}", object())
    with pytest.raises(UsageError, match="JSON-serializable"):
        assert_schema("{}", {"enum": {1, 2}})
    with pytest.raises(UsageError, match="cannot resolve a \\$ref"):
        assert_schema("{}", {"$ref": "https://example.com/remote.json"})


def test_schema_dialect_is_respected():
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#",
              "type": "array", "items": [{"type": "integer"}], "additionalItems": False}
    assert assert_schema("[1]", draft7) == [1]
    with pytest.raises(CheckFailed):
        assert_schema("[1, 2]", draft7)


def test_validators_are_compiled_once_per_schema():
    schema_module._compile_json_schema.cache_clear()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    for _ in range(5):
        assert_schema('{"n": 1}', schema)
    assert_schema('{"n": 1}', dict(schema))  # an equal copy hits the same entry
    info = schema_module._compile_json_schema.cache_info()
    assert (info.misses, info.hits) == (1, 5)
    schema["properties"]["n"]["type"] = "string"  # edited in place: recompiled, not stale
    with pytest.raises(CheckFailed):
        assert_schema('{"n": 1}', schema)
    assert schema_module.compile_schema(Person) is schema_module.compile_schema(Person)


def test_untitled_json_schema_names_are_short_and_stable():
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"}
                                               for i in range(20)}}
    with pytest.raises(CheckFailed) as info:
        assert_schema("[]", schema)
    assert info.value.name == 'schema({"properties":{"field_0":{"type":"string"},"f...)'


def test_many_violations_are_capped():
    data = [{"name": i} for i in range(200)]
    with pytest.raises(CheckFailed) as info:
        assert_schema(json.dumps(data), list[Person])
    message = str(info.value)
    assert "600 violations of list[Person] (first 50 listed)" in message
    assert "... and 550 more" in message


def test_huge_json_output_is_handled():
    big = [{"street": "x" * 50, "zip": i} for i in range(15_000)]
    text = json.dumps(big)
    assert len(text) > 1_000_000
    assert len(assert_schema(text, list[Address])) == 15_000
    assert assert_json("Answer: " + text + " end", lenient=True) == big
    with pytest.raises(CheckFailed):
        assert_json("[" * 1_000_000, lenient=True)


# --------------------------------------------------------------------------- property


class Item(BaseModel):
    sku: str = Field(min_length=1, max_length=12)
    quantity: int = Field(ge=0, le=10_000)
    price: float = Field(ge=0)


class Order(BaseModel):
    id: int
    status: Literal["new", "paid", "shipped"]
    note: str | None = None
    express: bool = False
    items: list[Item]
    address: Address
    attributes: dict[str, int] = {}


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
_items = st.builds(
    Item,
    sku=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=12),
    quantity=st.integers(0, 10_000),
    price=st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False),
)
_orders = st.builds(
    Order,
    id=st.integers(-(2**63), 2**63),
    status=st.sampled_from(["new", "paid", "shipped"]),
    note=st.none() | _text,
    express=st.booleans(),
    items=st.lists(_items, max_size=4),
    address=st.builds(Address, street=_text, zip=st.integers()),
    attributes=st.dictionaries(_text, st.integers(), max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=_orders)
def test_json_generated_from_a_model_always_passes_its_schema(order: Order):
    text = order.model_dump_json()
    assert assert_schema(text, Order) == order
    # ... and the model's own JSON Schema accepts the same JSON
    assert assert_schema(text, Order.model_json_schema()) == json.loads(text)
    fenced = f"```json\n{text}\n```"
    assert assert_schema(fenced, Order, lenient=True) == order
