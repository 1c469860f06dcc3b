"""Plain-text views of records: the summary table fitted to a terminal width, and the
shortening of long node ids and check names."""

from __future__ import annotations

import pytest
from report_data import LONG, check_stat, make_record, session_records

from llmcheck.records.schema import (
    Aggregate,
    Interval,
    TestRecord,
)
from llmcheck.reports.cells import MIN_TEST_WIDTH, verdict_cell, verdict_label
from llmcheck.reports.table import aggregates_table, summary_table
from llmcheck.reports.terminal import (
    check_line,
    explain,
    failing_checks_lines,
    fault_lines,
    fault_text,
)
from llmcheck.text import ellipsize

WIDTHS = (60, 80, 100, 120, 200)
FULL_HEADERS = ["test", "run/planned", "passed", "failed", "errors", "rate", "interval",
                "required", "verdict", "early stop", "calls", "tokens", "cost"]


# -- ellipsize -----------------------------------------------------------------------

def test_ellipsize_keeps_both_ends_at_exactly_the_width():
    text = "suites/test_extraction.py::test_extracts_person[case-3]"
    for width in range(2, len(text)):
        short = ellipsize(text, width)
        assert len(short) == width and short.count("…") == 1
        head, tail = short.split("…")
        assert text.startswith(head) and text.endswith(tail)
        assert abs(len(head) - len(tail)) <= 1
    assert ellipsize(text, 5) == "su…3]"
    assert ellipsize(text, len(text)) == text and ellipsize(text, 200) == text
    assert ellipsize(text, 1) == "…" and ellipsize(text, 0) == ""


def test_ellipsize_can_favour_the_end():
    text = "suites/test_extraction.py::test_extracts_person[case-3]"
    assert ellipsize(text, 42, keep_end=0.6) == "suites/test_extr…t_extracts_person[case-3]"
    assert ellipsize(text, 10, keep_end=0.0) == "suites/te…"


# -- the summary table ---------------------------------------------------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_summary_table_fits_the_width(width):
    table = summary_table(session_records(), width=width)
    assert all(len(line) <= width for line in table.splitlines()), table


@pytest.mark.parametrize("width", WIDTHS)
def test_every_width_keeps_n_rate_interval_required_and_verdict(width):
    records = session_records()
    lines = summary_table(records, width=width).splitlines()
    rows = lines[2:2 + len(records)]
    for r, row in zip(records, rows, strict=True):
        # the row is the test's: its id's start and end survive the shortening
        test = row.split("  ")[0].split(" ")[0]
        head, _, tail = test.partition("…")
        assert r.nodeid.startswith(head) and r.nodeid.endswith(tail) and len(head) >= 5
        assert f"{r.run}/{r.planned}" in row
        assert (f"{r.pass_rate:.2f}" if r.pass_rate is not None else " - ") in row
        if r.scored:
            assert f"{r.interval.low:.2f}" in row and f"{r.interval.high:.2f}" in row
        assert f"{r.min_pass_rate:.2f}" in row
        word = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[r.verdict.outcome]
        assert word in row
        if not r.verdict.conclusive:
            assert "?" in row or "inconcl" in row


def test_narrow_tables_shorten_test_ids_in_the_middle_and_explain_the_question_mark():
    lines = summary_table(session_records(), width=80).splitlines()
    assert lines[0].split()[:7] == ["test", "n", "rate", "95%", "CI", "req", "verdict"]
    long_row = lines[3]
    assert long_row.startswith("suites/test_") and "case-12-many-params]" in long_row
    assert "…" in long_row and LONG not in long_row
    assert "PASS? n≈139" in long_row
    assert "XFAIL? n≈41" in lines[6]  # an inconclusive expected failure
    assert lines[-1].startswith("?: inconclusive")


def test_the_verdict_is_abbreviated_only_when_its_full_text_does_not_fit():
    records = [make_record("test_inconclusive_verdict_is_visible.py::test_borderline",
                           run=20, planned=20, passed=17, failed=3, min_pass_rate=0.8,
                           conclusive=False, samples_to_conclusive=347)]
    lines = summary_table(records, width=80).splitlines()
    assert max(map(len, lines)) <= 80
    assert "PASS (inconclusive, n≈347)" in lines[2]  # the test id gives way first ...
    assert len(lines[2].split()[0]) >= MIN_TEST_WIDTH  # ... down to MIN_TEST_WIDTH
    narrow = summary_table(records, width=60).splitlines()[2]
    assert "PASS? n≈347" in narrow or "PASS?" in narrow


def test_wide_enough_tables_keep_columns_by_priority():
    lines = summary_table(session_records(), width=120).splitlines()
    header = lines[0].split()
    for kept in ("test", "n", "rate", "CI", "req", "verdict"):
        assert kept in header
    # the first to go: calls, tokens, early stop, cost, then passed and failed
    assert "calls" not in header and "tokens" not in header and "cost" not in header
    # the full verdict still fits at 120
    assert "PASS (inconclusive, n≈139)" in lines[3]
    header = summary_table(session_records(), width=200).splitlines()[0].split()
    assert header[:5] == ["test", "n", "pass", "fail", "err"] and "cost" in header


def test_no_width_prints_every_column_and_shortens_nothing():
    records = session_records()
    table = summary_table(records)
    header = table.splitlines()[0]
    for name in FULL_HEADERS:
        assert name in header
    for r in records:
        assert r.nodeid in table
    assert "…" not in table
    assert "PASS (inconclusive, n≈139)" in table and "FAIL (inconclusive, n≈41) (xfail)" in table
    assert "154320" in table  # tokens, not abbreviated
    assert max(len(line) for line in table.splitlines()) > 200


def test_a_width_the_full_table_fits_gives_the_full_table():
    records = [make_record("tests/test_a.py::test_short")]
    assert summary_table(records, width=200) == summary_table(records)
    assert "run/planned" in summary_table(records, width=200)


def test_too_narrow_a_width_keeps_a_readable_test_id():
    table = summary_table(session_records(), width=30)
    row = table.splitlines()[3]
    assert len(row.split(" ")[0]) == MIN_TEST_WIDTH  # overflows rather than go shorter


def test_empty_tables():
    assert "run/planned" in summary_table([])
    assert summary_table([], width=60).splitlines()[0].split()[:2] == ["test", "n"]


def test_verdict_forms_keep_outcome_and_inconclusiveness():
    r = make_record("t.py::t", passed=85, failed=15, conclusive=False,
                    samples_to_conclusive=139)
    assert [verdict_label(r, form=f) for f in range(4)] == [
        "PASS (inconclusive, n≈139)", "PASS (inconcl., n≈139)", "PASS? n≈139", "PASS?"]
    failed = make_record("t.py::t", outcome="failed", xfail="known", conclusive=False)
    assert verdict_cell(failed) == "FAIL (inconclusive) (xfail)"
    assert verdict_cell(failed, 3) == "XFAIL?"
    xpass = make_record("t.py::t", xfail="known")
    assert verdict_cell(xpass) == "PASS (xpass)" and verdict_cell(xpass, 2) == "XPASS"
    error = make_record("t.py::t", outcome="error", passed=0, failed=0, errors=3)
    assert {verdict_cell(error, f) for f in range(4)} == {"ERROR"}


# -- check names ---------------------------------------------------------------------

NAMES = ["schema(VeryLongPydanticModelNameForExtractedPersonRecordsWithAddresses)",
         "max_words(50)", 'similar_to("The quick brown fox jumps over the lazy dog", 0.8)']


def checked_record() -> TestRecord:
    return make_record(LONG, checks=[check_stat(NAMES[0], 20), check_stat(NAMES[1], 10),
                                     check_stat(NAMES[2], 1)])


@pytest.mark.parametrize("width", WIDTHS)
def test_failing_checks_lines_fit_the_width(width):
    record = checked_record()
    short = make_record("tests/test_a.py::test_b", checks=[check_stat("max_words(50)", 3)])
    lines = failing_checks_lines([record, short], width=width)
    assert len(lines) == 2
    for line in lines:
        assert len(line) <= width, line
    assert lines[0].startswith("suites/te") and "params]: schema(" in lines[0]
    assert "20/100" in lines[0]
    assert lines[1] == "tests/test_a.py::test_b: max_words(50) 3/100"


def test_failing_checks_lines_without_width_are_unchanged():
    (line,) = failing_checks_lines([checked_record()])
    assert line == f"{LONG}: {NAMES[0]} 20/100, {NAMES[1]} 10/100, {NAMES[2]} 1/100"


@pytest.mark.parametrize("width", WIDTHS)
def test_check_line_fits_the_width(width):
    for name in NAMES:
        line = check_line(check_stat(name, 20), width=width)
        assert len(line) <= width, line
        assert line.startswith(name[:7]) and "  failed 20 of 100" in line
    line = check_line(check_stat(NAMES[1], 20), width=120)
    assert "pass rate 0.80 [0.71, 0.86]; samples 0, 5," in line


def test_check_line_without_width_is_unchanged():
    line = check_line(check_stat(NAMES[0], 2))
    assert line == (f"{NAMES[0]}  failed 2 of 100 (pass rate 0.98 [0.71, 0.86]; samples 0, 5)"
                    ": field required: address.street")


@pytest.mark.parametrize("width", WIDTHS)
def test_aggregates_table_fits_the_width(width):
    aggregate = Aggregate(
        test=LONG.split("[")[0], cases=12, passed=1000, failed=200, errors=3,
        pass_rate=1000 / 1200, interval=Interval(low=0.81, high=0.85, confidence=0.95),
        cases_passed=10, cases_failed=2)
    table = aggregates_table([aggregate], width=width)
    assert all(len(line) <= width for line in table.splitlines()), table
    row = table.splitlines()[2]
    assert "10/12" in row and "0.83" in row and "0.81" in row and "0.85" in row
    assert "cases passed" in aggregates_table([aggregate])


# -- injected faults -----------------------------------------------------------------

def fault_record() -> TestRecord:
    from report_data import make_fault_test

    return make_fault_test()


def test_explain_shows_the_pass_rate_by_injected_fault():
    from report_data import FAULT_PLAN

    lines = explain(fault_record()).splitlines()
    assert "pass rate by injected fault: rate_limit 10/11 (0.91), timeout 3/4 (0.75; 1 error), "\
           "server_error 1/1 (1.00), none 14/14 (1.00)" in lines
    assert f"faults injected: {FAULT_PLAN}" in lines
    # after the run line, before the checks
    assert lines.index(f"faults injected: {FAULT_PLAN}") == \
        next(i for i, line in enumerate(lines) if line.startswith("ran ")) + 1


def test_explain_without_faults_says_nothing_of_them():
    from report_data import make_test

    record = make_test("t.py::test_plain", "PPFF")
    assert "fault" not in explain(record)
    assert fault_lines([record]) == []


def test_fault_text_counts_passed_of_scored_and_says_the_errors():
    r = fault_record()
    assert [fault_text(f) for f in r.faults] == [
        "rate_limit 10/11 (0.91)", "timeout 3/4 (0.75; 1 error)", "server_error 1/1 (1.00)",
        "none 14/14 (1.00)"]
    assert fault_text(r.faults[1], rate=False) == "timeout 3/4 (1 error)"


def test_fault_lines_without_width_name_every_kind():
    (line,) = fault_lines([make_record("t.py::test_no_faults"), fault_record()])
    assert line == ("suites/test_d.py::test_survives_faults: rate_limit 10/11, "
                    "timeout 3/4 (1 error), server_error 1/1, none 14/14")


@pytest.mark.parametrize("width", (40, *WIDTHS))
def test_fault_lines_fit_the_width_keeping_the_worst_kinds(width):
    record = fault_record().model_copy(update={"nodeid": LONG})
    (line,) = fault_lines([record], width=width)
    assert len(line) <= width, line
    assert "timeout 3/4" in line  # the lowest rate is the last to go
    if width >= 200:
        assert line == f"{LONG}: rate_limit 10/11, timeout 3/4 (1 error), server_error 1/1, " \
                       "none 14/14"
    else:
        assert "…" in line


def test_fault_text_from_a_report_is_made_printable():
    record = fault_record()
    faults = [f.model_copy(update={"kind": "evil\x1b[2J"}) for f in record.faults]
    record = record.model_copy(update={"faults": faults, "fault_plan": "x\x1b]0;title\x07"})
    text = explain(record) + "\n".join(fault_lines([record], width=80))
    assert "\x1b" not in text and "\x07" not in text and "evil\\x1b[2J" in text
