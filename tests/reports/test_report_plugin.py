"""A session writes llmcheck.md and llmcheck.html beside its JSON and appends the markdown
to $GITHUB_STEP_SUMMARY; ``llmcheck report`` re-renders any saved report; ``llmcheck show
--all`` explains passing tests with failing samples."""

from __future__ import annotations

import pytest
from report_data import make_session

from llmcheck.cli.main import main
from llmcheck.records.schema import save_session

SUITE = """
    import llmcheck

    @llmcheck.repeat(runs=8, min_pass_rate=0.5, concurrency=1, early_stop=False)
    def test_mostly_right(llm_sample):
        assert llm_sample.index % 4 != 1, "wrong | label <b>x</b>"
"""


def test_a_session_writes_markdown_and_html_beside_the_json(pytester, monkeypatch):
    summary = pytester.path / "step-summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(SUITE)
    result = pytester.runpytest("--llm-report-dir=out")
    result.assert_outcomes(passed=1)
    folder = pytester.path / "out"
    md, html = (folder / "llmcheck.md").read_text(), (folder / "llmcheck.html").read_text()
    assert "test_mostly_right" in md and "| 0.75 " in md and "wrong \\| label" in md
    assert html.startswith("<!doctype html>") and "test_mostly_right" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    for name in ("llmcheck.md", "llmcheck.html"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    result.stdout.fnmatch_lines([
        f"llmcheck report: {folder / 'llmcheck.json'}",
        f"llmcheck markdown: {folder / 'llmcheck.md'}",
        f"llmcheck html: {folder / 'llmcheck.html'}",
        f"llmcheck: markdown report appended to $GITHUB_STEP_SUMMARY ({summary})"])
    assert summary.read_text() == "# earlier step\n\n" + md
    # a second session appends again, after the first
    pytester.runpytest("--llm-report-dir=out").assert_outcomes(passed=1)
    assert summary.read_text().count("## llmcheck report") == 2


def test_the_step_summary_file_is_created_when_missing(pytester, monkeypatch):
    summary = pytester.path / "new" / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(SUITE)
    pytester.runpytest().assert_outcomes(passed=1)
    assert summary.read_text().startswith("\n## llmcheck report")


def test_an_unwritable_step_summary_is_a_warning_not_a_crash(pytester, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path))  # a folder
    pytester.makepyfile(SUITE)
    result = pytester.runpytest()
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        f"llmcheck: could not append the report to $GITHUB_STEP_SUMMARY ({pytester.path}): *"])
    assert (pytester.path / "reports" / "llmcheck.html").exists()


def test_no_step_summary_without_the_variable(pytester):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest()
    assert "GITHUB_STEP_SUMMARY" not in result.stdout.str()
    assert (pytester.path / "reports" / "llmcheck.md").exists()


def test_a_step_summary_over_githubs_limit_is_cut(monkeypatch, tmp_path):
    from llmcheck.reports import files as report_files

    path = save_session(make_session(), tmp_path / "llmcheck.json")
    monkeypatch.setattr(report_files, "STEP_SUMMARY_LIMIT", 2000)
    monkeypatch.setattr(report_files, "STEP_SUMMARY_ROWS", 1)
    views = report_files.write_views(path, {"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")})
    assert views.warnings == []
    full, cut = views.markdown.read_text(), (tmp_path / "s.md").read_text()
    assert len(cut) < len(full) and "4 more test(s)" in cut


# -- llmcheck report ----------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    return save_session(make_session(), tmp_path / "llmcheck.json")


def test_report_prints_the_markdown(saved, capsys):
    from llmcheck.records.schema import load_session
    from llmcheck.reports.markdown import render_markdown

    assert main(["report", str(saved)]) == 0
    assert capsys.readouterr().out == render_markdown(load_session(saved))


def test_report_writes_html_or_markdown_to_a_file(saved, tmp_path, capsys):
    assert main(["report", str(saved), "--format", "html", "-o", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r").read_text().startswith("<!doctype html>")
    assert main(["report", str(saved), "-o", str(tmp_path / "r.html")]) == 0  # by suffix
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    assert main(["report", str(saved), "-o", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text().startswith("## llmcheck report")
    out = capsys.readouterr().out
    assert f"llmcheck report: md report of 5 test(s) -> {tmp_path / 'r.md'}" in out


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read report"),
    ("{not json", "is not valid JSON"),
    ('{"schema_version": 999}', "has schema_version 999"),
])
def test_report_of_a_missing_or_broken_file_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert main(["report", str(path), "--format", "html"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("llmcheck: error: ") and message in line


def test_report_to_an_unwritable_file_is_one_line(saved, tmp_path, capsys):
    assert main(["report", str(saved), "-o", str(tmp_path)]) == 2  # a folder
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"llmcheck: error: cannot write {tmp_path}")


def test_show_all_explains_passing_tests_with_failing_samples(saved, capsys):
    assert main(["show", str(saved), "--failures"]) == 0
    failures = capsys.readouterr().out
    assert "_____ suites/test_b.py::test_fails[case-1] _____" in failures
    assert "test_hostile" not in failures.split("_____", 1)[1]
    assert main(["show", str(saved), "--all"]) == 0
    everything = capsys.readouterr().out
    assert "_____ suites/test_b.py::test_fails[case-1] _____" in everything
    assert "_____ suites/test_a.py::test_hostile[a|b`c] _____" in everything
    assert "llmcheck PASS: 18/20 scored samples passed" in everything
    assert "_____ suites/test_a.py::test_clean _____" not in everything  # nothing to explain
