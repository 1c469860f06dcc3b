"""The pre-merge gate: did a change make any LLM test pass less often?

Each test of a HEAD run is compared with the same test (same node id) of a BASE
run or of an accumulated baseline (:mod:`llmcheck.gate.baseline`), on the two pass
counts alone (infrastructure errors are neither passes nor failures). The numbers
come from :mod:`llmcheck.stats.compare`; this module pairs the records, decides each
row's status and renders the table:

- **p**: a one-sided exact test that HEAD's pass rate is lower than BASE's (Boschloo's
  by default, Fisher's by option; :func:`llmcheck.stats.compare.p_value`).
- **corrected p**: the p-values of the tests compared, adjusted for their number
  (Holm by default, Benjamini-Hochberg by option).
- **regressed**: the rate dropped by at least ``margin`` (an effect-size floor:
  a significant drop of half a point is not worth blocking a merge) *and* the
  corrected p is below ``alpha``.
- **min detectable drop**: the smallest drop from the base rate that this
  comparison would flag 80% of the time at these sample sizes, if it were the only
  test that changed (both corrections then ask it for p < alpha / m, m the number
  of tests compared); the margin floor included; ``~`` marks a normal approximation.
  It says what a pass of the gate is worth.

New tests, removed tests and tests whose required rate, model or fingerprint (the
hash of the test's source and parameters; when both sides know it) changed are
listed, never compared: their rates are not the same quantity.

The counts are those a report's verdict counts (``passed``, ``failed``). The tests
are exact for fixed sample sizes; a run that stopped early has a data-dependent
size, for which they are close but not exact (see the README).

Pure: no pytest import. The plugin, ``llmcheck compare`` and the tests call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llmcheck.errors import UsageError
from llmcheck.stats.compare import (
    DEFAULT_ALPHA,
    DEFAULT_MARGIN,
    TARGET_POWER,
    Detectable,
    adjust,
    boschloo_applies,
    check_correction,
    check_test,
    min_detectable_drop,
    p_value,
)

if TYPE_CHECKING:  # pragma: no cover
    from llmcheck.records.schema import SessionRecord, TestRecord

Status = Literal["regressed", "ok", "changed", "new", "removed", "no data"]
STATUS_ORDER: tuple[str, ...] = ("regressed", "ok", "no data", "changed", "new", "removed")


# -- the inputs ----------------------------------------------------------------------

@dataclass(frozen=True)
class Counts:
    """One test on one side of the comparison: a report's test, or a baseline's."""

    nodeid: str
    passed: int
    failed: int
    min_pass_rate: float | None = None
    fingerprint: str | None = None
    model: str | None = None
    runs: int = 1
    """Runs merged into these counts (a report: 1; a baseline: how many it accumulated)."""

    @property
    def scored(self) -> int:
        return self.passed + self.failed

    @property
    def rate(self) -> float | None:
        return self.passed / self.scored if self.scored else None

    @classmethod
    def of_test(cls, record: TestRecord) -> Counts:
        return cls(nodeid=record.nodeid, passed=record.passed, failed=record.failed,
                   min_pass_rate=record.settings.min_pass_rate,
                   fingerprint=record.fingerprint,
                   model=record.model or record.settings.model)


def counts_of_session(session: SessionRecord) -> list[Counts]:
    """The counts of every test of a report."""
    return [Counts.of_test(t) for t in session.tests]


# -- the comparison --------------------------------------------------------------------

@dataclass
class Row:
    """One test in the comparison."""

    nodeid: str
    status: Status
    base: Counts | None
    head: Counts | None
    drop: float | None = None
    p: float | None = None
    p_corrected: float | None = None
    detectable: Detectable | None = None
    note: str = ""


@dataclass
class GateResult:
    rows: list[Row]
    test: str
    correction: str
    alpha: float
    margin: float
    compared: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.status == "regressed"]

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def level(self) -> float:
        """The level a lone regression must reach: alpha / m under either correction."""
        return self.alpha / max(1, self.compared)

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in STATUS_ORDER if self.count(s)]
        verdict = (f"{len(self.regressions)} regression(s)" if self.regressions
                   else "no regression")
        return f"{verdict} ({', '.join(parts) or 'no tests'})"

    def method(self) -> str:
        test = "Boschloo's" if self.test == "boschloo" else "Fisher's"
        correction = "Holm" if self.correction == "holm" else "Benjamini-Hochberg"
        return (f"p: one-sided {test} exact test that HEAD's pass rate is lower; corrected: "
                f"{correction} over the {self.compared} test(s) compared; regressed: drop >= "
                f"{self.margin:g} and corrected p < {self.alpha:g}; min detectable drop: "
                f"what a lone regression needs to be flagged {TARGET_POWER:.0%} of the time "
                f"at these sample sizes (exact power at level {self.level:.3g}; ~: normal "
                "approximation)")


def compare(base: Sequence[Counts], head: Sequence[Counts], *, test: str = "boschloo",
            correction: str = "holm", alpha: float = DEFAULT_ALPHA,
            margin: float = DEFAULT_MARGIN, detectable: bool = True) -> GateResult:
    """Compare every HEAD test with the BASE test of the same node id."""
    check_test(test)
    check_correction(correction)
    if not 0.0 < alpha < 1.0:
        raise UsageError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not 0.0 <= margin < 1.0:
        raise UsageError(f"margin must lie in [0, 1), got {margin!r}")
    base_by_id = {c.nodeid: c for c in base}
    head_ids = {c.nodeid for c in head}
    rows: list[Row] = []
    for h in head:
        b = base_by_id.get(h.nodeid)
        if b is None:
            rows.append(Row(h.nodeid, "new", None, h, note="not in BASE"))
            continue
        changed = _changes(b, h)
        if changed:
            rows.append(Row(h.nodeid, "changed", b, h, note="; ".join(changed)))
        elif b.scored == 0 or h.scored == 0:
            side = "BASE" if b.scored == 0 else "HEAD"
            rows.append(Row(h.nodeid, "no data", b, h, note=f"no scored sample in {side}"))
        else:
            drop = b.passed / b.scored - h.passed / h.scored
            note = "" if test != "boschloo" or boschloo_applies(b.scored, h.scored) else \
                "Fisher's p (samples too large for Boschloo's)"
            rows.append(Row(h.nodeid, "ok", b, h, drop=drop, note=note,
                            p=p_value(b.passed, b.failed, h.passed, h.failed, test)))
    for b in base:
        if b.nodeid not in head_ids:
            rows.append(Row(b.nodeid, "removed", b, None, note="not in HEAD"))
    compared = [r for r in rows if r.p is not None]
    adjusted = adjust([r.p for r in compared if r.p is not None], correction)
    for r, p in zip(compared, adjusted, strict=True):
        r.p_corrected = p
        assert r.drop is not None
        big, significant = r.drop >= margin - 1e-12, p < alpha
        if big and significant:
            r.status = "regressed"
        elif big:
            r.note = _joined("drop not significant", r.note)
        elif significant:
            r.note = _joined("significant, below the margin", r.note)
    result = GateResult(rows=rows, test=test, correction=correction, alpha=alpha,
                        margin=margin, compared=len(compared))
    if detectable:
        for r in compared:
            assert r.base is not None and r.head is not None and r.base.rate is not None
            r.detectable = min_detectable_drop(r.base.scored, r.head.scored, r.base.rate,
                                               test=test, level=result.level, margin=margin)
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    rows.sort(key=lambda r: order[r.status])  # stable: HEAD's order within a status
    return result


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _changes(b: Counts, h: Counts) -> list[str]:
    """What makes two records of one node id different tests."""
    out = []
    if (b.min_pass_rate is not None and h.min_pass_rate is not None
            and abs(b.min_pass_rate - h.min_pass_rate) > 1e-12):
        out.append(f"required rate {b.min_pass_rate:g} -> {h.min_pass_rate:g}")
    if b.model is not None and h.model is not None and b.model != h.model:
        out.append(f"model {b.model} -> {h.model}")
    if b.fingerprint is not None and h.fingerprint is not None and \
            b.fingerprint != h.fingerprint:
        out.append("test source or parameters changed (fingerprint)")
    return out


# -- rendering -------------------------------------------------------------------------

HEADERS = ("test", "base rate (n)", "head rate (n)", "drop", "p", "corrected p",
           "min detectable drop", "status")


def _rate_cell(c: Counts | None) -> str:
    if c is None:
        return ""
    rate = "-" if c.rate is None else f"{c.rate:.2f}"
    runs = f", {c.runs} runs" if c.runs > 1 else ""
    return f"{rate} ({c.scored}{runs})"


def _p_cell(p: float | None) -> str:
    if p is None:
        return ""
    return f"{p:.2g}" if p < 0.001 else f"{p:.4f}"


def _status_cell(r: Row, markdown: bool) -> str:
    status = f"**{r.status}**" if markdown and r.status == "regressed" else r.status
    return f"{status}: {r.note}" if r.note else status


def table_rows(result: GateResult, markdown: bool = False) -> list[list[str]]:
    out = []
    for r in result.rows:
        nodeid = f"`{r.nodeid}`" if markdown else r.nodeid
        if markdown:
            nodeid = nodeid.replace("|", "\\|")
        out.append([
            nodeid, _rate_cell(r.base), _rate_cell(r.head),
            "" if r.drop is None else f"{r.drop:+.2f}", _p_cell(r.p), _p_cell(r.p_corrected),
            "" if r.detectable is None else str(r.detectable), _status_cell(r, markdown),
        ])
    return out


def render_lines(result: GateResult, fmt: str = "text") -> list[tuple[str, str | None]]:
    """The comparison as lines, each with the status of the row it shows (None for
    headers and notes), so a terminal can colour regressions."""
    from tabulate import tabulate

    if fmt not in ("text", "md"):
        raise UsageError(f"unknown format {fmt!r}: expected text or md")
    markdown = fmt == "md"
    lines: list[tuple[str, str | None]] = []
    if markdown:
        icon = ":x:" if result.regressions else ":white_check_mark:"
        lines.append((f"### llmcheck gate: {icon} {result.summary()}", None))
        lines.append(("", None))
    if result.rows:
        table = tabulate(table_rows(result, markdown), headers=list(HEADERS),
                         tablefmt="github" if markdown else "simple",
                         disable_numparse=True)
        table_lines = table.splitlines()
        header = len(table_lines) - len(result.rows)
        for i, line in enumerate(table_lines):
            lines.append((line, result.rows[i - header].status if i >= header else None))
    if not markdown:
        lines.append((result.summary(), None))
    lines.append(("", None) if markdown else (result.method(), None))
    if markdown:
        lines.append((f"<sub>{result.method()}</sub>", None))
    for note in result.notes:
        lines.append((note, None))
    return lines


def render(result: GateResult, fmt: str = "text") -> str:
    return "\n".join(line for line, _ in render_lines(result, fmt))
