"""Structured output: ``assert_json`` and ``assert_schema``.

Models are asked for JSON and often wrap it in a code fence or a sentence.
Strict mode (the default) requires the output to be JSON as it is, because
the code under test usually parses it that way; ``lenient=True`` accepts JSON
inside a markdown code fence or surrounded by prose. When strict parsing
fails but lenient parsing would pass, the message says so.

Schemas may be a pydantic model class, any type a pydantic ``TypeAdapter``
accepts (``list[Person]``, ``dict[str, int]``, ``Literal[...]``) or a JSON
Schema dict. Compiled validators are cached, so a check run thousands of
times pays for schema compilation once (see ``benchmarks/checks.py``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError

from llmcheck.checks.base import (
    MAX_LISTED,
    conclude,
    excerpt,
    final_text,
    listing,
    short_repr,
    type_label,
)
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion
from llmcheck.model.jsontext import Found, JSONTextError, read_json
from llmcheck.redact import redact

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


# --------------------------------------------------------------------------- parsing JSON


@dataclass(frozen=True)
class Loaded:
    """JSON found in an output: the value, its text and where it was found."""

    data: Any
    text: str | None
    """The JSON text that was parsed (``None`` when an already-parsed value was given)."""
    source: str
    """``"as-is"``, ``"fence"``, ``"embedded"`` or ``"object"``."""
    start: int = 0

    def where(self) -> str:
        """How the JSON was wrapped, for messages."""
        if self.source == "fence":
            return "the JSON is wrapped in a ```json code fence"
        if self.source == "embedded":
            return f"the JSON is surrounded by prose (it starts at char {self.start:,})"
        return "the output is JSON as it is"

    @classmethod
    def of(cls, found: Found) -> Loaded:
        return cls(found.value, found.text, found.source, found.start)


class NotJSON(Exception):
    """The output holds no JSON (under the requested strictness)."""

    def __init__(self, reason: str, candidate: Loaded | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.candidate = candidate
        """What ``lenient=True`` would have parsed (set only in strict mode)."""


def _decode_error(text: str, exc: JSONTextError) -> str:
    if not text.strip():
        return "the output is empty"
    return f"not valid JSON ({exc.detail}) in {excerpt(text)}"


def load_json(output: Any, *, lenient: bool, check: str) -> Loaded:
    """Parse ``output`` (Completion, str, or an already-parsed value) as JSON.

    Text is read by :func:`llmcheck.model.jsontext.read_json`, the one reader
    of JSON in model output (strict RFC 8259: no NaN/Infinity, no duplicated
    keys, bounded nesting): bare in strict mode, ``wrapping="prose"`` with
    ``lenient``. Raises :class:`NotJSON`; in strict mode its ``candidate`` is
    what lenient parsing would have found, so the caller can hint at
    ``lenient=True``.
    """
    if isinstance(output, Completion):
        text = output.text
    elif isinstance(output, str):
        text = output
    elif final_text(output) is not None:  # an Episode: its final answer
        text = output.final_text
    elif isinstance(output, BaseModel):
        return Loaded(output.model_dump(mode="json"), None, "object")
    elif isinstance(output, (bytes, bytearray)):
        raise UsageError(f"{check}: output must be a Completion, a str or a parsed JSON value, "
                         "got bytes (decode it first)")
    else:
        return Loaded(output, None, "object")
    try:
        return Loaded.of(read_json(text))
    except JSONTextError as exc:
        bare_error = exc
    reason = _decode_error(text, bare_error)
    candidate: Loaded | None = None
    if text.strip() and not bare_error.broke_rule:
        try:
            found = read_json(text, wrapping="prose")
        except JSONTextError as exc:
            if exc.broke_rule:  # JSON-shaped, but it breaks a rule (NaN, a key twice)
                reason += f"; the JSON in the text is not valid either: {exc.detail}"
                if lenient:
                    raise NotJSON(reason) from None
        else:
            candidate = Loaded.of(found)
    if lenient:
        if candidate is None:
            if bare_error.broke_rule:
                raise NotJSON(reason)
            raise NotJSON(f"{reason}; no JSON object or array found in a code fence or in "
                          "the text either")
        return candidate
    raise NotJSON(reason, candidate)


# --------------------------------------------------------------------------- JSON paths


def render_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """``('address', 'zip')`` -> ``$.address.zip``; ``(0, 'a b')`` -> ``$[0]['a b']``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out.append(f"[{part}]")
        elif isinstance(part, str) and _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            out.append(f"[{json.dumps(str(part), ensure_ascii=False)}]")
    return "".join(out)


# --------------------------------------------------------------------------- compiling schemas


@dataclass(frozen=True)
class CompiledSchema:
    """A schema ready to validate: a pydantic TypeAdapter or a jsonschema validator."""

    label: str
    adapter: TypeAdapter[Any] | None = None
    validator: Any = None

    def validate(self, loaded: Loaded) -> tuple[Any, list[str]]:
        """Validate; returns (validated value, violations as ``path: message`` lines)."""
        if self.adapter is not None:
            return self._validate_pydantic(loaded)
        return self._validate_jsonschema(loaded.data)

    def _validate_pydantic(self, loaded: Loaded) -> tuple[Any, list[str]]:
        assert self.adapter is not None
        try:
            if loaded.text is not None:
                try:
                    return self.adapter.validate_json(loaded.text), []
                except ValidationError as exc:
                    if not any(e["type"] == "json_invalid" for e in exc.errors()):
                        raise
                # pydantic's JSON parser refused what Python's accepted: use the parsed value
            return self.adapter.validate_python(loaded.data), []
        except ValidationError as exc:
            return None, [_pydantic_line(e) for e in exc.errors(include_url=False)]

    def _validate_jsonschema(self, data: Any) -> tuple[Any, list[str]]:
        from referencing.exceptions import Unresolvable

        try:
            errors = list(self.validator.iter_errors(data))
        except Unresolvable as exc:
            raise UsageError(
                f"schema {self.label}: cannot resolve a $ref ({exc}); checks never fetch "
                "remote schemas, so put referenced schemas under $defs"
            ) from None
        if not errors:
            return data, []
        errors.sort(key=lambda e: (e.json_path, e.message))
        return None, [_jsonschema_line(e) for e in errors]


def _pydantic_line(error: Mapping[str, Any]) -> str:
    line = f"{render_path(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}"
    if error.get("type") != "missing" and "input" in error:
        line += f" (got {short_repr(error['input'], 60)})"
    return line


def _jsonschema_line(error: Any) -> str:
    message = error.message
    if len(message) > 200:
        message = redact(message)[:197] + "..."
    line = f"{error.json_path}: {message}"
    if error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        if best is not None:
            line += f" (closest: {best.json_path}: {short_repr(best.message, 120)[1:-1]})"
    return line


_ADAPTERS: dict[Any, CompiledSchema] = {}
_MAX_ADAPTERS = 512


def _compile_type(tp: Any) -> CompiledSchema:
    try:
        cached = _ADAPTERS.get(tp)
    except TypeError:  # unhashable annotation: build it every time
        cached = None
        hashable = False
    else:
        hashable = True
    if cached is not None:
        return cached
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(tp)
    except Exception as exc:
        raise UsageError(
            f"schema must be a pydantic model class, a type pydantic's TypeAdapter accepts "
            f"(e.g. list[Person]) or a JSON Schema dict; got {short_repr(tp)} ({exc})"
        ) from None
    compiled = CompiledSchema(label=type_label(tp), adapter=adapter)
    if hashable:
        if len(_ADAPTERS) >= _MAX_ADAPTERS:
            _ADAPTERS.clear()
        _ADAPTERS[tp] = compiled
    return compiled


@functools.lru_cache(maxsize=256)
def _compile_json_schema(key: str) -> CompiledSchema:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    schema = json.loads(key)
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise UsageError(
            f"invalid JSON Schema ({cls.__name__}) at {exc.json_path}: {exc.message}"
        ) from None
    title = schema.get("title") if isinstance(schema, dict) else None
    if isinstance(title, str) and title.strip():
        label = title.strip()[:48]
    else:
        compact = json.dumps(schema, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        label = compact if len(compact) <= 48 else compact[:45] + "..."
    return CompiledSchema(label=label,
                          validator=cls(schema, format_checker=cls.FORMAT_CHECKER))


def compile_schema(schema: Any) -> CompiledSchema:
    """Compile (or fetch from the cache) a validator for ``schema``.

    JSON Schemas are cached by their canonical JSON text (so an edited dict is
    recompiled), types by identity. Raises :class:`UsageError` for an invalid
    schema.
    """
    if isinstance(schema, (Mapping, bool)):
        try:
            key = json.dumps(schema, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"a JSON Schema must be JSON-serializable: {exc}") from None
        return _compile_json_schema(key)
    if isinstance(schema, BaseModel):
        raise UsageError(f"schema must be a model class, not an instance: got {short_repr(schema)}"
                         f"; pass {type(schema).__name__}")
    if isinstance(schema, str):
        raise UsageError(f"schema must be a pydantic model class, a type or a JSON Schema dict; "
                         f"got the string {short_repr(schema)} (parse JSON Schema text first)")
    return _compile_type(schema)


# --------------------------------------------------------------------------- the checks


def _not_json_message(err: NotJSON, compiled: CompiledSchema | None) -> str:
    message = err.reason
    candidate = err.candidate
    if candidate is None:
        return message
    if compiled is None:
        return f"{message}; would pass with lenient=True: {candidate.where()}"
    _, violations = compiled.validate(candidate)
    if not violations:
        return f"{message}; would pass with lenient=True: {candidate.where()}"
    return (f"{message}; with lenient=True it would parse ({candidate.where()}) but still "
            f"fail the schema with {len(violations)} violation(s):\n{listing(violations)}")


def assert_json(output: Any, *, lenient: bool = False) -> Any:
    """Check that the output is JSON and return the parsed value.

    Strict by default: the whole output (surrounding whitespace aside) must be
    JSON. ``lenient=True`` also accepts JSON in a markdown code fence or the
    first ``{...}``/``[...]`` in surrounding prose that is valid JSON. Either
    way the JSON is read by the one reader of model output
    (:mod:`llmcheck.model.jsontext`): ``NaN``, ``Infinity`` and duplicated keys
    are rejected, and the message says where the text broke. Recorded as
    ``json`` or ``json(lenient=True)``.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    name = "json(lenient=True)" if lenient else "json"
    try:
        loaded = load_json(output, lenient=lenient, check="assert_json")
    except NotJSON as err:
        conclude(name, False, _not_json_message(err, None))
        return None
    conclude(name, True, value=loaded.source)
    return loaded.data


ModelT = TypeVar("ModelT", bound=BaseModel)
"""A pydantic model class in, an instance of it out: how type checkers see assert_schema."""


@overload
def assert_schema(output: Any, schema: type[ModelT], *, lenient: bool = False) -> ModelT: ...
@overload
def assert_schema(output: Any, schema: Any, *, lenient: bool = False) -> Any: ...


def assert_schema(output: Any, schema: Any, *, lenient: bool = False) -> Any:
    """Check that the output is JSON matching ``schema`` and return the validated value.

    ``schema``: a pydantic model class (returns the model instance), a type
    pydantic's ``TypeAdapter`` accepts (returns the validated value, e.g. a
    list of models) or a JSON Schema dict (returns the parsed JSON). JSON
    Schemas are checked first (an invalid one is a :class:`UsageError`), use
    Draft 2020-12 unless ``$schema`` names another draft, and check
    ``format``. ``output`` may be a Completion, a str (JSON text; see
    :func:`assert_json` for ``lenient``) or an already-parsed value.

    The failure message lists every violation with its JSON path
    (``$.address.zip: 'abc' is not of type 'integer'``), up to 50 of them.
    Recorded as ``schema(Person)`` (the JSON Schema's ``title``, or its
    compact text cut to 48 chars), ``value`` = the number of violations.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    compiled = compile_schema(schema)
    name = f"schema({compiled.label}, lenient=True)" if lenient else f"schema({compiled.label})"
    try:
        loaded = load_json(output, lenient=lenient, check="assert_schema")
    except NotJSON as err:
        conclude(name, False, _not_json_message(err, compiled))
        return None
    value, violations = compiled.validate(loaded)
    if violations:
        count = len(violations)
        head = f"{count} violation{'s' if count != 1 else ''} of {compiled.label}"
        if count > MAX_LISTED:
            head += f" (first {MAX_LISTED} listed)"
        shown = loaded.text if loaded.text is not None else json.dumps(loaded.data, default=str)
        conclude(name, False, f"{head} in {excerpt(shown, 120)}:\n{listing(violations)}", count)
        return None
    conclude(name, True, value=0)
    return value
