"""Reports on disk: save a session atomically, load one back with a clear one-line
error for anything that is not an llmcheck report, and migrate older schema versions
(their history is :data:`~llmcheck.records.models.SCHEMA_VERSION`'s docstring).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmcheck.errors import ReportError
from llmcheck.records.base import LOADED
from llmcheck.records.models import SCHEMA_VERSION
from llmcheck.records.session import SessionRecord


def save_session(record: SessionRecord, path: str | os.PathLike[str]) -> Path:
    """Serialize ``record`` to ``path`` atomically; return the path."""
    from llmcheck.files import write_atomic

    p = Path(path)
    write_atomic(p, record.model_dump_json(indent=2) + "\n")
    return p


def _migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older report up to :data:`SCHEMA_VERSION` (see its history)."""
    if data.get("schema_version") == 1:
        # v1 -> v2 only added lists that default to empty.
        data = {**data, "schema_version": 2}
    if data.get("schema_version") == 2:
        tests = data.get("tests")
        if isinstance(tests, list):
            tests = [_test_v2_to_v3(t) if isinstance(t, dict) else t for t in tests]
        warnings = list(data.get("warnings") or [])
        warnings.append("read from a schema version 2 report, which did not record margin, "
                        "alpha, beta or early stopping: the defaults are shown")
        data = {**data, "schema_version": 3, "tests": tests, "warnings": warnings}
    if data.get("schema_version") == 3:
        # v3 -> v4 only added ``estimate`` (None) and the ``stopping-exact`` method.
        data = {**data, "schema_version": 4}
    if data.get("schema_version") == 4:
        # v4 -> v5 only added fields that default to None or empty.
        data = {**data, "schema_version": 5}
    if data.get("schema_version") == 5:
        # v5 -> v6 only added fields that default to None or empty.
        data = {**data, "schema_version": 6}
    if data.get("schema_version") == 6:
        # v6 -> v7 only added ``calls[].params`` (empty) and ``session.local_model`` (None).
        data = {**data, "schema_version": 7}
    if data.get("schema_version") == 7:
        # v7 -> v8 only added ``recovered`` (False, 0) and ``budget_refused`` (False).
        data = {**data, "schema_version": 8}
    if data.get("schema_version") == 8:
        # v8 -> v9 only added ``samples[].exchanges`` (empty).
        data = {**data, "schema_version": 9}
    if data.get("schema_version") == 9:
        # v9 -> v10 only added fields that default to None, "app" or empty.
        data = {**data, "schema_version": 10}
    return data


def _test_v2_to_v3(test: dict[str, Any]) -> dict[str, Any]:
    """A v2 test record with its scattered settings gathered into ``settings``."""
    from llmcheck.config.settings import SETTINGS

    test = dict(test)
    verdict = dict(test.get("verdict") or {})
    interval = test.get("interval") or {}
    test["settings"] = {
        "runs": test.pop("planned", None),
        "verdict": verdict.pop("policy", None),
        "min_pass_rate": test.pop("min_pass_rate", None),
        "confidence": test.pop("confidence", None),
        "margin": SETTINGS["margin"].default,
        "alpha": SETTINGS["alpha"].default,
        "beta": SETTINGS["beta"].default,
        "interval": interval.get("method", SETTINGS["interval"].default),
        "early_stop": SETTINGS["early_stop"].default,
        "concurrency": test.pop("concurrency", None),
    }
    test["verdict"] = verdict
    return test


def load_report(path: str | os.PathLike[str]) -> SessionRecord:
    """A saved report's records (the same as :func:`load_session`); ``.to_frame()``
    gives its samples as a pandas DataFrame."""
    return load_session(path)


def load_session(path: str | os.PathLike[str]) -> SessionRecord:
    """Read a JSON report back, with a clear one-line :class:`ReportError` if it is
    missing, unreadable, not UTF-8, not JSON, nested too deeply, foreign, of an unknown
    schema version or not of the llmcheck schema."""
    p = Path(path)
    data = _report_json(p)
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"{p} is not an llmcheck report (no schema_version)")
    version = data["schema_version"]
    if type(version) is not int or not 1 <= version <= SCHEMA_VERSION:
        raise ReportError(
            f"report {p} has schema_version {_clipped_repr(version)}; this llmcheck reads "
            f"version {SCHEMA_VERSION} (and migrates 1 to {SCHEMA_VERSION - 1})")
    if version < SCHEMA_VERSION:
        _check_migratable(data, p)
    data = _migrate(data)
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportError(f"report {p} has schema_version {version}, which this llmcheck "
                          f"cannot migrate to version {SCHEMA_VERSION}")
    try:
        return SessionRecord.model_validate(data, context=LOADED)
    except ValidationError as exc:
        raise ReportError(_schema_problem(p, exc)) from None
    except RecursionError:  # a validator walking a value that json.loads could still read
        raise ReportError(f"report {p} is nested too deeply to be an llmcheck report") from None


def _report_json(p: Path) -> Any:
    """The JSON value of the report file ``p`` (see :func:`json_file`)."""
    return json_file(p, "report")


def json_file(p: Path, what: str) -> Any:
    """The JSON value of the file ``p``, a ``what`` (report, baseline, ...); a one-line
    ReportError for a file that cannot be read (missing, not a regular file, too large:
    :func:`llmcheck.files.read_bounded`), is not UTF-8 text, or is not JSON. Every JSON
    file llmcheck reads back comes through here."""
    from llmcheck.files import NotUTF8, read_utf8

    try:
        text = read_utf8(p)
    except OSError as exc:
        raise ReportError(f"cannot read {what} {p}: {exc.strerror or exc}") from exc
    except NotUTF8 as exc:
        why = ("it is UTF-16; save it as UTF-8" if exc.utf16 else
               f"byte 0x{exc.byte:02x} on line {exc.line}")
        raise ReportError(f"{what} {p} is not UTF-8 text ({why}); llmcheck writes its "
                          f"{what}s as UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{what} {p} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ReportError(f"{what} {p} is nested too deeply to be an llmcheck {what}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ReportError(f"{what} {p} is not valid JSON: {exc}") from None


def _check_migratable(data: dict[str, Any], p: Path) -> None:
    """A ReportError unless the fields :func:`_migrate` reshapes have the types it reads:
    ``warnings`` a list, each test's ``verdict`` and ``interval`` objects."""
    problems = []
    if not isinstance(data.get("warnings") or [], list):
        problems.append(f"warnings: expected a list, got {type(data['warnings']).__name__}")
    tests = data.get("tests")
    for i, test in enumerate(tests if isinstance(tests, list) else []):
        for key in ("verdict", "interval"):
            value = test.get(key) if isinstance(test, dict) else None
            if value and not isinstance(value, dict):
                problems.append(f"tests[{i}].{key}: expected an object, got "
                                f"{type(value).__name__}")
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ReportError(f"report {p} does not match the llmcheck schema version "
                          f"{data['schema_version']}: {problems[0]}{more}")


def _schema_problem(p: Path, exc: ValidationError) -> str:
    """One line: the report, the first field that does not match and how many more."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"])
    if first["type"] == "value_error":  # a number out of range (records.bounds): one line
        field = loc.lstrip(".")
        msg = first["msg"].removeprefix("Value error, ")
        return f"report {p}: {field + '.' if field else ''}{msg}"
    got = f" (got {_clipped_repr(first['input'])})" if "input" in first else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return (f"report {p} does not match the llmcheck schema: {loc.lstrip('.') or 'top level'}: "
            f"{first['msg']}{got}{more}")


def _clipped_repr(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except RecursionError:
        return "(a value nested too deeply to show)"
    return text if len(text) <= limit else text[:limit - 3] + "..."
