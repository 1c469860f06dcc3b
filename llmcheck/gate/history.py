"""Several saved reports side by side: each test's pass rate run after run, and where
it moved by more than chance.

``llmcheck history DIR_OR_FILES...`` reads every report given (a directory: every
``*.json`` report in it), orders them by start time, oldest first, and prints one
column per run. Between consecutive runs, a test's two pass counts are compared with
a two-sided Fisher exact test, Holm-corrected over the tests compared at that step;
a corrected p below ``alpha`` marks the step as a move (up or down).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llmcheck.errors import ReportError
from llmcheck.records.schema import SessionRecord, load_session

__all__ = ["History", "load_history", "render_history"]


@dataclass(frozen=True)
class Move:
    nodeid: str
    step: int  # between run ``step - 1`` and run ``step`` (0-based)
    before: tuple[int, int]  # (passes, scored)
    after: tuple[int, int]
    p_value: float  # Holm-corrected

    @property
    def direction(self) -> str:
        b, a = self.before, self.after
        return "up" if a[0] * b[1] > b[0] * a[1] else "down"


@dataclass(frozen=True)
class History:
    paths: tuple[str, ...]
    sessions: tuple[SessionRecord, ...]
    moves: tuple[Move, ...]


def report_paths(items: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The report files named by ``items``: files as given, directories by their
    ``*.json`` files (a directory with none is an error)."""
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.glob("*.json") if p.is_file())
            if not found:
                raise ReportError(f"{item} holds no .json report")
            paths += found
        else:
            paths.append(item)
    return paths


def load_history(items: Sequence[str | os.PathLike[str]], alpha: float = 0.05) -> History:
    """The reports at ``items`` (files or directories), oldest first, and the moves."""
    from scipy.stats import fisher_exact

    from llmcheck.stats.compare import holm

    loaded = [(p, load_session(p)) for p in report_paths(items)]
    if len(loaded) < 2:
        raise ReportError("llmcheck history needs two or more reports")
    loaded.sort(key=lambda pair: pair[1].started)
    moves: list[Move] = []
    for step in range(1, len(loaded)):
        before = {t.nodeid: (t.passed, t.scored) for t in loaded[step - 1][1].tests}
        after = {t.nodeid: (t.passed, t.scored) for t in loaded[step][1].tests}
        common = [n for n in after if n in before and before[n][1] and after[n][1]]
        raw = [float(fisher_exact([[before[n][0], after[n][0]],
                                   [before[n][1] - before[n][0], after[n][1] - after[n][0]]],
                                  alternative="two-sided")[1]) for n in common]
        for nodeid, p in zip(common, holm(raw), strict=True):
            if p < alpha:
                moves.append(Move(nodeid, step, before[nodeid], after[nodeid], p))
    return History(tuple(str(p) for p, _ in loaded), tuple(s for _, s in loaded),
                   tuple(moves))


def render_history(history: History, fmt: str = "text") -> str:
    """One row per test, one column per run (``rate (passes/scored)``), and the moves."""
    from tabulate import tabulate

    from llmcheck.text import printable

    nodeids: list[str] = []
    for session in history.sessions:
        nodeids += [t.nodeid for t in session.tests if t.nodeid not in nodeids]
    headers = ["test", *(f"{i + 1}: {s.started:%Y-%m-%d %H:%M}"
                         for i, s in enumerate(history.sessions)), "moved"]
    by_run = [{t.nodeid: t for t in s.tests} for s in history.sessions]
    moved: dict[str, list[str]] = {}
    for m in history.moves:
        moved.setdefault(m.nodeid, []).append(f"{m.direction} at {m.step + 1} "
                                              f"(p={m.p_value:.2g})")
    rows = []
    for nodeid in nodeids:
        cells = []
        for run in by_run:
            t = run.get(nodeid)
            cells.append("-" if t is None or not t.scored else
                         f"{t.passed / t.scored:.2f} ({t.passed}/{t.scored})")
        rows.append([printable(nodeid), *cells, "; ".join(moved.get(nodeid, []))])
    table = tabulate(rows, headers, tablefmt="github" if fmt == "md" else "simple",
                     disable_numparse=True)
    runs = "\n".join(f"{i + 1}: {printable(p)}" for i, p in enumerate(history.paths))
    return f"{table}\n\nruns, oldest first:\n{runs}"
