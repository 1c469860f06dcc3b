"""Reports written before schema version 9 still load: a version-7 report (no fault
recovery, no budget-refused samples) and a version-8 report (no prompt and answer kept
for failing samples) read with those fields at their defaults, and are rendered like a
new one."""

from __future__ import annotations

import json

from report_data import make_session

from llmcheck.records.schema import SCHEMA_VERSION, load_session


def _as_version_7(value):
    """The same document as version 7 wrote it: without the fields version 8 added."""
    if isinstance(value, dict):
        return {k: _as_version_7(v) for k, v in value.items()
                if k not in ("recovered", "budget_refused", "exchanges")}
    if isinstance(value, list):
        return [_as_version_7(v) for v in value]
    return value


def test_a_version_7_report_loads_with_the_new_fields_at_their_defaults(tmp_path):
    data = json.loads(make_session(faults=True).model_dump_json())
    old = {**_as_version_7(data), "schema_version": 7}
    assert '"recovered":' not in json.dumps(old) and '"budget_refused":' not in json.dumps(old)
    path = tmp_path / "v7.json"
    path.write_text(json.dumps(old))
    session = load_session(path)
    assert session.schema_version == SCHEMA_VERSION == 10
    faulted = [t for t in session.tests if t.faults]
    assert faulted, "the example session has a test with injected faults"
    for test in session.tests:
        assert all(row.recovered == 0 for row in test.faults)
        for sample in test.samples:
            assert sample.budget_refused is False
            assert all(f.recovered is False for f in sample.faults)
    # everything else reads back unchanged
    assert [t.nodeid for t in session.tests] == [t["nodeid"] for t in data["tests"]]
    assert [t.verdict.outcome for t in session.tests] == \
        [t["verdict"]["outcome"] for t in data["tests"]]


def test_a_version_7_report_renders(tmp_path):
    from llmcheck.reports.html import render_html
    from llmcheck.reports.markdown import render_markdown

    data = json.loads(make_session(faults=True).model_dump_json())
    path = tmp_path / "v7.json"
    path.write_text(json.dumps({**_as_version_7(data), "schema_version": 7}))
    session = load_session(path)
    markdown = render_markdown(session)
    assert "### Faults injected" in markdown and "recovered" in markdown
    assert "<html" in render_html(session)


def _as_version_8(value):
    """The same document as version 8 wrote it: without ``samples[].exchanges``."""
    if isinstance(value, dict):
        return {k: _as_version_8(v) for k, v in value.items() if k != "exchanges"}
    if isinstance(value, list):
        return [_as_version_8(v) for v in value]
    return value


def test_a_version_8_report_loads_without_prompts_and_answers_and_renders(tmp_path):
    from llmcheck.reports.html import render_html
    from llmcheck.reports.markdown import render_markdown

    data = json.loads(make_session().model_dump_json())
    old = {**_as_version_8(data), "schema_version": 8}
    assert '"exchanges":' not in json.dumps(old)
    path = tmp_path / "v8.json"
    path.write_text(json.dumps(old))
    session = load_session(path)
    assert session.schema_version == SCHEMA_VERSION == 10
    assert all(s.exchanges == [] for t in session.tests for s in t.samples)
    assert [len(t.samples) for t in session.tests] == [len(t["samples"]) for t in data["tests"]]
    assert "### Top failure messages" in render_markdown(session)
    assert "<html" in render_html(session)
