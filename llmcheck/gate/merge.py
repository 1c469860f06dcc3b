"""Join the reports of shards run on separate machines into one session report.

Inside a machine pytest-xdist spreads the tests; across machines the CI system's
matrix runs ``pytest --llm-shard=i/n`` on each, and ``llmcheck merge`` joins their
JSON reports into the report of the whole suite (the one a gate compares). It
refuses reports of different schema versions, and a test that appears twice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from llmcheck.errors import ReportError
from llmcheck.records.schema import SessionRecord, _report_json, load_session

__all__ = ["merge_reports"]


def merge_reports(paths: Sequence[str | os.PathLike[str]]) -> SessionRecord:
    """One session record holding every test of the reports at ``paths`` (two or more).

    Usage, pooled case rates and the session's false-fail chance are recomputed over
    all tests; ``merged_from`` names the inputs; the seed and options are the first
    report's (each shard's own are in its file), and each input's warnings are kept,
    prefixed with its file name.
    """
    if len(paths) < 2:
        raise ReportError(f"llmcheck merge needs two or more reports, got {len(paths)}")
    sessions: list[tuple[Path, SessionRecord]] = []
    versions: dict[object, Path] = {}
    for path in map(Path, paths):
        raw = _report_json(path)
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        sessions.append((path, load_session(path)))
        versions.setdefault(version, path)
    if len(versions) > 1:
        listed = ", ".join(f"{p} (schema_version {v})" for v, p in versions.items())
        raise ReportError(f"cannot merge reports of different schema versions: {listed}; "
                          "rerun the older shards, or merge reports of one llmcheck version")
    seen: dict[str, Path] = {}
    tests = []
    warnings = []
    for path, session in sessions:
        for test in session.tests:
            if test.nodeid in seen:
                raise ReportError(f"{test.nodeid} is in both {seen[test.nodeid]} and {path}: "
                                  "shards must not run the same test (use --llm-shard=i/n)")
            seen[test.nodeid] = path
            tests.append(test)
        warnings += [f"{path.name}: {w}" for w in session.warnings]
    first = sessions[0][1]
    finished = [s.finished for _, s in sessions if s.finished is not None]
    models = {s.model for _, s in sessions}
    return SessionRecord.assemble(
        tests, seed=first.seed, started=min(s.started for _, s in sessions),
        model=first.model if len(models) == 1 else None, options=first.options,
        warnings=warnings, merged_from=[str(p) for p, _ in sessions],
        finished=max(finished) if len(finished) == len(sessions) else None,
        duration=max((s.duration or 0.0) for _, s in sessions),
        interrupted=any(s.interrupted for _, s in sessions),
        exit_status=max((s.exit_status or 0) for _, s in sessions),
        shard=None)
