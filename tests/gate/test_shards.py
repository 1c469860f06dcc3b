"""Beyond one machine and into other tools: --llm-shard, llmcheck merge, JUnit
properties, and the report as a pandas DataFrame."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

import llmcheck
from llmcheck.cli.main import main
from llmcheck.errors import ReportError
from llmcheck.gate.merge import merge_reports
from llmcheck.records.schema import SCHEMA_VERSION

SUITE = """
    import pytest, llmcheck

    @pytest.mark.parametrize("i", range(12))
    @llmcheck.repeat(runs=6, verdict="threshold", min_pass_rate=0.5)
    def test_llm(i, llm_sample):
        assert llm_sample.index != 0 or i % 3

    def test_plain():
        pass
"""


def run_shard(pytester, i: int, n: int, *args: str):
    result = pytester.runpytest(f"--llm-shard={i}/{n}", f"--llm-report-dir=r{i}",
                                "--llm-seed=3", *args)
    data = json.loads((pytester.path / f"r{i}" / "llmcheck.json").read_text())
    return result, data


def test_shards_split_the_llm_tests_and_merge_into_the_whole_suite(pytester, capsys):
    pytester.makepyfile(SUITE)
    whole = pytester.runpytest("--llm-seed=3", "--llm-report-dir=all")
    whole.assert_outcomes(passed=13)
    everything = json.loads((pytester.path / "all" / "llmcheck.json").read_text())
    shards = [run_shard(pytester, i, 3) for i in (1, 2, 3)]
    names = [{t["nodeid"] for t in data["tests"]} for _, data in shards]
    # a partition of the LLM tests: disjoint, together all of them, none empty here
    assert set.union(*names) == {t["nodeid"] for t in everything["tests"]}
    assert sum(map(len, names)) == 12 and all(names)
    for (result, data), i in zip(shards, (1, 2, 3), strict=True):
        assert data["shard"] == f"{i}/3"
        outcomes = result.parseoutcomes()
        assert outcomes["passed"] == len(names[i - 1]) + 1  # the plain test runs in each
    # stable: the same split again
    assert {t["nodeid"] for t in run_shard(pytester, 2, 3)[1]["tests"]} == names[1]
    paths = [str(pytester.path / f"r{i}" / "llmcheck.json") for i in (1, 2, 3)]
    out = pytester.path / "merged.json"
    assert main(["merge", *paths, "-o", str(out)]) == 0
    merged = llmcheck.load_report(out)
    assert merged.merged_from == paths and merged.shard is None
    assert {t.nodeid for t in merged.tests} == {t["nodeid"] for t in everything["tests"]}
    # same seed, same samples: the merged counts are the whole run's
    by_id = {t["nodeid"]: (t["passed"], t["failed"]) for t in everything["tests"]}
    assert {t.nodeid: (t.passed, t.failed) for t in merged.tests} == by_id
    assert merged.usage.calls == everything["usage"]["calls"]


def test_merge_refuses_the_same_test_twice_and_mixed_schema_versions(pytester, capsys):
    pytester.makepyfile(SUITE)
    run_shard(pytester, 1, 2)
    one = pytester.path / "r1" / "llmcheck.json"
    with pytest.raises(ReportError, match=r"::test_llm\[\d+\] is in both .*r1.* and .*r1"):
        merge_reports([one, one])
    data = json.loads(one.read_text())
    old = pytester.path / "old.json"
    old.write_text(json.dumps({**data, "schema_version": 4, "tests": []}))
    with pytest.raises(ReportError, match=rf"different schema versions: .*\(schema_version "
                                          rf"{SCHEMA_VERSION}\), .*old.json \(schema_version 4\)"):
        merge_reports([one, old])
    assert main(["merge", str(one), "-o", "x.json"]) == 2
    assert "needs two or more reports" in capsys.readouterr().err
    assert main(["merge", str(one), str(pytester.path / "missing.json"), "-o", "x.json"]) == 2
    assert "missing.json" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0/3", "4/3", "1", "a/b", "1/0"])
def test_a_bad_shard_is_a_usage_error(pytester, value):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(f"--llm-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--llm-shard={value} is invalid*expected i/n with 1 <= i "
                                 "<= n, e.g. 2/4"])


def test_junit_carries_the_pass_rate_of_passing_and_failing_tests(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=10, verdict="threshold", min_pass_rate=0.5, early_stop=False)
        def test_good(llm_sample):
            assert llm_sample.index != 3

        @llmcheck.repeat(runs=4, verdict="threshold", min_pass_rate=0.9, early_stop=False)
        def test_bad(llm_sample):
            assert llm_sample.index == 0
    """)
    pytester.runpytest("--junitxml=junit.xml", "-n", "2").assert_outcomes(passed=1, failed=1)
    cases = {case.get("name"): {p.get("name"): p.get("value")
                                for p in case.iter("property")}
             for case in ET.parse(pytester.path / "junit.xml").iter("testcase")}
    good, bad = cases["test_good"], cases["test_bad"]
    assert good["pass_rate"] == "0.9" and good["verdict"] == "passed"
    assert good["samples"] == "10" and good["required"] == "0.5"
    assert float(good["interval_low"]) < 0.9 < float(good["interval_high"])
    assert good["conclusive"] in ("true", "false")
    assert bad["pass_rate"] == "0.25" and bad["verdict"] == "failed"


def test_a_report_is_a_dataframe_of_samples(pytester, report):
    pandas = pytest.importorskip("pandas")
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=5, verdict="threshold", min_pass_rate=0.5, early_stop=False)
        def test_x(llm_sample):
            assert llm_sample.index != 2, "two is wrong"
    """)
    pytester.runpytest().assert_outcomes(passed=1)
    frame = llmcheck.load_report(pytester.path / "reports" / "llmcheck.json").to_frame()
    assert isinstance(frame, pandas.DataFrame) and len(frame) == 5
    assert list(frame["index"]) == [0, 1, 2, 3, 4]
    assert frame.loc[frame["outcome"] == "failed", "message"].str.startswith(
        "two is wrong").all()
    assert frame.groupby("nodeid")["outcome"].apply(lambda s: (s == "passed").mean()).iloc[0] \
        == 0.8


def _session(rates: dict[str, tuple[int, int]], started: str) -> llmcheck.SessionRecord:
    from datetime import datetime

    from report_data import make_record  # a TestRecord from counts

    from llmcheck.records.schema import SessionRecord

    tests = [make_record(nodeid, run=scored, planned=scored, passed=passed,
                         failed=scored - passed) for nodeid, (passed, scored) in rates.items()]
    return SessionRecord.assemble(tests, seed=1, started=datetime.fromisoformat(started))


def test_history_lays_runs_side_by_side_and_names_real_moves(tmp_path, capsys):
    from llmcheck.records.schema import save_session

    runs = {"2026-11-03T10:00:00+00:00": {"t.py::a": (19, 20), "t.py::b": (18, 20)},
            "2026-11-01T10:00:00+00:00": {"t.py::a": (20, 20), "t.py::b": (17, 20)},
            "2026-11-02T10:00:00+00:00": {"t.py::a": (19, 20), "t.py::b": (18, 20),
                                          "t.py::c": (5, 10)},
            "2026-11-04T10:00:00+00:00": {"t.py::a": (6, 20), "t.py::b": (17, 20)}}
    (tmp_path / "dir").mkdir()
    for i, (started, rates) in enumerate(runs.items()):
        save_session(_session(rates, started), tmp_path / "dir" / f"r{i}.json")
    assert main(["history", str(tmp_path / "dir")]) == 0
    out = capsys.readouterr().out
    header, rule, *rows = out.split("\n\n")[0].splitlines()
    assert "1: 2026-11-01 10:00" in header and "4: 2026-11-04 10:00" in header
    a = next(r for r in rows if r.startswith("t.py::a"))
    assert a.split()[1:9] == ["1.00", "(20/20)", "0.95", "(19/20)", "0.95", "(19/20)",
                              "0.30", "(6/20)"]
    assert "down at 4 (p=" in a   # 19/20 -> 6/20 is real
    assert "moved" not in next(r for r in rows if r.startswith("t.py::b")).split("(")[-1]
    assert all("at" not in r for r in rows if not r.startswith("t.py::a"))
    c = next(r for r in rows if r.startswith("t.py::c"))
    assert c.split()[1] == "-" and "0.50 (5/10)" in c
    assert main(["history", str(tmp_path / "dir" / "r0.json")]) == 2
    assert "two or more reports" in capsys.readouterr().err


def test_the_html_report_draws_each_tests_trend_from_the_history(tmp_path, capsys):
    import re

    from llmcheck.records.schema import save_session
    from llmcheck.reports.html import render_html

    history = {"2026-11-01T10:00:00+00:00": {"t.py::a": (20, 20), "t.py::b": (17, 20)},
               "2026-11-02T10:00:00+00:00": {"t.py::a": (19, 20)},
               "2026-11-03T10:00:00+00:00": {"t.py::a": (15, 20), "t.py::b": (18, 20)}}
    (tmp_path / "old").mkdir()
    for i, (started, rates) in enumerate(history.items()):
        save_session(_session(rates, started), tmp_path / "old" / f"r{i}.json")
    head = _session({"t.py::a": (10, 20), "t.py::b": (18, 20), "t.py::new": (3, 4)},
                    "2026-11-04T10:00:00+00:00")
    save_session(head, tmp_path / "head.json")
    assert "svg class=\"spark\"" not in render_html(head)  # no history, no sparkline
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "head.json"), "-o", str(out), "--history",
                 str(tmp_path / "old"), str(tmp_path / "head.json")]) == 0
    html = out.read_text()
    titles = dict(re.findall(r'<svg class="spark"[^>]*><title>pass rate over 4 runs, oldest '
                             r'first: ([^<]*)</title>(.*?)</svg>', html))
    assert set(titles) == {"1.00, 0.95, 0.75, 0.50", "0.85, -, 0.90, 0.90", "-, -, -, 0.75"}
    # a run without the test is a gap: b is drawn as a dot, then a line over runs 3 and 4
    assert titles["1.00, 0.95, 0.75, 0.50"].count("<polyline") == 1
    assert titles["0.85, -, 0.90, 0.90"].count("<polyline") == 1
    assert "<polyline" not in titles["-, -, -, 0.75"]
    assert main(["report", str(tmp_path / "head.json"), "--history", str(tmp_path)]) == 2
    assert "--history draws sparklines in the HTML report" in capsys.readouterr().err
