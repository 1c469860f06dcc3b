"""Scenario files: reading a scenario from YAML, JSON or a mapping, and saying where
it is wrong.

The format itself (routes, answer variants, latency, error rates, scripted faults) is
described and validated in :mod:`llmcheck.simulator.schema`, whose models are importable
from here too. Loading errors raise :class:`llmcheck.errors.UsageError` naming the file,
the field path (``routes[2].answers[0].weight``) and, for YAML, the line; nothing else
escapes, so the plugin and ``llmcheck serve`` can show the message as it is.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError

from llmcheck.errors import UsageError
from llmcheck.files import YAMLDocumentError, yaml_document
from llmcheck.simulator.schema import (
    FAULT_KINDS,
    LEGACY_FAULT_KINDS,
    DefaultRoute,
    ErrorRates,
    Fault,
    FaultKind,
    Latency,
    Route,
    Scenario,
    ToolCall,
    Variant,
    canonical_fault_kind,
)


def load_scenario(source: str | Path | Mapping[str, Any] | Scenario | None = None) -> Scenario:
    """Load a scenario from a YAML/JSON file path, a mapping, or pass a Scenario through.

    ``None`` gives the shipped default (:func:`default_scenario`). Raises
    :class:`UsageError` naming the file, field path and line of anything invalid: a
    missing or unreadable file, a directory, text that is not UTF-8, YAML or JSON that
    does not parse or is nested too deeply, anything but a mapping at the top level, or
    a value the scenario does not accept. Nothing else escapes, so a caller (the pytest
    plugin at configure time, ``llmcheck serve``) can report the message as it is.
    """
    if source is None:
        return default_scenario()
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return _validate(dict(source), "<scenario dict>", None)
    if isinstance(source, (str, Path)):
        path = Path(source)
        fmt = "json" if path.suffix.lower() == ".json" else "yaml"
        return parse_scenario(_read_text(path), str(path), fmt=fmt)
    raise UsageError(
        f"scenario must be a file path, a mapping or a Scenario, got {type(source).__name__}"
    )


def _read_text(path: Path) -> str:
    """The text of a scenario file; a UsageError for a file that cannot be read or is not
    UTF-8 (a BOM is allowed)."""
    from llmcheck.files import NotUTF8, read_utf8

    try:
        return read_utf8(path)
    except OSError as exc:
        raise UsageError(
            f"cannot read scenario file {str(path)!r}: {exc.strerror or exc}") from None
    except NotUTF8 as exc:
        raise UsageError(
            f"{path}:{exc.line}: scenario file is not UTF-8 text (byte 0x{exc.byte:02x}); "
            "a scenario is a YAML or JSON file saved as UTF-8") from None


def parse_scenario(text: str, source: str = "<string>", fmt: str = "yaml") -> Scenario:
    """Parse scenario text (``fmt`` is ``yaml`` or ``json``); ``source`` names it in errors."""
    node: yaml.Node | None = None
    if fmt == "json":
        data = _json_document(text, source)
    elif fmt == "yaml":
        try:
            data, node = yaml_document(text)
        except YAMLDocumentError as exc:
            where = f"{source}:{exc.line}" if exc.line is not None else source
            raise UsageError(f"{where}: invalid YAML in scenario file: {exc}") from None
    else:
        raise UsageError(f"unknown scenario format {fmt!r}; use 'yaml' or 'json'")
    if not isinstance(data, dict):
        raise UsageError(
            f"{source}: a scenario must be a mapping at the top level, got {type(data).__name__}"
        )
    return _validate(data, source, node)


def _json_document(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source}:{exc.lineno}: invalid JSON in scenario file: {exc.msg}") from None
    except RecursionError:
        raise UsageError(f"{source}: invalid JSON in scenario file: nested too deeply "
                         "(a scenario is a few levels deep)") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise UsageError(f"{source}: invalid JSON in scenario file: {exc}") from None


@lru_cache(maxsize=1)
def default_scenario() -> Scenario:
    """The scenario shipped as ``llmcheck/simulator/default.yaml`` (parsed once)."""
    resource = resources.files("llmcheck.simulator").joinpath("default.yaml")
    return parse_scenario(resource.read_text(encoding="utf-8"), "llmcheck/simulator/default.yaml")


def _validate(data: dict[str, Any], source: str, node: yaml.Node | None) -> Scenario:
    bad_text = _lone_surrogate(data)
    if bad_text is not None:
        loc, text = bad_text
        line = _line_of(node, loc)
        suffix = f" (line {line})" if line is not None else ""
        raise UsageError(f"invalid scenario {source}:\n  {format_loc(loc) or '<top level>'}: "
                         f"{text!r} is not valid Unicode text (a lone surrogate){suffix}")
    try:
        scenario = Scenario.model_validate(data)
        scenario.model_dump_json()  # what the server fingerprints: pydantic caps its depth
        return scenario
    except (RecursionError, PydanticSerializationError):
        raise UsageError(f"invalid scenario {source}: nested too deeply") from None
    except ValidationError as exc:
        lines = [f"invalid scenario {source}:"]
        for err in exc.errors(include_url=False):
            loc = _as_written(data, tuple(err["loc"]))
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = _allowed_keys(loc[:-1])
                message = "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
            line = _line_of(node, loc)
            suffix = f" (line {line})" if line is not None else ""
            lines.append(f"  {format_loc(loc) or '<top level>'}: {message}{suffix}")
        raise UsageError("\n".join(lines)) from None


def _as_written(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """``loc`` naming a key by its old name when the file used it (``errors.malformed``,
    not ``errors.stream_cut``), so the message and its line point at what was written."""
    if not loc or loc[-1] not in LEGACY_FAULT_KINDS.values():
        return loc
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return loc
    if isinstance(parent, Mapping) and loc[-1] not in parent:
        for old, new in LEGACY_FAULT_KINDS.items():
            if new == loc[-1] and old in parent:
                return (*loc[:-1], old)
    return loc


def _lone_surrogate(data: Any) -> tuple[tuple[Any, ...], str] | None:
    """The location and text of the first string (value or key) in ``data`` that holds
    a lone surrogate (``"\\ud800"`` in JSON or YAML): it cannot be sent as UTF-8."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    seen: set[int] = set()
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return loc, value
        elif isinstance(value, (dict, list, tuple, set, frozenset)) and id(value) not in seen:
            seen.add(id(value))  # YAML aliases may share (or nest) a container
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in reversed(list(items)):
                if isinstance(key, str) and _SURROGATE.search(key):
                    return loc, key
                stack.append(((*loc, key), item))
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def format_loc(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as ``routes[2].answers[0].weight``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The field names accepted at ``loc`` (for 'unknown key' messages)."""
    model: type[BaseModel] | None = Scenario
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field is not None else None
    return sorted(model.model_fields) if model is not None else []


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (the deepest one that exists)."""
    line = None
    for part in loc:
        if node is None:
            break
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    line = key.start_mark.line + 1
                    nxt = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                nxt = node.value[part]
                line = nxt.start_mark.line + 1
        node = nxt
    return line


__all__ = [
    "FAULT_KINDS",
    "LEGACY_FAULT_KINDS",
    "DefaultRoute",
    "ErrorRates",
    "Fault",
    "FaultKind",
    "Latency",
    "Route",
    "Scenario",
    "ToolCall",
    "Variant",
    "canonical_fault_kind",
    "default_scenario",
    "format_loc",
    "load_scenario",
    "parse_scenario",
    "yaml_document",
    "YAMLDocumentError",
]
