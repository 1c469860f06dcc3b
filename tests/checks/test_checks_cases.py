"""Golden datasets: llmcheck.cases() loads, validates and parametrizes cases."""

from __future__ import annotations

import os

import pytest

from llmcheck.checks import Case, assert_golden, cases, load_cases
from llmcheck.errors import UsageError

HERE = os.path.dirname(__file__)


def test_yaml_cases_resolve_relative_to_the_calling_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not the tests directory: resolution uses this file's folder
    loaded = load_cases("data/checks/suite.yaml")
    assert [c.name for c in loaded] == ["ada", "capital-fr", "open-ended"]
    ada, capital, haiku = loaded
    assert ada.input == "Who wrote the first published algorithm?"
    assert ada.expected == "Ada Lovelace" and ada.tags == ("history", "smoke")
    assert capital.input["question"] == "Capital of France?"
    assert capital.tags == ("smoke",) and capital.metadata == {"difficulty": "easy"}
    assert haiku.expected is None and haiku.metadata == {}


def test_cases_returns_pytest_params_with_the_case_name_as_id():
    params = cases("data/checks/suite.yaml")
    assert [p.id for p in params] == ["ada", "capital-fr", "open-ended"]
    assert all(isinstance(p.values[0], Case) for p in params)


def test_tag_filter():
    assert [c.name for c in load_cases("data/checks/suite.yaml", tags=["history"])] == ["ada"]
    assert len(load_cases("data/checks/suite.yaml", tags="smoke")) == 2


def test_jsonl_csv_and_json():
    jsonl = load_cases("data/checks/suite.jsonl")
    assert [(c.name, c.expected) for c in jsonl] == [("sum", 4), ("json", {"a": 1})]
    rows = load_cases("data/checks/suite.csv")
    assert rows[0].tags == ("history", "smoke")
    assert rows[0].metadata == {"difficulty": "easy", "source": "wiki"}
    assert rows[1].input == "Write a haiku, please" and rows[1].expected is None
    assert [c.name for c in load_cases(os.path.join(HERE, "data/checks/suite.json"))] == [
        "one", "two"]


def test_cwd_is_the_fallback(monkeypatch):
    monkeypatch.chdir(os.path.join(HERE, "data"))
    assert len(load_cases("checks/suite.json")) == 2


def test_missing_file_lists_where_it_looked():
    with pytest.raises(UsageError) as info:
        load_cases("nope/x.yaml")
    message = str(info.value)
    assert "no such file 'nope/x.yaml'; looked in" in message
    assert os.path.join(HERE, "nope", "x.yaml") in message


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_errors_name_the_file_the_case_and_the_field(tmp_path):
    path = _write(tmp_path, "x.yaml", (
        "- name: ok\n  input: 1\n"
        "- name: two\n  input: 2\n"
        "- input: 3\n  expected: 3\n"))
    with pytest.raises(UsageError) as info:
        load_cases(path)
    assert str(info.value).endswith("x.yaml: case 3 (line 5): field 'name' is required")

    path = _write(tmp_path, "y.yaml", "- name: ada\n  expeced: 1\n  input: x\n")
    with pytest.raises(UsageError, match=r"case 1 \('ada', line 1\): field 'expeced' is not "
                                         r"allowed \(accepted: name, input"):
        load_cases(path)

    path = _write(tmp_path, "z.yaml", "- name: ada\n- name: bob\n  input: 2\n")
    with pytest.raises(UsageError, match=r"case 1 \('ada', line 1\): field 'input' is required"):
        load_cases(path)


def test_duplicate_names_are_rejected(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"name": "a", "input": 1}\n{"name": "a", "input": 2}\n')
    with pytest.raises(UsageError, match=r"d.jsonl: case 2 \('a', line 2\): name 'a' is already "
                                         r"used by case 1"):
        load_cases(path)


@pytest.mark.parametrize("name, text, expected", [
    ("bad.yaml", "- name: [unclosed\n", "not valid YAML"),
    ("bad.json", "[{", "not valid JSON"),
    ("bad.jsonl", '{"name": "a", "input": 1}\n{oops}\n', "line 2: not valid JSON"),
    ("scalar.yaml", "just a string\n", "expected a list of cases"),
    ("empty.yaml", "", "holds no cases"),
    ("item.json", '["a"]', "case 1: expected a mapping"),
    ("tags.json", '[{"name": "a", "input": 1, "tags": 5}]', "field 'tags'"),
    ("cases.txt", "name,input\n", "unknown file type '.txt'"),
    ("ragged.csv", "name,input\na,1,extra\n", "line 2: more cells than header columns"),
    ("num.yaml", "- name: 42\n  input: x\n", "field 'name': Input should be a valid string"),
])
def test_malformed_files(tmp_path, name, text, expected):
    with pytest.raises(UsageError, match=expected):
        load_cases(_write(tmp_path, name, text))


@pytest.mark.parametrize("case", cases("data/checks/suite.json"))
def test_each_case_is_its_own_item(case: Case, request):
    assert request.node.callspec.id == case.name
    assert_golden(case.expected, case.expected, "normalized")
