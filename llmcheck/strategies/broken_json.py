"""Malformed *JSON* strategies, and the definition of malformed they guarantee.

"Malformed" is defined by :func:`strict_json_object`: the intended document is
one JSON object read by the library's one JSON reader
(:func:`llmcheck.model.jsontext.read_json`: strict RFC 8259, no
``NaN``/``Infinity``, no duplicated keys, at most :data:`MAX_JSON_DEPTH` levels),
as it is, with nothing around it; everything :func:`malformed_json` draws fails it.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import strategies as st

from llmcheck.model.jsontext import MAX_DEPTH, read_json
from llmcheck.strategies.text import _SAFE_ALPHABET

MAX_JSON_DEPTH = MAX_DEPTH
"""Deepest nesting :func:`strict_json_object` accepts: the one reader's limit."""


def strict_json_object(text: str) -> dict[str, Any]:
    """Parse ``text`` as the document an LLM feature expects: one JSON object read
    by :func:`llmcheck.model.jsontext.read_json` as it is (strict RFC 8259: no
    ``NaN``/``Infinity``, no comments, no trailing commas, no single quotes, unique
    keys, at most :data:`MAX_JSON_DEPTH` levels; no surrounding prose or fences).
    Raises ``ValueError`` saying where it broke; this is the definition of
    "malformed" that :func:`malformed_json` guarantees."""
    value = read_json(text).value
    if not isinstance(value, dict):
        raise ValueError(f"the top level is {type(value).__name__}, not a JSON object")
    return value


_KEY = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8)
_SCALAR = st.one_of(
    st.integers(-1000, 1000), st.booleans(), st.none(),
    st.text(alphabet=_SAFE_ALPHABET, max_size=12),
)
_JSON_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_KEY, inner, max_size=3)),
    max_leaves=6,
)
_OBJECT = st.dictionaries(_KEY, _JSON_VALUE, min_size=1, max_size=4)


def _truncated(obj: dict[str, Any], cut: int) -> str:
    text = json.dumps(obj)
    return text[: cut % len(text)]  # any proper prefix of an object is incomplete


def _trailing_comma(obj: dict[str, Any], compact: bool) -> str:
    text = json.dumps(obj, separators=(",", ":") if compact else None)
    return text[:-1] + ",}"


def _single_quoted(obj: dict[str, Any]) -> str:
    items = ", ".join(f"'{key}': {json.dumps(value)}" for key, value in obj.items())
    return "{" + items + "}"


def _unquoted_keys(obj: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{key}: {json.dumps(value)}" for key, value in obj.items()) + "}"


def _duplicated_key(obj: dict[str, Any], value: Any) -> str:
    key = next(iter(obj))
    return json.dumps(obj)[:-1] + f", {json.dumps(key)}: {json.dumps(value)}" + "}"


def _with_constant(obj: dict[str, Any], key: str, constant: str) -> str:
    return json.dumps(obj)[:-1] + f", {json.dumps(key + '_x')}: {constant}" + "}"


def _with_comment(obj: dict[str, Any], style: int) -> str:
    text = json.dumps(obj)
    if style == 0:
        return text[:-1] + " // a comment\n}"
    if style == 1:
        return "/* a comment */ " + text
    return "# a comment\n" + text


def _wrong_top_level(obj: dict[str, Any], kind: int) -> str:
    return [json.dumps([obj]), json.dumps(json.dumps(obj)), "null", "42", '"ok"', "[]"][kind]


def _nested(depth: int, array: bool) -> str:
    if array:
        return '{"a": ' + "[" * depth + "]" * depth + "}"
    return '{"a": ' * depth + "1" + "}" * depth


_BROKEN_JSON = (
    "",
    "{",
    '{"a": 1',
    '{"a": "unterminated}',
    '{"a": "line\nbreak"}',
    '{"a": True, "b": None}',
    '{"a": undefined}',
    '{"a": 0x1F}',
    '{"a": 01}',
    '{"a": .5}',
    '{"a": +1}',
    '{"a": 1}{"b": 2}',
    '```json\n{"a": 1}\n```',
    'Here is the JSON: {"a": 1}',
    '{"a": "\\x41"}',
)


def malformed_json() -> st.SearchStrategy[str]:
    """JSON text an LLM or upstream system sends instead of the expected object:
    truncated documents, trailing commas, single quotes, ``NaN``/``Infinity``,
    comments, unquoted keys, duplicated keys, the wrong top-level type, nesting
    deeper than :data:`MAX_JSON_DEPTH`, Python literals, fences and prose around it.

    Some of these parse with Python's lenient ``json.loads`` (``NaN``, duplicated
    keys, a top-level list): "malformed" means :func:`strict_json_object` rejects it."""
    return st.one_of(
        st.sampled_from(_BROKEN_JSON),
        st.builds(_truncated, _OBJECT, st.integers(0, 10_000)),
        st.builds(_trailing_comma, _OBJECT, st.booleans()),
        st.builds(_single_quoted, _OBJECT),
        st.builds(_unquoted_keys, _OBJECT),
        st.builds(_with_constant, _OBJECT, _KEY,
                  st.sampled_from(("NaN", "Infinity", "-Infinity"))),
        st.builds(_with_comment, _OBJECT, st.integers(0, 2)),
        st.builds(_duplicated_key, _OBJECT, _SCALAR),
        st.builds(_wrong_top_level, _OBJECT, st.integers(0, 5)),
        st.builds(_nested, st.integers(MAX_JSON_DEPTH + 1, 4 * MAX_JSON_DEPTH), st.booleans()),
    )

