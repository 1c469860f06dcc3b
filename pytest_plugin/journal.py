"""A crash-safe journal of finished samples.

Every process appends each finished sample to its own JSON-lines file under the
report directory as it happens, so a crash (a pytest-xdist worker dying
mid-test, or the whole run being killed) still leaves what was measured on
disk. At the end of the session the controller rebuilds a record for every
test whose report never arrived, from its journaled samples, then removes this
session's journal files. Files of an earlier session that died are left alone:
they are its only trace.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

JOURNAL_DIR = ".llmcheck-journal"


class Journal:
    """One process's journal file (opened on first write)."""

    def __init__(self, report_dir: Path, session_token: str, name: str) -> None:
        self.directory = report_dir / JOURNAL_DIR
        self.path = self.directory / f"{session_token}-{name}-{os.getpid()}.jsonl"
        self._file: Any = None
        self._lock = threading.Lock()

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._file.write(line)
            self._file.flush()  # in the OS's hands now: survives the process dying

    def start(self, nodeid: str, spec: dict[str, Any]) -> None:
        self._write({"start": nodeid, "spec": spec})

    def sample(self, nodeid: str, sample: Any) -> None:
        self._write({"nodeid": nodeid, "sample": sample.model_dump(mode="json")})

    def done(self, nodeid: str) -> None:
        self._write({"done": nodeid})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def recover(report_dir: Path, session_token: str, have: set[str]) -> list[Any]:
    """Records of this session's tests that journaled samples but never reported."""
    directory = report_dir / JOURNAL_DIR
    paths = sorted(directory.glob(f"{session_token}-*.jsonl")) if directory.is_dir() else []
    if not paths:
        return []  # the common case: no LLM test ran, or every one reported
    from llmcheck import stats
    from llmcheck.records import SampleRecord
    from llmcheck.runner import RunSpec, SampleRunner

    specs: dict[str, dict[str, Any]] = {}
    samples: dict[str, list[Any]] = {}
    done: set[str] = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the crash
            if "start" in entry:
                specs[entry["start"]] = entry["spec"]
                samples[entry["start"]] = []
            elif "done" in entry:
                done.add(entry["done"])
            elif "sample" in entry and entry.get("nodeid") in samples:
                samples[entry["nodeid"]].append(SampleRecord.model_validate(entry["sample"]))
    records = []
    for nodeid, spec in specs.items():
        if nodeid in done or nodeid in have or not samples[nodeid]:
            continue
        policy = stats.make_policy(
            spec["policy"], min_pass_rate=spec["min_pass_rate"], confidence=spec["confidence"],
            max_samples=spec["runs"], margin=spec["margin"], alpha=spec["alpha"],
            beta=spec["beta"])
        run_spec = RunSpec(test_id=nodeid, runs=spec["runs"], policy=policy,
                           concurrency=spec["concurrency"], early_stop=spec["early_stop"],
                           interval_method=spec["interval"], model=spec.get("model"),
                           warnings=list(spec.get("warnings", [])))
        records.append(SampleRunner.from_samples(run_spec, samples[nodeid],
                                                 "the process running it died"))
    return records


def clear(report_dir: Path, session_token: str) -> None:
    directory = report_dir / JOURNAL_DIR
    if not directory.is_dir():
        return
    for path in directory.glob(f"{session_token}-*.jsonl"):
        try:
            path.unlink()
        except OSError:
            pass
    try:
        directory.rmdir()  # only if empty: an earlier crash's files stay
    except OSError:
        pass
