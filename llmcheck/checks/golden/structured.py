"""Golden comparison of JSON (``method="json"``): structural equality with ignored
JSONPath-like paths and unordered lists; a failure lists the differing paths."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from llmcheck.checks.base import (
    MAX_LISTED,
    listing,
    short_repr,
)
from llmcheck.checks.golden.options import (
    GoldenOptions,
    pass_fail,
)
from llmcheck.checks.schema import NotJSON, load_json, render_path
from llmcheck.errors import UsageError

_PATH_TOKEN = re.compile(
    r"\.\.(?P<deep_key>[A-Za-z_][\w-]*|\*)"
    r"|\.(?P<key>[A-Za-z_][\w-]*|\*)"
    r"|\[(?P<index>\d+|\*)\]"
    r"|\[(?P<quoted>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]"
)


_ANY = object()


_DEEP = object()


def parse_json_path(path: str) -> tuple[Any, ...]:
    """``$.items[*].ts`` -> tokens; supports ``.key``, ``['key']``, ``[n]``, ``[*]``, ``.*``
    and ``..key`` (at any depth)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise UsageError(f"ignore_paths: {path!r} is not a JSON path; write e.g. '$.id', "
                         "'$.items[*].ts', \"$['a key']\" or '$..ts'")
    tokens: list[Any] = []
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if match is None:
            raise UsageError(f"ignore_paths: cannot parse {path!r} at char {pos} "
                             f"({path[pos:]!r}); accepted: .key, ['key'], [0], [*], .*, ..key")
        if match.group("deep_key") is not None:
            tokens.append(_DEEP)
            key = match.group("deep_key")
            tokens.append(_ANY if key == "*" else key)
        elif match.group("key") is not None:
            key = match.group("key")
            tokens.append(_ANY if key == "*" else key)
        elif match.group("index") is not None:
            index = match.group("index")
            tokens.append(_ANY if index == "*" else int(index))
        else:
            quoted = match.group("quoted")
            tokens.append(json.loads('"' + quoted[1:-1].replace('"', '\\"') + '"')
                          if quoted.startswith("'") else json.loads(quoted))
        pos = match.end()
    return tuple(tokens)


def _path_matches(tokens: tuple[Any, ...], path: tuple[Any, ...]) -> bool:
    if not tokens:
        return not path
    head = tokens[0]
    if head is _DEEP:
        return any(_path_matches(tokens[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    step = path[0]
    if head is _ANY:
        ok = True
    elif isinstance(head, int):
        ok = isinstance(step, int) and step == head
    else:
        ok = isinstance(step, str) and step == head
    return ok and _path_matches(tokens[1:], path[1:])


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class JsonComparer:
    """Structural JSON equality with ignored paths and optionally unordered lists."""

    def __init__(self, ignore_paths: Iterable[str] = (), unordered_lists: bool = False) -> None:
        self.patterns = [parse_json_path(p) for p in ignore_paths]
        self.unordered = unordered_lists

    def ignored(self, path: tuple[Any, ...]) -> bool:
        return any(_path_matches(p, path) for p in self.patterns)

    def canonical(self, value: Any, path: tuple[Any, ...] = ()) -> Any:
        """``value`` with ignored paths removed, integral floats as ints and (when
        unordered) lists sorted: equal canonical forms mean equal values."""
        if isinstance(value, dict):
            return {k: self.canonical(v, path + (k,)) for k, v in value.items()
                    if not (self.patterns and self.ignored(path + (k,)))}
        if isinstance(value, (list, tuple)):
            items = [None if (self.patterns and self.ignored(path + (i,)))
                     else self.canonical(v, path + (i,)) for i, v in enumerate(value)]
            if self.unordered:
                items.sort(key=_sort_key)
            return items
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def diff(self, expected: Any, actual: Any) -> list[str]:
        """Differences as ``path: expected X, got Y`` lines (empty when equal)."""
        out: list[str] = []
        self._diff(expected, actual, (), out)
        return out

    def _diff(self, exp: Any, act: Any, path: tuple[Any, ...], out: list[str]) -> None:
        if len(out) > MAX_LISTED or (self.patterns and self.ignored(path)):
            return
        where = render_path(path)
        if isinstance(exp, dict) and isinstance(act, dict):
            for key, value in exp.items():
                child = path + (key,)
                if key not in act:
                    if not (self.patterns and self.ignored(child)):
                        out.append(f"{render_path(child)}: missing (expected {_show(value)})")
                else:
                    self._diff(value, act[key], child, out)
            for key, value in act.items():
                child = path + (key,)
                if key not in exp and not (self.patterns and self.ignored(child)):
                    out.append(f"{render_path(child)}: unexpected key (got {_show(value)})")
            return
        if isinstance(exp, (list, tuple)) and isinstance(act, (list, tuple)):
            if self.unordered:
                self._diff_unordered(exp, act, path, out)
                return
            for i in range(min(len(exp), len(act))):
                self._diff(exp[i], act[i], path + (i,), out)
            for i in range(len(act), len(exp)):
                out.append(f"{render_path(path + (i,))}: missing (expected {_show(exp[i])})")
            for i in range(len(exp), len(act)):
                out.append(f"{render_path(path + (i,))}: unexpected item (got {_show(act[i])})")
            return
        if _kind(exp) != _kind(act):
            out.append(f"{where}: expected {_kind(exp)} {_show(exp)}, got {_kind(act)} "
                       f"{_show(act)}")
        elif not _scalar_equal(exp, act):
            out.append(f"{where}: expected {_show(exp)}, got {_show(act)}")

    def _diff_unordered(self, exp: Sequence[Any], act: Sequence[Any], path: tuple[Any, ...],
                        out: list[str]) -> None:
        def keyed(items: Sequence[Any]) -> Counter[str]:
            return Counter(_sort_key(self.canonical(v, path + (i,))) for i, v in enumerate(items))

        exp_keys, act_keys = keyed(exp), keyed(act)
        missing = list((exp_keys - act_keys).elements())
        extra = list((act_keys - exp_keys).elements())
        where = render_path(path)
        if missing:
            out.append(f"{where}: {len(missing)} item(s) missing (any order): "
                       + ", ".join(_cut(m) for m in missing[:5]))
        if extra:
            out.append(f"{where}: {len(extra)} unexpected item(s) (any order): "
                       + ", ".join(_cut(m) for m in extra[:5]))


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def golden_json(output: Any, expected: Any, threshold: float | None,
                 options: GoldenOptions) -> float:
    __tracebackhide__ = True
    ignore_paths: Iterable[str] = options.ignore_paths or ()
    unordered, lenient = bool(options.unordered_lists), bool(options.lenient)
    if isinstance(ignore_paths, str):
        ignore_paths = [ignore_paths]
    comparer = JsonComparer(list(ignore_paths), unordered)
    opts = []
    if unordered:
        opts.append("unordered_lists")
    if comparer.patterns:
        opts.append(f"ignore={short_repr(list(ignore_paths), 60)}")
    if lenient:
        opts.append("lenient")
    name = f"golden.json({', '.join(opts)})" if opts else "golden.json"
    try:
        # only text can fail to parse: other values are taken as parsed JSON
        reference = load_json(expected, lenient=False, check="assert_golden(json)").data
    except NotJSON as err:
        raise UsageError(f"assert_golden(json): expected is not JSON: {err.reason}") from None
    try:
        actual = load_json(output, lenient=lenient, check="assert_golden(json)").data
    except NotJSON as err:
        hint = ""
        if err.candidate is not None:
            hint = f"; lenient=True would parse it ({err.candidate.where()})"
        return pass_fail(name, False, err.reason + hint)
    differences = comparer.diff(reference, actual)
    if not differences:
        return pass_fail(name, True, None)
    count = len(differences)
    more = "+" if count > MAX_LISTED else ""
    return pass_fail(name, False, f"{count}{more} difference(s) from the expected JSON:\n"
                      f"{listing(differences)}")
