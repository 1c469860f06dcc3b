"""The markdown report: parsed as GitHub would render it (markdown-it-py, tables on), its
tables hold the records' numbers, and model text cannot break a table or add HTML."""

from __future__ import annotations

import html as htmlmod
import re
from html.parser import HTMLParser

import pytest
from report_data import FAULT_PLAN, HOSTILE, make_session, make_test

from llmcheck.records.schema import SessionRecord
from llmcheck.reports.markdown import md_code, md_text, render_markdown

markdown_it = pytest.importorskip("markdown_it")

ALLOWED_TAGS = {"h2", "h3", "p", "ul", "li", "strong", "code", "table", "thead", "tbody",
                "tr", "th", "td", "br", "em"}


class Tables(HTMLParser):
    """The tables of rendered HTML as lists of rows of cell texts, and every tag seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.tags: set[str] = set()
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def render(markdown: str) -> str:
    return markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)


def parse(markdown: str) -> Tables:
    tables = Tables()
    tables.feed(render(markdown))
    return tables


def table_after(markdown: str, heading: str) -> list[dict[str, str]]:
    """The rows (header -> cell text) of the first table after ``### heading``."""
    section = markdown.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    rows = parse(section).tables[0]
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


@pytest.fixture(scope="module")
def session() -> SessionRecord:
    return make_session()


@pytest.fixture(scope="module")
def markdown(session) -> str:
    return render_markdown(session)


def test_the_tests_table_holds_every_record_and_its_numbers(session, markdown):
    rows = table_after(markdown, "Tests")
    assert [r["test"] for r in rows] == [t.nodeid for t in session.tests]
    for row, t in zip(rows, session.tests, strict=True):
        assert row["pass rate"].split()[0] == f"{t.pass_rate:.2f}"
        assert row["interval"] == f"[{t.interval.low:.2f}, {t.interval.high:.2f}]"
        assert row["required"] == f"{t.min_pass_rate:.2f}"
        assert row["samples (counted/planned)"] == f"{t.run}/{t.planned}"
        assert row["errors"] == str(t.errors)
        assert row["cost"] == f"${t.usage.cost:.4f}"
    verdicts = {r["test"].split("::")[1]: (r["verdict"], r["conclusive"]) for r in rows}
    assert verdicts == {
        "test_clean": ("PASS", "yes"), "test_hostile[a|b`c]": ("PASS", "yes"),
        "test_fails[case-1]": ("FAIL", "yes"), "test_fails[case-2]": ("PASS", "no, n≈139"),
        "test_known_bad": ("FAIL (xfail)", "yes")}
    # errors: the worst case beside the rate, and the note that says what it is
    assert rows[3]["pass rate"] == "1.00 (0.90)" and "worst case" in markdown


def test_the_header_names_the_session(session, markdown):
    head = markdown.split("### Tests")[0]
    assert head.startswith("## llmcheck report\n")
    assert "**3 passed, 2 failed (1 expected), 0 error(s); 1 inconclusive** (5 LLM test(s))" \
        in head
    assert "- model: `openai/m`" in head and "seed: 42" in head and "runs: per test" in head
    assert f"{session.usage.calls} call(s)" in head
    assert f"cost ${session.usage.cost:.4f}" in head
    assert "duration" in head


def test_checks_pooled_cases_and_top_messages(session, markdown):
    checks = table_after(markdown, "Checks")
    expected = [(t.nodeid, c) for t in session.tests for c in t.checks]
    assert [(r["test"], r["check"]) for r in checks] == [(n, c.name) for n, c in expected]
    for row, (_, c) in zip(checks, expected, strict=True):
        assert (row["failed"], row["evaluated"]) == (str(c.failed), str(c.evaluated))
        assert row["pass rate"] == f"{c.pass_rate:.2f}"

    pooled = table_after(markdown, "Pooled case rates")
    (a,) = session.aggregates
    assert pooled == [{"test (all cases)": "suites/test_b.py::test_fails", "cases": "2",
                       "cases passed": "1/2", "passed": str(a.passed), "failed": str(a.failed),
                       "errors": "2", "pass rate": f"{a.pass_rate:.2f}",
                       "interval": f"[{a.interval.low:.2f}, {a.interval.high:.2f}]"}]

    top = table_after(markdown, "Top failure messages")
    groups = sorted(((g.count, t.nodeid) for t in session.tests for g in t.failure_groups),
                    key=lambda x: -x[0])
    assert [(int(r["count"]), r["test"]) for r in top] == groups
    assert top[0]["message"].startswith("AssertionError: wrong answer")


def test_hostile_text_stays_text(markdown):
    """A message with |, backticks, a newline and HTML neither splits a cell nor adds
    an element: every table keeps its column count, and the text reads back as it was."""
    tables = parse(markdown)
    assert tables.tags <= ALLOWED_TAGS, tables.tags - ALLOWED_TAGS
    for table in tables.tables:
        assert len({len(row) for row in table}) == 1, table
    checks = table_after(markdown, "Checks")
    hostile = next(r for r in checks if "hostile" in r["test"])
    assert hostile["test"] == "suites/test_a.py::test_hostile[a|b`c]"
    assert hostile["first failure"].startswith(HOSTILE)  # shown verbatim, lines joined
    assert "second line | with a pipe <script>alert(3)</script>" in hostile["first failure"]
    top = table_after(markdown, "Top failure messages")
    assert any(r["message"] == "AssertionError: " + HOSTILE for r in top)
    html = render(markdown)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html


@pytest.mark.parametrize("text", [
    "a|b", "x`y``z", "line one\nline two", "<script>alert(1)</script>", "\\|", "[a](b) *c* _d_",
    "trailing backslash \\", "&lt;", "`", "| leading pipe"])
def test_escaped_text_reads_back_in_one_cell(text):
    markdown = f"| a | b |\n| --- | --- |\n| {md_text(text)} | {md_code(text)} |\n"
    tables = parse(markdown)
    assert tables.tags <= ALLOWED_TAGS
    (table,) = tables.tables
    assert table[1] == [text, " ".join(text.split("\n")).strip()]


def test_newlines_in_a_cell_become_line_breaks():
    html = render(f"| a |\n| --- |\n| {md_text('one | two' + chr(10) + 'three')} |\n")
    assert "<td>one | two<br>three</td>" in html


def test_control_characters_never_reach_the_file():
    t = make_test("t.py::test_esc\x1b[31m", "PF", message="red \x1b[31malert\x07")
    session = SessionRecord.assemble([t], seed=1, started=make_session().started)
    markdown = render_markdown(session)
    assert "\x1b" not in markdown and "\x07" not in markdown
    assert "\\x1b" in markdown


def test_max_rows_keeps_the_problems_first(session):
    markdown = render_markdown(session, max_rows=2)
    rows = table_after(markdown, "Tests")
    # the failures, errors and inconclusive verdicts come first; session order is kept
    assert [r["test"] for r in rows] == ["suites/test_b.py::test_fails[case-1]",
                                         "suites/test_c.py::test_known_bad"]
    assert "3 more test(s)" in markdown


def test_an_empty_session_renders():
    session = SessionRecord.assemble([], seed=3, started=make_session().started)
    markdown = render_markdown(session)
    assert markdown.startswith("## llmcheck report") and "### Tests" not in markdown


# -- faults injected -----------------------------------------------------------------

@pytest.fixture(scope="module")
def fault_session() -> SessionRecord:
    return make_session(faults=True)


@pytest.fixture(scope="module")
def fault_markdown(fault_session) -> str:
    return render_markdown(fault_session)


def test_the_faults_section_holds_the_pass_counts_per_fault_kind(fault_session,
                                                                 fault_markdown):
    t = fault_session.tests[-1]
    rows = table_after(fault_markdown, "Faults injected")
    assert [(r["test"], r["fault"]) for r in rows] == [
        (t.nodeid, k) for k in ("rate_limit", "timeout", "server_error", "none")]
    for row, f in zip(rows, t.faults, strict=True):
        assert (row["samples"], row["passed"], row["failed"], row["errors"]) == (
            str(f.samples), str(f.passed), str(f.failed), str(f.errors))
        assert row["pass rate"] == f"{f.pass_rate:.2f}"
        assert row["interval"] == f"[{f.interval.low:.2f}, {f.interval.high:.2f}]"
    assert [r["summary"] for r in rows] == [
        "10/11 when rate-limited", "3/4 on timeouts (1 error)", "1/1 on server errors",
        "14/14 with no fault"]
    assert [(r["samples"], r["passed"], r["failed"], r["errors"]) for r in rows] == [
        ("11", "10", "1", "0"), ("5", "3", "1", "1"), ("1", "1", "0", "0"),
        ("14", "14", "0", "0")]


def test_the_faults_section_comes_after_the_checks_and_names_the_plan(fault_markdown):
    headings = [line for line in fault_markdown.splitlines() if line.startswith("### ")]
    assert headings == ["### Tests", "### Pooled case rates", "### Checks",
                        "### Faults injected", "### Top failure messages"]
    section = fault_markdown.split("### Faults injected\n", 1)[1].split("\n### ", 1)[0]
    html = render(section)
    parser = Tables()
    parser.feed(html)
    assert parser.tags <= ALLOWED_TAGS, parser.tags - ALLOWED_TAGS
    # the plan (hostile text in it) reads back verbatim in one code span, as text
    codes = re.findall(r"<li><code>(.*?)</code>: <code>(.*?)</code></li>", html)
    assert [(htmlmod.unescape(a), htmlmod.unescape(b)) for a, b in codes] == [
        ("suites/test_d.py::test_survives_faults", FAULT_PLAN)]
    assert "<script>" not in html and "<img" not in html and "<b>" not in html


def test_hostile_fault_text_keeps_every_table_whole(fault_markdown):
    tables = parse(fault_markdown)
    assert tables.tags <= ALLOWED_TAGS, tables.tags - ALLOWED_TAGS
    for table in tables.tables:
        assert len({len(row) for row in table}) == 1, table
    top = table_after(fault_markdown, "Top failure messages")
    assert any(r["message"] == "AssertionError: under injected timeout: APIError: " + HOSTILE
               for r in top)


def test_no_faults_no_section(markdown):
    assert "fault" not in markdown.lower()


def test_the_other_sections_do_not_change_with_faults(session, fault_markdown):
    """The faulted test adds its rows; it changes nothing else of the report."""
    without = render_markdown(session)
    assert table_after(without, "Tests") == table_after(fault_markdown, "Tests")[:-1]
    assert table_after(without, "Checks") == table_after(fault_markdown, "Checks")[:-1]


def test_a_fault_plan_that_drew_no_fault_is_said(session):
    t = make_test("t.py::test_lucky", "PPPP", fault_plan="rate_limit:0.01 (seed 0)")
    assert t.faults == []
    markdown = render_markdown(SessionRecord.assemble([t], seed=1, started=session.started))
    section = markdown.split("### Faults injected\n", 1)[1]
    assert "- `t.py::test_lucky`: `rate_limit:0.01 (seed 0)`; no fault was drawn in its " \
           "samples" in section
    assert "| fault" not in section  # no empty table


def test_max_rows_keeps_the_failing_fault_rows(fault_session):
    markdown = render_markdown(fault_session, max_rows=2)
    rows = table_after(markdown, "Faults injected")
    assert [r["fault"] for r in rows] == ["rate_limit", "timeout"]
    assert "… 2 more fault row(s)" in markdown


def test_fault_views_describe_each_kind(fault_session):
    from llmcheck.injection.catalogue import KINDS
    from llmcheck.reports.view import FAULT_PHRASES, fault_phrase, session_view

    assert set(FAULT_PHRASES) == {*KINDS, "none"}  # a phrase for every kind
    view = session_view(fault_session)
    assert [t.fault_plan is not None for t in view.tests] == [False] * 5 + [True]
    (t,) = view.fault_tests
    assert [f.kind for f in view.faults] == [f.kind for f in t.faults]
    rate_limit, timeout, _, none = t.faults
    assert rate_limit.description == KINDS["rate_limit"]
    assert none.description == "no fault injected"
    assert (timeout.rate_text, timeout.interval_text) == ("0.75", "[0.30, 0.95]")
    assert fault_phrase("new_kind") == "under new_kind"


def test_a_fault_row_says_how_many_samples_recovered():
    from llmcheck.reports.view import FaultView

    def row(samples: int, passed: int, failed: int, errors: int, recovered: int) -> str:
        return FaultView(test="t", kind="rate_limit", description="", samples=samples,
                         passed=passed, failed=failed, errors=errors, rate=None, low=None,
                         high=None, required=0.9, recovered=recovered).summary

    assert row(0, 0, 0, 0, 15) == "all 15 recovered"
    assert row(2, 0, 1, 1, 4) == "0/1 when rate-limited (1 error, 4 recovered)"
    assert row(3, 3, 0, 0, 0) == "3/3 when rate-limited"
