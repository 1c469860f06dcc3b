"""Bad input anywhere public gets a one-line error naming the file (and the line where it
applies) and what is accepted: a UsageError for what the user gives (cases and scenario
files), a ReportError for a report read back; never another exception. And what
``llmcheck show`` prints from a report cannot drive the terminal."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from report_data import make_record, save_report

from llmcheck.checks.cases import load_cases
from llmcheck.cli.main import main
from llmcheck.errors import ReportError, UsageError
from llmcheck.records.schema import (
    SCHEMA_VERSION,
    CheckStat,
    FailureGroup,
    Interval,
    load_session,
)
from llmcheck.reports.terminal import explain, failing_checks_lines, printable, summary_table
from llmcheck.simulator.cli import main as serve_main
from llmcheck.simulator.scenario import load_scenario

DEEP = 100_000
ATTACK = "\x1b[2J\x1b]0;pwned\x07"
"""Clears the screen, then sets the terminal's title (ended by BEL)."""


# ------------------------------------------------------------------------ cases files


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def test_a_csv_quote_never_closed_is_refused_at_the_line_it_opens(tmp_path):
    # before: the rest of the file became the input of case 'a' (2 cases read as 1)
    path = write(tmp_path / "c.csv", 'name,input\na,"unclosed\nb,two\n')
    with pytest.raises(UsageError, match=r"c\.csv: line 2: a quoted cell starts here and is "
                                         r"never closed \(a \" inside a quoted cell is "
                                         r"written \"\"\)$") as info:
        load_cases(path)
    assert "\n" not in str(info.value)


def test_the_line_of_an_unclosed_quote_counts_multi_line_cells_before_it(tmp_path):
    path = write(tmp_path / "c.csv", 'name,input\na,"two\nlines"\nb,"say ""hi"""\n'
                                     '"c\nc","open\nmore\n')
    with pytest.raises(UsageError, match=r"c\.csv: line 6: a quoted cell starts here"):
        load_cases(path)


def test_quoted_cells_with_newlines_and_escaped_quotes_still_load(tmp_path):
    path = write(tmp_path / "c.csv", 'name,input\r\na,"two\r\nlines"\r\nb,"say ""hi"""\r\n')
    assert [(c.name, c.input) for c in load_cases(path)] == [("a", "two\nlines"),
                                                             ("b", 'say "hi"')]


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("bad.csv", 'name,input\na,"x"y\n', r"bad\.csv: line 2: not valid CSV \(',' expected"),
    ("bad.csv", b"name,input\na,\xff\n", r"bad\.csv: line 2: not UTF-8 text \(byte 0xff\)"),
    ("bad.yaml", b"- name: \xfe\n", r"bad\.yaml: line 1: not UTF-8 text"),
    ("bad.yaml", "- {name: a, input: 2020-13-01}\n",
     r"not valid YAML \(cannot read timestamp value '2020-13-01' \(month must be in 1\.\.12\) "
     r"at line 1\)"),
    ("bad.yaml", "- {name: a, input: !!int x}\n", r"cannot read int value 'x'.* at line 1"),
    ("bad.yaml", "- {name: a, input: !!bool maybe}\n", r"cannot read bool value 'maybe'"),
    ("bad.yaml", "[" * DEEP, r"bad\.yaml: not valid YAML \(nested too deeply\)"),
    ("bad.yaml", "- name: a\n  input: \x00\n",
     r"not valid YAML \(character #x0000 is not allowed in YAML .* at line 2\)"),
    ("bad.json", "[" * DEEP + "]" * DEEP, r"bad\.json: not valid JSON \(nested too deeply\)"),
    ("bad.json", '[{"name": "a", "input": ' + "1" * 5000 + "}]",
     r"not valid JSON \(Exceeds the limit \(4300 digits\)"),
    ("bad.jsonl", '{"name": "a", "input": 1}\n' + "[" * DEEP,
     r"bad\.jsonl: line 2: not valid JSON \(nested too deeply\)"),
])
def test_bad_cases_files_are_usage_errors(tmp_path, name, content, expected):
    with pytest.raises(UsageError, match=expected) as info:
        load_cases(write(tmp_path / name, content))
    assert "\n" not in str(info.value)


def test_jsonl_lines_break_at_newlines_only(tmp_path):
    # U+2028 is allowed in a JSON string; str.splitlines() would break the line there
    path = write(tmp_path / "c.jsonl", '{"name": "a", "input": "x\u2028y"}\n')
    assert load_cases(path)[0].input == "x\u2028y"


# ---------------------------------------------------------------------------- reports


@pytest.mark.parametrize(("content", "expected"), [
    (bytes(range(256)), r"^report \S+r\.json is not UTF-8 text \(byte 0x80 on line 2\); "
                        r"llmcheck writes its reports as UTF-8 JSON$"),
    ('{"schema_version": 3}'.encode("utf-16"),
     r"^report \S+ is not UTF-8 text \(it is UTF-16; save it as UTF-8\)"),
    (("[" * DEEP + "]" * DEEP).encode(),
     r"^report \S+ is nested too deeply to be an llmcheck report$"),
    (('{"a":' * DEEP + "1" + "}" * DEEP).encode(), r"is nested too deeply"),
    (b'{"schema_version": 3, "seed": ' + b"1" * 5000 + b"}",
     r"^report \S+ is not valid JSON: Exceeds the limit"),
    (b'{"schema_version": 3, "tests": [', r"^report \S+ is not valid JSON: Expecting value"),
    (b'{"schema_version": "3"}',
     rf"has schema_version '3'; this llmcheck reads version {SCHEMA_VERSION} \(and migrates "
     rf"1 to {SCHEMA_VERSION - 1}\)"),
    (b'{"schema_version": true}', r"has schema_version True"),
    (b'{"schema_version": 2, "tests": [{"verdict": "passed"}]}',
     r"does not match the llmcheck schema version 2: tests\[0\]\.verdict: expected an "
     r"object, got str"),
    (b'{"schema_version": 2, "warnings": 5}', r"warnings: expected a list, got int"),
])
def test_unreadable_reports_are_report_errors(tmp_path, capsys, content, expected):
    path = write(tmp_path / "r.json", content)
    with pytest.raises(ReportError, match=expected) as info:
        load_session(path)
    assert "\n" not in str(info.value)
    assert main(["show", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"llmcheck: error: {info.value}\n"


def test_a_report_with_a_wrong_type_names_the_field_in_one_line(tmp_path):
    path = save_report(tmp_path / "r.json", [make_record("t.py::test_a")])
    data = json.loads(path.read_text())
    data["tests"][0]["run"] = "many"
    data["tests"][0]["passed"] = None
    write(path, json.dumps(data))
    with pytest.raises(ReportError, match=r"^report \S+ does not match the llmcheck schema: "
                                          r"tests\[0\]\.run: Input should be a valid integer.* "
                                          r"\(got 'many'\) \(and 1 more problem\(s\)\)$"):
        load_session(path)


# -------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("s.yaml", b"name: \xff\xfe\n", r"s\.yaml:1: scenario file is not UTF-8 text \(byte "
                                    r"0xff\); a scenario is a YAML or JSON file saved as UTF-8"),
    ("s.yaml", bytes(range(256)), r"s\.yaml:2: scenario file is not UTF-8 text \(byte 0x80\)"),
    ("s.json", "é".encode("latin-1"), r"s\.json:1: scenario file is not UTF-8 text"),
    ("s.yaml", "- a\n- b\n", r"s\.yaml: a scenario must be a mapping at the top level, got "
                             r"list"),
    ("s.yaml", "just text\n", r"a scenario must be a mapping at the top level, got str"),
    ("s.yaml", "a: " + "[" * DEEP, r"s\.yaml: invalid YAML in scenario file: nested too "
                                   r"deeply"),
    ("s.json", "[" * DEEP + "]" * DEEP, r"s\.json: invalid JSON in scenario file: nested too "
                                        r"deeply"),
    ("s.json", '{"seed": ' + "1" * 5000 + "}", r"s\.json: invalid JSON in scenario file: "
                                               r"Exceeds the limit"),
    ("s.yaml", "seed: !!int x\n", r"s\.yaml:1: invalid YAML in scenario file: cannot read "
                                  r"int value 'x'"),
    ("s.yaml", "name: x\ndescription: 2020-13-01\n", r"s\.yaml:2: .*cannot read timestamp"),
    ("s.yaml", "default:\n  answers:\n    - {text: a, weight: .inf}\n",
     r"default\.answers\[0\]\.weight: Input should be a finite number \(line 3\)"),
    ("s.yaml", "default:\n  answers:\n    - {text: a, weight: 1e308}\n    - {text: b, "
               "weight: 1e308}\n", r"weights add up to more than the largest number"),
    ("s.json", '{"default": {"answers": ["ok", "\\ud800"]}}',
     r"default\.answers\[1\]: '\\ud800' is not valid Unicode text \(a lone surrogate\)"),
    ("s.yaml", 'default:\n  answers: ["\\ud800"]\n', r"is not valid Unicode text .*\(line 2\)"),
])
def test_bad_scenario_files_are_usage_errors(tmp_path, name, content, expected):
    path = write(tmp_path / name, content)
    with pytest.raises(UsageError, match=expected) as info:
        load_scenario(path)
    assert str(path) in str(info.value)


def test_a_directory_or_a_missing_file_is_no_scenario(tmp_path):
    with pytest.raises(UsageError, match=r"^cannot read scenario file '\S+': it is a folder, not a "
                                         r"regular file; llmcheck reads only regular files$"):
        load_scenario(tmp_path)
    with pytest.raises(UsageError, match=r"^cannot read scenario file '\S+nope\.yaml': No such"):
        load_scenario(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("content", "expected"), [
    (b"name: \xff\n", "scenario file is not UTF-8 text"),
    (("a: " + "[" * DEEP).encode(), "invalid YAML in scenario file: nested too deeply"),
])
def test_serve_reports_a_bad_scenario_in_one_line(tmp_path, capsys, content, expected):
    path = write(tmp_path / "s.yaml", content)
    assert main(["serve", "--scenario", str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"llmcheck serve: error: {path}") and expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_refuses_a_port_out_of_range(capsys, port):
    # before: 99999 silently listened on 99999 - 65536 = 34463
    with pytest.raises(SystemExit) as info:
        serve_main(["serve", f"--port={port}"])
    assert info.value.code == 2
    assert f"argument --port: invalid port value: '{port}'" in capsys.readouterr().err


# ----------------------------------------------------------------- control characters


def attack_record():
    record = make_record(f"tests/test_x.py::test_{ATTACK}[a\tb]", outcome="failed",
                         passed=1, failed=9, low=0.02, high=0.4,
                         checks=[CheckStat(name=f"contains({ATTACK!s})", evaluated=10, passed=1,
                                           failed=9, pass_rate=0.1,
                                           interval=Interval(low=0.02, high=0.4,
                                                             confidence=0.95),
                                           failed_samples=[1], example=f"bad {ATTACK}")])
    group = FailureGroup(outcome="failed", error_type=f"Err{ATTACK}", message=f"msg {ATTACK}",
                         count=9, samples=[], example=f"Traceback\n  line {ATTACK}\r\nend\u202e")
    return record.model_copy(update={"failure_groups": [group],
                                     "warnings": [f"warn {ATTACK}"]})


def test_show_prints_no_escape_codes_from_a_report(tmp_path, capsys):
    path = save_report(tmp_path / "r.json", [attack_record()])
    data = json.loads(path.read_text())
    data["warnings"] = [f"session {ATTACK}"]
    write(path, json.dumps(data))
    assert main(["show", str(path), "--failures"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\t" not in out
    assert "\u202e" not in out
    assert re.search(r"test_\\x1b\[2J\\x1b\]0;pwned\\x07\[a +b\]", out)  # the node id
    assert "msg \\x1b[2J" in out and "warning: warn \\x1b" in out
    assert "warning: session \\x1b" in out
    assert "  line \\x1b[2J\\x1b]0;pwned\\x07\nend\\u202e" in out  # the traceback's lines


def test_every_view_neutralises_control_characters():
    record = attack_record()
    for text in (explain(record), summary_table([record]), summary_table([record], width=60),
                 "\n".join(failing_checks_lines([record])),
                 "\n".join(failing_checks_lines([record], width=60))):
        assert not any(ch in text for ch in "\x1b\x07\r\t\u202e"), text


@pytest.mark.parametrize(("text", "newlines", "expected"), [
    ("plain", False, "plain"),
    ("a\tb", False, "a   b"),
    ("a\nb\r\nc\rd", True, "a\nb\nc\\rd"),
    ("a\nb", False, "a\\nb"),
    ("\x00\x1b\x7f\x9b", False, "\\x00\\x1b\\x7f\\x9b"),
    ("x\u202ey\u2066\u2028", False, "x\\u202ey\\u2066\\u2028"),
    ("\ud800", False, "\\ud800"),
    ("héllo ✓ 漢字", False, "héllo ✓ 漢字"),
])
def test_printable(text, newlines, expected):
    assert printable(text, newlines=newlines) == expected
    assert printable(expected, newlines=newlines) == expected  # idempotent


def test_show_prints_a_report_path_that_is_not_valid_unicode(tmp_path, capsys):
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("POSIX file names are bytes")
    path = save_report(tmp_path / "r.json", [make_record("t.py::test_a")])
    odd = tmp_path / (b"r\xff.json").decode(sys.getfilesystemencoding(), "surrogateescape")
    path.rename(odd)
    assert main(["show", str(odd)]) == 0
    assert "r\\udcff.json" in capsys.readouterr().out
