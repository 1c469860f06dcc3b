"""Golden datasets: load test cases from YAML, JSON, JSONL or CSV.

``@pytest.mark.parametrize("case", llmcheck.cases("suites/x.yaml"))`` makes
each case its own test item (with the case's name as its id), so a report
shows which cases a model gets wrong. Cases are validated when the file is
loaded, and every error names the file, the case and the field.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmcheck.checks.base import short_repr
from llmcheck.errors import UsageError

FIELDS = ("name", "input", "expected", "tags", "metadata", "xfail")
SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".csv")


class Case(BaseModel):
    """One golden case: a named input and (optionally) its expected answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """Unique within its file; the pytest id of the case."""
    input: Any
    """What the test sends to the model: a string, a dict of fields, a list of messages..."""
    expected: Any = None
    """The golden answer, if the case has one."""
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Anything else the test wants to know about the case."""
    xfail: str | None = None
    """Why the model is known to get this case wrong: :func:`cases` marks it
    ``xfail`` with this reason, so the report keeps showing its pass rate."""

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> Any:
        if isinstance(value, str):  # "smoke, slow" (CSV cells, short YAML)
            return tuple(t.strip() for t in value.replace(";", ",").split(",") if t.strip())
        return value

    def __str__(self) -> str:
        return self.name


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _caller_dir(frame: FrameType | None) -> Path | None:
    if frame is None:
        return None
    filename = frame.f_globals.get("__file__") or frame.f_code.co_filename
    if not filename or filename.startswith("<"):
        return None
    return Path(filename).resolve().parent


def resolve_path(path: str | os.PathLike[str], caller: FrameType | None) -> Path:
    """An absolute path as is; a relative one first next to the calling file, then
    in the current directory. Raises UsageError listing the places tried. Whatever
    exists there is taken (a folder or a FIFO is refused when read, saying what it is)."""
    given = Path(path)
    if given.is_absolute():
        if given.exists():
            return given
        raise UsageError(f"cases(): no such file: {given}")
    tried = []
    base = _caller_dir(caller)
    if base is not None:
        candidate = base / given
        if candidate.exists():
            return candidate
        tried.append(str(candidate))
    candidate = Path.cwd() / given
    if candidate.exists():
        return candidate
    tried.append(str(candidate))
    raise UsageError(f"cases(): no such file {str(path)!r}; looked in " + " and ".join(tried))


def _yaml_records(text: str, where: str) -> list[tuple[Any, int | None]]:
    import yaml

    from llmcheck.files import YAMLDocumentError, yaml_document

    try:
        data, node = yaml_document(text)
    except YAMLDocumentError as exc:
        at = f" at line {exc.line}" if exc.line is not None else ""
        raise UsageError(f"{where}: not valid YAML ({exc}{at})") from None
    items_node = node
    if isinstance(data, dict) and "cases" in data and node is not None:
        data = data["cases"]
        items_node = next((v for k, v in node.value if k.value == "cases"), None)
    lines: list[int | None] = []
    if isinstance(items_node, yaml.SequenceNode):
        lines = [child.start_mark.line + 1 for child in items_node.value]
    return _records(data, where, lines)


def _records(data: Any, where: str, lines: list[int | None]) -> list[tuple[Any, int | None]]:
    if data is None:
        raise UsageError(f"{where}: the file holds no cases")
    if not isinstance(data, list):
        raise UsageError(f"{where}: expected a list of cases (or a mapping with a 'cases' list), "
                         f"got {type(data).__name__}")
    return [(item, lines[i] if i < len(lines) else None) for i, item in enumerate(data)]


def _json_records(text: str, where: str) -> list[tuple[Any, int | None]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column "
                         f"{exc.colno})") from None
    except (RecursionError, ValueError) as exc:
        raise UsageError(f"{where}: not valid JSON ({_json_problem(exc)})") from None
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    return _records(data, where, [])


def _jsonl_records(text: str, where: str) -> list[tuple[Any, int | None]]:
    records = []
    # split at "\n" only: a JSON string may hold U+2028 and other characters that
    # str.splitlines() would break a line at
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append((json.loads(line), number))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: line {number}: not valid JSON ({exc.msg} at column "
                             f"{exc.colno})") from None
        except (RecursionError, ValueError) as exc:
            raise UsageError(f"{where}: line {number}: not valid JSON "
                             f"({_json_problem(exc)})") from None
    return records


def _json_problem(exc: Exception) -> str:
    """What json.loads objected to, beyond a syntax error."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)  # an integer of more than 4300 digits


def _csv_records(text: str, where: str) -> list[tuple[Any, int | None]]:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    records = []
    start = 1
    try:
        if reader.fieldnames is None:
            raise UsageError(f"{where}: the file holds no cases")
        start = reader.line_num + 1
        for row in reader:
            records.append((_csv_record(row, where, start), start))
            start = reader.line_num + 1
    except csv.Error as exc:
        if str(exc) == "unexpected end of data":  # a quoted cell never closed
            line = _open_quote_line(text, start)
            raise UsageError(f"{where}: line {line}: a quoted cell starts here and is never "
                             'closed (a " inside a quoted cell is written "")') from None
        raise UsageError(f"{where}: line {start}: not valid CSV ({exc})") from None
    return records


def _csv_record(row: dict[Any, Any], where: str, line: int) -> dict[str, Any]:
    """The case record of one CSV row (see :func:`load_cases`)."""
    if None in row:
        raise UsageError(f"{where}: line {line}: more cells than header columns")
    record: dict[str, Any] = {"metadata": {}}
    for column, cell in row.items():
        key = column.strip()
        if key in ("name", "input", "expected", "tags"):
            if key == "expected" and cell == "":
                continue
            record[key] = cell
        elif key.startswith("metadata."):
            record["metadata"][key[len("metadata."):]] = cell
        else:
            record["metadata"][key] = cell
    return record


def _open_quote_line(text: str, first_line: int) -> int:
    """The line of the quote that opens the cell left open at the end of ``text``,
    reading the CSV record that starts on ``first_line``."""
    line = opened = first_line
    quoted = closing = False
    field_start = True
    for ch in text.split("\n", first_line - 1)[-1]:
        if quoted:
            quoted = ch != '"'
            closing = not quoted  # a second quote right after this one is an escaped quote
        elif ch == '"' and (field_start or closing):
            opened = line if field_start else opened
            quoted, closing = True, False
        else:
            closing = False
        field_start = not quoted and ch in ",\n"
        line += ch == "\n"
    return opened


_PARSERS: dict[str, Callable[[str, str], list[tuple[Any, int | None]]]] = {
    ".yaml": _yaml_records, ".yml": _yaml_records, ".json": _json_records,
    ".jsonl": _jsonl_records, ".csv": _csv_records,
}
"""The parser of each file suffix in :data:`SUFFIXES`: ``(text, where) -> records``."""


def _error_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"])
        if error["type"] == "missing":
            parts.append(f"field {loc!r} is required")
        elif error["type"] == "extra_forbidden":
            parts.append(f"field {loc!r} is not allowed (accepted: {', '.join(FIELDS)})")
        else:
            got = f" (got {short_repr(error.get('input'), 60)})" if "input" in error else ""
            parts.append(f"field {loc!r}: {error['msg']}{got}")
    return "; ".join(parts)


def load_cases(path: str | os.PathLike[str], *, tags: Iterable[str] | None = None,
               _caller: FrameType | None = None) -> list[Case]:
    """Load and validate the cases of a YAML, JSON, JSONL or CSV file.

    YAML and JSON files hold a list of cases (or a mapping with a ``cases``
    list); JSONL one case per line; CSV a header row with ``name``, ``input``,
    ``expected`` (an empty cell means none), ``tags`` (``a;b`` or ``a,b``) and
    any other columns, which go into ``metadata`` (a ``metadata.`` prefix is
    dropped). In YAML/JSON, keys other than name/input/expected/tags/metadata
    are an error (so a typo is not silently ignored). ``tags`` keeps only the
    cases that have at least one of them. Relative paths are resolved next to
    the calling file first, then in the current directory.
    """
    if _caller is None:
        _caller = sys._getframe(1)
    resolved = resolve_path(path, _caller)
    where = _display(resolved)
    loaded = _validate(_file_records(resolved, where), where)
    if tags is not None:
        wanted = {tags} if isinstance(tags, str) else set(tags)
        loaded = [c for c in loaded if wanted.intersection(c.tags)]
    return loaded


def _file_records(resolved: Path, where: str) -> list[tuple[Any, int | None]]:
    """The records of a cases file, read by the parser for its suffix, with the line
    each starts on (when known); a UsageError for a file with no records."""
    suffix = resolved.suffix.lower()
    if suffix not in SUFFIXES:
        raise UsageError(f"cases(): {where}: unknown file type {suffix!r}; accepted: "
                         + ", ".join(SUFFIXES))
    records = _PARSERS[suffix](_read_text(resolved, where), where)
    if not records:
        raise UsageError(f"{where}: the file holds no cases")
    return records


def _read_text(resolved: Path, where: str) -> str:
    """The text of a cases file with its newlines as ``\\n``; a UsageError for a file
    that cannot be read or is not UTF-8 (a BOM is allowed)."""
    from llmcheck.files import NotUTF8, read_utf8

    try:
        text = read_utf8(resolved)
    except OSError as exc:
        raise UsageError(f"cases(): cannot read {where}: {exc.strerror or exc}") from None
    except NotUTF8 as exc:
        raise UsageError(f"{where}: line {exc.line}: not UTF-8 text (byte 0x{exc.byte:02x}); "
                         "save the file as UTF-8") from None
    return io.StringIO(text, newline=None).read()  # universal newlines, as open() reads


def _validate(records: list[tuple[Any, int | None]], where: str) -> list[Case]:
    """The records as :class:`Case` s; a UsageError naming the file, the case and the
    field for a record that is not a valid case or reuses a name."""
    loaded: list[Case] = []
    seen: dict[str, int] = {}
    for number, (record, line) in enumerate(records, start=1):
        label = _case_label(number, record, line)
        if not isinstance(record, dict):
            raise UsageError(f"{where}: {label}: expected a mapping with name and input, got "
                             f"{type(record).__name__} {short_repr(record)}")
        try:
            case = Case.model_validate(record)
        except ValidationError as exc:
            raise UsageError(f"{where}: {label}: {_error_text(exc)}") from None
        if case.name in seen:
            raise UsageError(f"{where}: {label}: name {case.name!r} is already used by case "
                             f"{seen[case.name]}; case names must be unique")
        seen[case.name] = number
        loaded.append(case)
    return loaded


def _case_label(number: int, record: Any, line: int | None) -> str:
    """``case 3 ('capital of France', line 12)``: how messages name a record."""
    name = record.get("name") if isinstance(record, dict) else None
    details = [repr(name)] if isinstance(name, str) and name else []
    if line is not None:
        details.append(f"line {line}")
    return f"case {number}" + (f" ({', '.join(details)})" if details else "")


def cases(path: str | os.PathLike[str], *, tags: Iterable[str] | None = None) -> list[Any]:
    """The cases of a file as ``pytest.param(case, id=case.name)`` for parametrize.

    ``@pytest.mark.parametrize("case", llmcheck.cases("suites/x.yaml"))``: each
    case becomes its own test item; a case with ``xfail: <reason>`` is marked
    ``xfail`` (not strict). See :func:`load_cases` for the formats,
    validation and path resolution (relative to the calling file, then the
    current directory).
    """
    import pytest  # lazily: the checks package never needs pytest otherwise

    loaded = load_cases(path, tags=tags, _caller=sys._getframe(1))
    return [pytest.param(case, id=case.name,
                         marks=[pytest.mark.xfail(reason=case.xfail, strict=False)]
                         if case.xfail else [])
            for case in loaded]
