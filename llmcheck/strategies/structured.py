"""Near-miss structured values: :func:`violating` draws plain values that miss a
pydantic model or a JSON Schema by exactly one thing (a wrong type, a missing
required field, an extra field, a value out of range), so a test sees the inputs
that almost pass validation."""

from __future__ import annotations

import json
import math
import string
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import strategies as st

from llmcheck.errors import UsageError

# --------------------------------------------------------------------------- #
# Near-miss structured values
# --------------------------------------------------------------------------- #

VIOLATION_KINDS = ("wrong_type", "missing_required", "extra_field", "out_of_range")
"""The near misses :func:`violating` draws, simplest first."""


class _Target:
    """A pydantic model class or JSON Schema dict: its JSON Schema and a validity test."""

    def __init__(self, model_or_schema: Any) -> None:
        from pydantic import BaseModel

        if isinstance(model_or_schema, type) and issubclass(model_or_schema, BaseModel):
            from pydantic import ValidationError

            model = model_or_schema
            self.schema: dict[str, Any] = model.model_json_schema()
            self.name = model.__name__

            def is_valid(value: Any) -> bool:
                try:
                    model.model_validate(value)
                except ValidationError:
                    return False
                return True

        elif isinstance(model_or_schema, dict):
            import jsonschema

            self.schema = model_or_schema
            self.name = "schema"
            cls = jsonschema.validators.validator_for(model_or_schema)
            try:
                cls.check_schema(model_or_schema)
            except jsonschema.SchemaError as exc:
                raise UsageError(f"violating(): not a valid JSON Schema: {exc.message}") from exc
            validator = cls(model_or_schema, format_checker=cls.FORMAT_CHECKER)

            def is_valid(value: Any) -> bool:
                return validator.is_valid(value)

        else:
            raise UsageError("violating() takes a pydantic model class or a JSON Schema dict, "
                             f"not {type(model_or_schema).__name__}")
        self.is_valid: Callable[[Any], bool] = is_valid

    def resolve(self, schema: Any) -> dict[str, Any]:
        """Follow local ``$ref``s and unwrap single-element ``allOf``."""
        for _ in range(32):
            if not isinstance(schema, dict):
                return {}
            ref = schema.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                node: Any = self.schema
                for part in ref[2:].split("/"):
                    node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
                extra = {k: v for k, v in schema.items() if k != "$ref"}
                schema = {**node, **extra}
                continue
            all_of = schema.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1:
                schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **all_of[0]}
                continue
            return schema
        return {}


_FORMATS = {
    "date-time": st.sampled_from(["2024-01-31T12:00:00Z", "1999-12-31T23:59:59+01:00"]),
    "date": st.sampled_from(["2024-01-31", "1970-01-01"]),
    "time": st.sampled_from(["12:00:00Z", "23:59:59+00:00"]),
    "email": st.sampled_from(["ada@example.com", "bob.smith@example.org"]),
    "uri": st.sampled_from(["https://example.com/", "https://example.org/a?b=1"]),
    "uuid": st.uuids().map(str),
}


def _schema_type(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None and ("properties" in schema or "required" in schema):
        return "object"
    return kind


def _valid(target: _Target, raw: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """A strategy for values valid under ``raw`` (a common subset of JSON Schema)."""
    schema = target.resolve(raw)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return st.one_of([_valid(target, branch, depth) for branch in schema[key]])
    kind = _schema_type(schema)
    if kind == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        low = schema.get("minLength", 0)
        return st.text(alphabet=string.ascii_letters + string.digits + " ",
                       min_size=low, max_size=schema.get("maxLength", low + 12))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        low = low if low is not None else (high - 100 if high is not None else -100)
        high = high if high is not None else low + 200
        return st.floats(low, high, allow_nan=False, allow_infinity=False,
                         exclude_min="exclusiveMinimum" in schema and "minimum" not in schema,
                         exclude_max="exclusiveMaximum" in schema and "maximum" not in schema)
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = math.floor(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema:
            high = math.ceil(schema["exclusiveMaximum"]) - 1
        low = math.ceil(low) if low is not None else (high - 100 if high is not None else -100)
        high = math.floor(high) if high is not None else low + 200
        return st.integers(low, high)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", low + 3)
        if depth > 4:
            high = low
        return st.lists(_valid(target, schema.get("items", {}), depth + 1),
                        min_size=low, max_size=high)
    if kind == "object":
        properties = schema.get("properties", {})
        required = [name for name in schema.get("required", []) if name in properties]
        optional = {} if depth > 4 else {
            name: _valid(target, sub, depth + 1)
            for name, sub in properties.items() if name not in required}
        return st.fixed_dictionaries(
            {name: _valid(target, properties[name], depth + 1) for name in required},
            optional=optional)
    return st.none()


class _Mutation:
    """One near miss: apply ``kind`` at ``path`` (a tuple of keys) of a valid value."""

    def __init__(self, kind: str, path: tuple[Any, ...], schema: dict[str, Any],
                 name: str | None = None,
                 filler: st.SearchStrategy[Any] | None = None) -> None:
        self.kind, self.path, self.schema, self.name = kind, path, schema, name
        self.filler = filler if filler is not None else st.none()
        """Valid items to make an array too long or too short with."""

    def __repr__(self) -> str:
        where = "/".join(map(str, self.path + ((self.name,) if self.name else ())))
        return f"<{self.kind} at /{where}>"


def _mutations(target: _Target, raw: Any, path: tuple[Any, ...] = (),
               depth: int = 0) -> list[_Mutation]:
    """The near misses available in the object schemas reachable from ``raw``
    through required properties (so that the mutated place always exists)."""
    schema = target.resolve(raw)
    if _schema_type(schema) != "object" or depth > 4:
        return []
    properties = schema.get("properties", {})
    required = [name for name in schema.get("required", []) if name in properties]
    found: list[_Mutation] = []
    for name in required:
        sub = target.resolve(properties[name])
        found.append(_Mutation("wrong_type", path, sub, name))
        found.append(_Mutation("missing_required", path, sub, name))
        if _out_of_range_values(sub):
            found.append(_Mutation("out_of_range", path, sub, name,
                                   _valid(target, sub.get("items", {}), depth + 1)))
    if schema.get("additionalProperties") is False:
        found.append(_Mutation("extra_field", path, schema))
    for name in required:
        found.extend(_mutations(target, properties[name], (*path, name), depth + 1))
    return found


def _out_of_range_values(schema: dict[str, Any], filler: Any = None
                         ) -> list[Callable[[int], Any]]:
    """Functions of an offset (>= 1) giving values just outside the bounds of ``schema``
    (arrays are made of ``filler``, a valid item)."""
    out: list[Callable[[int], Any]] = []
    if "enum" in schema or "const" in schema:
        allowed = schema.get("enum", [schema.get("const")])
        strings = [v for v in allowed if isinstance(v, str)]
        if strings or not allowed:
            base = strings[0] if strings else "value"
            out.append(lambda k, base=base: base + "_" * k)
        else:
            numbers = [v for v in allowed if isinstance(v, (int, float)) and
                       not isinstance(v, bool)]
            top = max(numbers) if numbers else 0
            out.append(lambda k, top=top: top + k)
        return out
    if "minimum" in schema:
        out.append(lambda k, m=schema["minimum"]: m - k)
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        out.append(lambda k, m=schema["exclusiveMinimum"]: m - (k - 1))
    if "maximum" in schema:
        out.append(lambda k, m=schema["maximum"]: m + k)
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        out.append(lambda k, m=schema["exclusiveMaximum"]: m + (k - 1))
    if schema.get("minLength", 0) > 0:
        out.append(lambda k, m=schema["minLength"]: "x" * max(0, m - k))
    if "maxLength" in schema:
        out.append(lambda k, m=schema["maxLength"]: "x" * (m + k))
    if schema.get("minItems", 0) > 0:
        out.append(lambda k, m=schema["minItems"]: [filler] * max(0, m - k))
    if "maxItems" in schema:
        out.append(lambda k, m=schema["maxItems"]: [filler] * (m + k))
    return out


_WRONG_TYPES: dict[type, tuple[Any, ...]] = {
    str: (12345, None, ["text"], {}),
    bool: ("maybe", 2, None, []),
    int: ("not a number", 1.5, None, []),
    float: ("not a number", None, []),
    list: ("not a list", 1, {}),
    dict: ("not an object", 1, []),
    type(None): ("not null", 1, []),
}
_ANY_WRONG = ("not a number", 12345, 1.5, None, [], {}, True)


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _same_kind(a: Any, b: Any) -> bool:
    def kind(v: Any) -> str:
        if isinstance(v, bool):
            return "bool"
        return "number" if isinstance(v, (int, float)) else type(v).__name__
    return kind(a) == kind(b)


def _apply(target: _Target, base: Any, mutation: _Mutation, offset: int, pick: int,
           filler: Any) -> Any:
    """``base`` (valid) with ``mutation`` applied; among several ways, the first that
    makes the whole value invalid, starting at ``pick``."""
    import copy

    def attempt(change: Callable[[dict[str, Any]], None]) -> Any:
        value = copy.deepcopy(base)
        change(_at(value, mutation.path))
        return value

    name = mutation.name
    if mutation.kind == "missing_required":
        return attempt(lambda obj: obj.pop(name, None))
    if mutation.kind == "extra_field":
        properties = mutation.schema.get("properties", {})
        extra = "unexpected_field"
        while extra in properties:
            extra += "_"
        return attempt(lambda obj: obj.__setitem__(extra, ("surprise", 1, None)[pick % 3]))
    if mutation.kind == "wrong_type":
        current = _at(base, mutation.path).get(name)
        candidates = tuple(c for c in _WRONG_TYPES.get(type(current), ()) + _ANY_WRONG
                           if not _same_kind(c, current))
    else:
        candidates = tuple(make(offset)
                           for make in _out_of_range_values(mutation.schema, filler))
    candidates = candidates[pick % len(candidates):] + candidates[:pick % len(candidates)]
    value = base
    for candidate in candidates:
        value = attempt(lambda obj, c=candidate: obj.__setitem__(name, c))
        if not target.is_valid(value):
            return value
    return value  # only reachable for schemas this module cannot reason about


def violating(model_or_schema: Any, kinds: Iterable[str] | None = None) -> st.SearchStrategy[Any]:
    """Plain Python values (dicts) that violate a pydantic model class or a JSON Schema
    dict as a *near miss* of a valid instance: one field of the wrong type, one
    required field missing, one extra field (when the schema has
    ``additionalProperties: false`` or the model forbids extras), or one value out
    of range (``minimum``/``maximum``, exclusive bounds, ``minLength``/``maxLength``,
    ``minItems``/``maxItems``, ``enum``/``const``, pydantic's ``Field(ge=...)``,
    ``Literal``...). Nested required objects are mutated too.

    ``kinds`` restricts the near misses to some of :data:`VIOLATION_KINDS`. Violations
    are constructed directly from the schema; each value is then checked with
    ``model.model_validate`` (or a ``jsonschema`` validator with format checking),
    and a value that is still valid (a schema feature this module does not model)
    is filtered out as a last resort.
    """
    target = _Target(model_or_schema)
    wanted = tuple(VIOLATION_KINDS if kinds is None else kinds)
    unknown = set(wanted) - set(VIOLATION_KINDS)
    if unknown:
        raise UsageError(f"violating(): unknown kinds {sorted(unknown)}; "
                         f"choose from {', '.join(VIOLATION_KINDS)}")
    if _schema_type(target.resolve(target.schema)) != "object":
        raise UsageError("violating() needs a schema whose top level is an object")
    mutations = [m for m in _mutations(target, target.schema) if m.kind in wanted]
    mutations.sort(key=lambda m: (wanted.index(m.kind), len(m.path)))
    if not mutations:
        raise UsageError(f"violating(): {target.name} allows no near miss of kinds "
                         f"{', '.join(wanted)} (no required fields, no bounds, extras allowed)")
    return st.builds(
        lambda base, mutation, offset, pick: _apply(target, base, mutation[0], offset, pick,
                                                    mutation[1]),
        _valid(target, target.schema),
        st.sampled_from(mutations).flatmap(lambda m: st.tuples(st.just(m), m.filler)),
        st.integers(1, 100),
        st.integers(0, 10),
    ).filter(lambda value: not target.is_valid(value))


def violating_json(model_or_schema: Any, kinds: Iterable[str] | None = None
                   ) -> st.SearchStrategy[str]:
    """:func:`violating` as JSON text (valid JSON, invalid under the schema)."""
    return violating(model_or_schema, kinds).map(json.dumps)

