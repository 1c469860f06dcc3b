"""Files read back are bounded and checked (issue 18, items 13 and 14).

Item 13: a report's numbers are validated when it is loaded: an infinite duration
crashed ``llmcheck report`` (OverflowError), counts of 10^30 crashed ``compare``,
negative counts, an inverted interval, run > planned and a test listed twice were
believed (``-8/40 ... PASS``), and ``baseline save`` dropped a negative-count test
without a word. Each is now one ``llmcheck: error:`` line naming the field.

Item 14: a YAML alias bomb in a case file ran for a minute into MemoryError; ``llmcheck
show`` on a FIFO hung and on /dev/zero died with MemoryError. Only regular files are
read, at most ``MAX_READ_BYTES``, and aliases may not blow a document up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from report_data import make_record, save_report

from llmcheck.cli.main import main
from llmcheck.errors import UsageError


def _report(tmp_path: Path, change: Any) -> Path:
    """A valid two-test report with ``change(data)`` applied to its JSON."""
    path = save_report(tmp_path / "base.json", [
        make_record("t.py::test_a", run=40, planned=40, passed=30, failed=10),
        make_record("t.py::test_b", run=40, planned=40, passed=38, failed=2)])
    data = json.loads(path.read_text())
    change(data)
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps(data))
    return bad


def _set(where: str, **values: Any):
    """A change setting ``values`` in the first test (``test``), its interval
    (``interval``) or its settings (``settings``)."""
    def change(data: dict[str, Any]) -> None:
        target = data["tests"][0]
        if where != "test":
            target = target[where]
        target.update(values)
    return change


BAD = [
    (_set("test", duration=float("inf")),
     "tests[0].duration: inf is not a finite number; every number in a report is finite"),
    (_set("test", passed=10**30),
     "tests[0].passed: 1e+30 is out of range; whole numbers lie within +-(2^63 - 1)"),
    (_set("test", passed=-8), "tests[0].passed: -8 is negative; counts are >= 0"),
    (_set("interval", low=0.9, high=0.2),
     "tests[0].interval.low: 0.9 is above high (0.2); an interval's bounds are ordered"),
    (_set("test", run=41),
     "tests[0].run: 41 is more than planned (40); a test runs at most the samples it plans"),
    (_set("test", passed=35),
     "tests[0].passed + failed + errors: 45 is more than run (40); only samples that ran "
     "are counted"),
    (lambda d: d["tests"].append(d["tests"][0]),
     "tests[2].nodeid: 't.py::test_a' is listed twice (also tests[0]); a report holds each "
     "test once"),
    (_set("test", pass_rate=1.5),
     "tests[0].pass_rate: 1.5 is outside [0, 1]; rates and probabilities lie in [0, 1]"),
    (_set("settings", runs=10**6),
     "tests[0].settings.runs: 1000000 is more than 100000, the most samples a test may plan"),
    (lambda d: d.update(duration=float("nan")),
     "duration: nan is not a finite number; every number in a report is finite"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
@pytest.mark.parametrize("command", ["show", "report", "compare", "merge", "baseline save",
                                     "history"])
def test_every_reader_of_reports_refuses_a_bad_number_in_one_line(
        tmp_path, capsys, change, message, command):
    bad = str(_report(tmp_path, change))
    good = str(save_report(tmp_path / "good.json", [make_record("t.py::test_c")]))
    argv = {"show": ["show", bad], "report": ["report", bad],
            "compare": ["compare", good, bad], "merge": ["merge", good, bad, "-o",
                                                         str(tmp_path / "m.json")],
            "baseline save": ["baseline", "save", bad, "-o",
                              str(tmp_path / "baseline.json")],
            "history": ["history", good, bad]}[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == f"llmcheck: error: report {bad}: {message}\n"
    assert "PASS" not in captured.out
    assert not (tmp_path / "baseline.json").exists() and not (tmp_path / "m.json").exists()


def test_a_baseline_with_counts_beyond_a_run_is_refused(tmp_path, capsys):
    """A baseline's per-run counts are those of one run of a test (at most 100,000
    samples): 10^30 used to reach the exact test and crash ``compare``."""
    report = save_report(tmp_path / "r.json", [make_record("t.py::test_a")])
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", "save", str(report), "-o", str(baseline)]) == 0
    data = json.loads(baseline.read_text())
    data["tests"][0]["history"][0]["passed"] = data["tests"][0]["passed"] = 10**30
    baseline.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["compare", str(baseline), str(report)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"llmcheck: error: baseline {baseline} is invalid: "
                          "tests[0].history[0].passed: ") and err.count("\n") == 1, err


# -------------------------------------------------------------------- item 14: bounds


def test_show_refuses_a_fifo_and_a_device_at_once(tmp_path):
    """In a subprocess: on the code before this issue, ``show`` on a FIFO waited for a
    writer forever; the bound is a guard against hanging the suite, not a measurement."""
    fifo = tmp_path / "llmcheck.json"
    os.mkfifo(fifo)
    for path, kind in [(fifo, "a FIFO (named pipe)"), ("/dev/zero", "a character device")]:
        try:
            done = subprocess.run([sys.executable, "-m", "llmcheck.cli.main", "show", str(path)],
                                  capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"llmcheck show {path} did not return")
        assert done.returncode == 2, done.stderr
        assert done.stderr == (f"llmcheck: error: cannot read report {path}: it is {kind}, "
                               "not a regular file; llmcheck reads only regular files\n")


def test_a_file_beyond_the_size_limit_is_refused_unread(tmp_path, monkeypatch, capsys):
    import llmcheck.files

    path = save_report(tmp_path / "r.json", [make_record("t.py::test_a")])
    monkeypatch.setattr(llmcheck.files, "MAX_READ_BYTES", path.stat().st_size - 1)
    assert main(["show", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"llmcheck: error: cannot read report {path}: it is larger than "
        f"{path.stat().st_size - 1:,} bytes, the most llmcheck reads "
        "(llmcheck.files.MAX_READ_BYTES)\n")


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs in a valid case file: the input of its one case is a list of
    nine aliases of a list of nine aliases ... of a string, 9^10 strings once expanded
    (the old code accepted the file; a test that walked the input ran out of memory)."""
    lines = ["laughs:", '  - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"  - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    lines += ["cases:", f"  - {{name: laugh, input: *l{levels}}}"]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_in_a_case_file_is_refused_quickly(tmp_path):
    from llmcheck.checks.cases import load_cases

    path = tmp_path / "cases.yaml"
    path.write_text(alias_bomb())
    started = time.perf_counter()
    with pytest.raises(UsageError, match=r"cases\.yaml: not valid YAML \(aliases expand the "
                       r"document by more than 1,000,000 nodes \(an alias bomb\?\); .* at line "
                       r"\d+\)$") as refused:
        load_cases(path)
    elapsed = time.perf_counter() - started
    assert "\n" not in str(refused.value)
    # for the report, not a limit: the old code ran for about a minute into MemoryError
    print(f"alias bomb refused in {elapsed:.2f} s")


def test_aliases_within_reason_still_read(tmp_path):
    """Anchors, aliases and merge keys as a case file uses them."""
    from llmcheck.checks.cases import load_cases

    path = tmp_path / "cases.yaml"
    path.write_text("defaults: &d {tags: [smoke], metadata: {lang: en}}\n"
                    "cases:\n"
                    "  - {<<: *d, name: a, input: one}\n"
                    "  - {<<: *d, name: b, input: two}\n")
    assert [(c.name, c.tags, c.metadata) for c in load_cases(path)] == [
        ("a", ("smoke",), {"lang": "en"}), ("b", ("smoke",), {"lang": "en"})]


def test_a_yaml_structure_that_contains_itself_is_refused(tmp_path):
    from llmcheck.simulator.scenario import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text("name: x\nroutes: &r [{name: a, match: x, answers: *r}]\n")
    with pytest.raises(UsageError, match=r"alias \*r refers to a node that holds it"):
        load_scenario(path)
