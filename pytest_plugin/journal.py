"""A crash-safe journal of finished samples.

Every process appends each finished sample to its own JSON-lines file under the
report directory as it happens, so a crash (a pytest-xdist worker dying
mid-test, or the whole run being killed) still leaves what was measured on
disk. Each file starts with the session's seed and start time, and each test
with its resolved :class:`~llmcheck.records.schema.TestSettings`, so a record can be
rebuilt from the file alone.

- At the end of a session the controller rebuilds a record for every test of
  its own whose report never arrived (a worker died), then removes its files.
- At the start of a session, the journal of an earlier session that was killed
  (its files are still there and its processes are gone) is turned into a
  report of its own, ``llmcheck-recovered-<token>.json`` beside
  ``llmcheck.json``, and removed; the session says so.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

JOURNAL_DIR = ".llmcheck-journal"
DIED = "the process running it died"
INTERRUPTED = "interrupted"
KILLED = "the run was killed"


class Journal:
    """One process's journal file (opened on first write)."""

    def __init__(self, report_dir: Path, session_token: str, name: str,
                 header: dict[str, Any] | None = None) -> None:
        self.directory = report_dir / JOURNAL_DIR
        self.path = self.directory / f"{session_token}-{name}-{os.getpid()}.jsonl"
        self.header = {"token": session_token, **(header or {})}
        self._file: Any = None
        self._lock = threading.Lock()
        self.problem: str | None = None
        """Why journaling stopped (the first write the disk refused), else None."""

    def _write(self, entry: dict[str, Any]) -> None:
        from llmcheck.files import open_private, write_error

        # ASCII JSON: model text may hold any code point, a lone surrogate included,
        # which UTF-8 cannot encode; \u escapes keep it whole
        line = json.dumps(entry, default=str) + "\n"
        with self._lock:
            if self.problem is not None:
                return
            try:
                if self._file is None:
                    self._file = open_private(self.path, "a")
                    self._file.write(json.dumps({"session": self.header}, default=str) + "\n")
                self._file.write(line)
                self._file.flush()  # in the OS's hands now: survives the process dying
            except OSError as exc:
                # A full disk stops the journal, not the test: the samples still count,
                # they are only no longer safe from a crash, and the session says so.
                self.problem = f"{write_error(exc)}; samples after it were not journaled"
                self._close()

    def start(self, nodeid: str, settings: Any, *, model: str | None,
              simulated: bool) -> None:
        self._write({"start": nodeid, "settings": settings.model_dump(mode="json"),
                     "model": model, "simulated": simulated})

    def sample(self, nodeid: str, sample: Any) -> None:
        self._write({"nodeid": nodeid, "sample": sample.model_dump(mode="json")})

    def done(self, nodeid: str) -> None:
        self._write({"done": nodeid})

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        from llmcheck.files import write_error

        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:  # what was still buffered could not be written
                self.problem = self.problem or write_error(exc)


@dataclass
class _Contents:
    """What one session's journal files hold."""

    session: dict[str, Any] = field(default_factory=dict)
    starts: dict[str, dict[str, Any]] = field(default_factory=dict)
    samples: dict[str, list[Any]] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)


def _read(paths: list[Path]) -> _Contents:
    """What the files say; a line that is not a journal entry (cut short by a crash,
    or garbage) is skipped, a sample that does not validate is a ValueError."""
    from llmcheck.files import read_bounded

    out = _Contents()
    for path in paths:
        for line in read_bounded(path).decode("utf-8", "replace").splitlines():
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):  # not JSON, or an integer of 5000 digits
                continue
            if isinstance(entry, dict):
                _take(out, entry)
    return out


def _take(out: _Contents, entry: dict[str, Any]) -> None:
    from llmcheck.records.base import LOADED
    from llmcheck.records.schema import SampleRecord

    if isinstance(entry.get("session"), dict):
        out.session = {**entry["session"], **out.session}
    elif isinstance(entry.get("start"), str) and isinstance(entry.get("settings"), dict):
        out.starts[entry["start"]] = entry
        out.samples[entry["start"]] = []
    elif isinstance(entry.get("done"), str):
        out.done.add(entry["done"])
    elif isinstance(entry.get("nodeid"), str) and entry["nodeid"] in out.samples \
            and "sample" in entry:
        out.samples[entry["nodeid"]].append(SampleRecord.model_validate(entry["sample"],
                                                                        context=LOADED))


def _rebuild(contents: _Contents, nodeid: str, reason: str | None) -> Any:
    from llmcheck.core.runner import RunSpec, rebuild_record
    from llmcheck.records.base import LOADED
    from llmcheck.records.schema import TestSettings

    start = contents.starts[nodeid]
    settings = TestSettings.model_validate(start["settings"], context=LOADED)
    spec = RunSpec(test_id=nodeid, settings=settings, model=start.get("model"),
                   simulated=bool(start.get("simulated")))
    return rebuild_record(spec, contents.samples[nodeid], reason)


def read_journal(path: Path) -> list[Any]:
    """The records of the tests the journal file ``path`` rebuilds, as a later session
    recovers them; a one-line ReportError for a file that cannot be read or holds an
    entry no run writes (a sample or settings out of range). The journal's entry in the
    registry of file readers (:data:`llmcheck.records.readers.READERS`)."""
    from llmcheck.errors import ReportError

    try:
        contents = _read([path])
        return [_rebuild(contents, nodeid, KILLED) for nodeid in contents.starts
                if contents.samples[nodeid]]
    except OSError as exc:
        raise ReportError(f"cannot read journal {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a ValidationError: the first problem, on one line
        raise ReportError(f"journal {path}: {' '.join(str(exc).split())[:300]}") from None


def _files(report_dir: Path, session_token: str = "") -> list[Path]:
    directory = report_dir / JOURNAL_DIR
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{session_token}*.jsonl"))


def recover(report_dir: Path, session_token: str, have: set[str],
            reason: str = DIED) -> list[Any]:
    """Records of this session's tests that started but never reported (``reason`` says
    why: a worker died, or the session was interrupted); one that had no sample finished
    yet is recorded too, with no verdict, so that no test that ran goes missing."""
    paths = _files(report_dir, session_token + "-")
    if not paths:
        return []  # the common case: no LLM test ran, or every one reported
    contents = _read(paths)
    # A test its worker finished ("done") can still be missing here: the session was
    # interrupted before its report reached this process. Rebuild it as finished.
    return [_rebuild(contents, nodeid, None if nodeid in contents.done else reason)
            for nodeid in contents.starts if nodeid not in have]


def clear(report_dir: Path, session_token: str) -> None:
    """Remove this session's journal files (and the folder, once empty)."""
    _remove(_files(report_dir, session_token + "-"), report_dir)


def _remove(paths: list[Path], report_dir: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except OSError:
            pass
    try:
        (report_dir / JOURNAL_DIR).rmdir()  # only if empty
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: assume it is running
    return True


def _stale_tokens(report_dir: Path, own_token: str) -> dict[str, list[Path]]:
    """Journal files of other sessions none of whose processes is alive."""
    by_token: dict[str, list[Path]] = {}
    for path in _files(report_dir):
        token, _, rest = path.stem.partition("-")
        if token != own_token:
            by_token.setdefault(token, []).append(path)
    stale = {}
    for token, paths in by_token.items():
        pids = [rest.rsplit("-", 1)[-1] for rest in (p.stem for p in paths)]
        if not any(pid.isdigit() and _alive(int(pid)) for pid in pids):
            stale[token] = paths
    return stale


@dataclass
class Recovered:
    """An earlier session's journal turned into a report, or why it could not be."""

    token: str
    tests: int = 0
    report: Path | None = None
    problem: str | None = None
    journal: list[Path] = field(default_factory=list)

    def message(self) -> str:
        if self.problem is None and self.report is None:
            return (f"removed the journal of an earlier run that was killed (session "
                    f"{self.token}) before any sample finished")
        if self.report is not None:
            return (f"recovered {self.tests} test(s) from the journal of an earlier run that "
                    f"was killed (session {self.token}) into {self.report}")
        where = ", ".join(str(p) for p in self.journal)
        return (f"the journal of an earlier run that was killed (session {self.token}) could "
                f"not be recovered ({self.problem}); it is left at {where}")


def recover_stale(report_dir: Path, own_token: str) -> list[Recovered]:
    """Turn every earlier session's leftover journal into a report of its own."""
    out = []
    for token, paths in _stale_tokens(report_dir, own_token).items():
        result = Recovered(token, journal=paths)
        try:
            result.tests, result.report = _save_recovered(report_dir, token, _read(paths))
        except (OSError, ValueError, TypeError) as exc:  # ValidationError is a ValueError
            result.problem = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        else:
            _remove(paths, report_dir)
        out.append(result)
    return out


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _save_recovered(report_dir: Path, token: str, contents: _Contents) -> tuple[int, Path | None]:
    from llmcheck.records.schema import SessionRecord, now, save_session

    tests = [_rebuild(contents, nodeid, None if nodeid in contents.done else KILLED)
             for nodeid in contents.starts if contents.samples[nodeid]]
    if not tests:
        return 0, None  # it died before any sample finished: nothing to keep
    header = contents.session
    seed, model = header.get("seed"), header.get("model")
    session = SessionRecord.assemble(
        tests, seed=seed if isinstance(seed, int) and seed >= 0 else 0,
        started=_when(header.get("started")) or now(),
        model=model if isinstance(model, str) else None, interrupted=True,
        recovered_from=f"journal of session {token}",
        warnings=[f"rebuilt from the sample journal of a run that was killed (session "
                  f"{token}); tests cut short are marked interrupted"])
    path = report_dir / f"llmcheck-recovered-{token}.json"
    save_session(session, path)
    return len(tests), path
