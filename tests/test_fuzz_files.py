"""Fuzzing every file llmcheck reads: each reader of the registry
:data:`llmcheck.records.readers.READERS` (reports, baselines, what ``compare`` and
``history`` read, case files of each format, scenario files, cache rows, journal files),
so a reader joins by being registered there.

Each file is arbitrary bytes, arbitrary text, JSON or YAML built from nested values, or a
valid file mutated (truncated, bytes flipped, values swapped for values of the wrong
type or edge values such as -1, 10^30, inf and NaN, YAML tags, anchors and aliases
inserted, values nested hundreds to a hundred thousand deep: at random, and at every
field in turn). Exactly one outcome is allowed: the file is accepted, and then what the
reader returns satisfies the reader's invariants (counts >= 0, run <= planned, intervals
ordered, each test once, ...) and is usable (the report renders, the scenario serves); or
the reader raises its own error with a message, on one line. Any other exception fails
the test, and so does a reader that waits: a FIFO, a device or a folder is refused.
Derandomized, with bounded example counts: the same examples on every run, in seconds.
A reader with no valid example below still gets the generated files.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from report_data import check_stat, make_record, save_report

from llmcheck.cli.main import main
from llmcheck.records.readers import READERS, READERS_BY_NAME, Reader
from llmcheck.records.schema import FailureGroup, SampleRecord, load_session
from llmcheck.reports.terminal import (
    UNPRINTABLE,
    aggregates_table,
    explain,
    failing_checks_lines,
    summary_table,
)
from llmcheck.simulator.engine import Engine

EXAMPLES = int(os.environ.get("LLMCHECK_FUZZ_EXAMPLES", "30"))
"""Examples per reader and file type; a longer hunt:
LLMCHECK_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_files.py"""
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=EXAMPLES,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FUZZ, max_examples=max(1, EXAMPLES // 2))

# ------------------------------------------------------------------------ strategies

# text with any code point, lone surrogates and control characters included
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | any_text
           | st.sampled_from(["", "passed", "failed", "error", "threshold", "wilson", 0, 1,
                              2, 3, -1, 0.5, 1e308, "2024-01-01T00:00:00Z"]))
values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(any_text, children, max_size=4), max_leaves=20)
"""Nested JSON values: what a file of the right syntax but the wrong shape holds."""


@st.composite
def byte_mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` truncated, with bytes flipped, inserted, deleted or duplicated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "repeat"]))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from(
                [b'"', b"\n", b",", b"{", b"[", b"]", b"}", b":", b"- ", b"\x1b", b"\xff"]))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        else:
            data[at:at] = data[max(0, at - 20):at]
    return bytes(data)


def _slots(data: Any, depth: int) -> list[tuple[Any, Any]]:
    """Every (container, key) of a nested JSON value down to ``depth`` levels."""
    out, stack = [], [(data, 1)]
    while stack:
        node, level = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) \
            if isinstance(node, list) else []
        for key in keys:
            out.append((node, key))
            if level < depth:
                stack.append((node[key], level + 1))
    return out


@st.composite
def wrong_types(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` (a nested JSON value) with a few values replaced by values of any type,
    keys deleted or unknown keys added: the right structure, hand-edited wrongly."""
    data = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        # shallow fields as often as deep ones, though the deep ones are far more
        slots = _slots(data, draw(st.sampled_from([1, 2, 3, 4, 99])))
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        kind = draw(st.sampled_from(["replace", "replace", "edge", "delete", "add"]))
        if kind == "replace":
            container[key] = draw(values)
        elif kind == "edge":
            container[key] = draw(edge_of(container[key]))
        elif kind == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(any_text)] = draw(values)
        else:
            container.insert(key, draw(values))
    return data


def edge_of(value: Any) -> st.SearchStrategy[Any]:
    """Values of the type of ``value`` that code may not expect: empty, zero, negative,
    huge, not finite."""
    if isinstance(value, bool):
        return st.just(not value)
    if isinstance(value, int):
        return st.sampled_from([0, -1, -(2**63), 2**64, 10**30])
    if isinstance(value, float):
        return st.sampled_from([0.0, -0.0, -1.0, 1e308, float("inf"), float("nan")])
    if isinstance(value, str):
        return st.sampled_from(["", " ", "\n", "[", "::", "\x1b[2J", "\ud800", "x" * 500])
    if isinstance(value, list):
        return st.sampled_from([[], value * 3])
    if isinstance(value, dict):
        return st.just({})
    return st.none()


YAML_SNIPPETS = ["!!int ", "!!float ", "!!bool ", "!!timestamp ", "!!binary ", "!!set ",
                 "!!str ", "!!null ", "!!omap ", "!!python/object ", "&a ", "*a", "<<: *a",
                 "? ", "2020-13-01", "0x", "1" * 5000, "{", "[", "'", '"', "\t", "---\n",
                 "%YAML 1.1\n", "\ufeff", "\\ud800", "\x00"]


@st.composite
def yaml_mutations(draw: st.DrawFn, original: str) -> str:
    """``original`` with YAML tags, anchors, aliases and odd scalars inserted."""
    text = original
    for _ in range(draw(st.integers(1, 4))):
        values_at = [m.end() for m in re.finditer(r": |- ", text)]  # where a tag applies
        at = draw(st.sampled_from(values_at) if values_at and draw(st.booleans())
                  else st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(YAML_SNIPPETS)) + text[at:]
    return text


def dump_yaml(data: Any) -> str:
    # non-ASCII written as is or escaped, depending on the data (deterministically)
    return yaml.safe_dump(data, allow_unicode=len(json.dumps(data)) % 2 == 0,
                          sort_keys=False)


def serialized(data: Any, fmt: str) -> bytes:
    """``data`` as JSON or YAML bytes (JSON may hold NaN and lone surrogates escaped)."""
    if fmt == "yaml":
        return dump_yaml(data).encode("utf-8", "surrogatepass")
    return json.dumps(data).encode()


DEPTHS = [30, 300, 900, 990, 1100, 5000, 100_000]
"""Around what json.loads and recursive code accept (about 1000), and far beyond."""


def nested(n: int, kind: str) -> str:
    """JSON text of a list (``kind`` "[") or an object nested ``n`` deep."""
    return "[" * n + "]" * n if kind == "[" else '{"a":' * n + "1" + "}" * n


def with_deep_value(valid_data: Any, depth: int, index: int, deep: str) -> bytes:
    """``valid_data`` as JSON with its ``index``-th value down to ``depth`` levels
    replaced by the JSON text ``deep``."""
    data = copy.deepcopy(valid_data)
    container, key = _slots(data, depth)[index]
    container[key] = "\x00deep\x00"
    return json.dumps(data).replace(json.dumps("\x00deep\x00"), deep).encode()


@st.composite
def deep_values(draw: st.DrawFn, valid_data: Any) -> bytes:
    """``valid_data`` as JSON with one value (or the whole) nested ``DEPTHS`` deep."""
    deep = nested(draw(st.sampled_from(DEPTHS)), draw(st.sampled_from("[{")))
    depth = draw(st.sampled_from([1, 2, 3, 99]))
    slots = len(_slots(valid_data, depth))
    if not slots or draw(st.integers(0, 9)) == 0:
        return deep.encode()
    return with_deep_value(valid_data, depth, draw(st.integers(0, slots - 1)), deep)


def every_deep_variant(valid_data: Any) -> list[bytes]:
    """``valid_data`` as JSON with each of its values down to 3 levels in turn nested
    300 (parsed, but deeper than recursive code may go), 900 and 100,000 deep."""
    return [with_deep_value(valid_data, 3, index, nested(n, kind))
            for index in range(len(_slots(valid_data, 3)))
            for n in (300, 900, 100_000) for kind in "[{"]


def files(valid: bytes, valid_data: Any, fmt: str) -> st.SearchStrategy[bytes]:
    """Every kind of bad (or good) file content for a format whose valid example is
    ``valid`` (bytes) holding ``valid_data``."""
    kinds = [
        st.binary(max_size=300),
        any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        values.map(lambda v: serialized(v, fmt)),
        byte_mutations(valid),
        wrong_types(valid_data).map(lambda v: serialized(v, fmt)),
    ]
    if fmt == "yaml":
        kinds.append(yaml_mutations(valid.decode()).map(
            lambda t: t.encode("utf-8", "surrogatepass")))
    else:
        kinds.append(deep_values(valid_data))
    return st.one_of(kinds)


# ------------------------------------------------------------------ one outcome per file


def no_control_characters(text: str) -> None:
    found = UNPRINTABLE.search(text.replace("\n", ""))
    assert found is None, f"{found.group()!r} printed"


def report_renders(session: Any, path: Path) -> None:
    """An accepted report renders in every view, with nothing a terminal acts on."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["show", str(path), "--failures"]) == 0
    no_control_characters(out.getvalue())
    out.getvalue().encode("utf-8")  # what a UTF-8 terminal or pipe takes
    for width in (None, 30, 80):
        for text in [summary_table(session.tests, width=width),
                     aggregates_table(session.aggregates, width=width),
                     *failing_checks_lines(session.tests, width=width)]:
            no_control_characters(text)
    for test in session.tests:
        no_control_characters(explain(test))


REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hello world"}]}

USABLE = {
    "report": report_renders,
    "scenario": lambda scenario, path: (scenario.model_dump_json(),
                                        Engine(scenario).decide(REQUEST)),
}
"""What an accepted value must also be good for, beyond the reader's invariants."""


def check(reader: Reader, path: Path) -> Any:
    """Read ``path`` with ``reader``: accepted, with every invariant holding, or refused
    with the reader's error and a message (one line where the reader promises it). Any
    other exception propagates and fails the test. Returns what was accepted, or None."""
    try:
        value = reader.load(path)
    except reader.error_type as exc:
        message = str(exc)
        assert message.strip(), f"{type(exc).__name__} with no message"
        assert not reader.one_line or "\n" not in message, message
        return None
    problem = reader.problem(value)
    assert problem is None, f"{reader.name} accepted a file that breaks an invariant: {problem}"
    if reader.name in USABLE:
        USABLE[reader.name](value, path)
    return value


# ------------------------------------------------------------ valid files of each reader


def valid_report(tmp: Path) -> tuple[bytes, Any]:
    failing = make_record("tests/test_a.py::test_x[case-1]", outcome="failed", passed=3,
                          failed=7, checks=[check_stat("contains('x')", 3)])
    samples = [SampleRecord(index=0, seed=1, outcome="failed", duration=0.1, message="bad",
                            error_type="AssertionError", traceback="Traceback\n  bad")]
    failing = failing.model_copy(update={
        "samples": samples, "warnings": ["careful"],
        "failure_groups": [FailureGroup(outcome="failed", error_type="AssertionError",
                                        message="bad", count=7, samples=[0, 1],
                                        example="Traceback\n  bad")]})
    tests = [failing, make_record("tests/test_a.py::test_x[case-2]", calls=3, tokens=40)]
    path = save_report(tmp / "valid.json", tests)
    data = json.loads(path.read_text())
    data["warnings"] = ["a session warning"]
    data["options"] = {"runs": 10, "markers": ["llm"]}  # free-form: any JSON goes
    return json.dumps(data).encode(), data


def valid_baseline(tmp: Path, report: bytes) -> tuple[bytes, Any]:
    from llmcheck.gate.baseline import baseline_from_session, save_baseline

    (tmp / "for-baseline.json").write_bytes(report)
    path = save_baseline(baseline_from_session(load_session(tmp / "for-baseline.json")),
                         tmp / "baseline.json")
    return path.read_bytes(), json.loads(path.read_bytes())


def valid_journal(tmp: Path) -> tuple[bytes, Any]:
    """A journal file as a worker writes it: the session, a test's start with its
    settings, two samples and the end of the test."""
    from llmcheck_pytest.journal import Journal

    record = make_record("tests/test_j.py::test_j", run=4, planned=4, passed=2, failed=0)
    journal = Journal(tmp, "tok", "gw0", header={"seed": 7, "started": "2026-01-01T00:00:00"})
    journal.start(record.nodeid, record.settings, model="openai/m", simulated=False)
    for index, outcome in enumerate(["passed", "failed"]):
        journal.sample(record.nodeid, SampleRecord(index=index, seed=index, outcome=outcome,
                                                   duration=0.25, message="bad"))
    journal.done(record.nodeid)
    journal.close()
    data = journal.path.read_bytes()
    return data, [json.loads(line) for line in data.splitlines()]


CACHE_ROW = {"text": "Paris", "model": "openai/m", "finish_reason": "stop", "tool_calls": [
    {"name": "f", "arguments": "{}", "id": "c1"}], "usage": {"prompt_tokens": 3,
    "completion_tokens": 2}, "cost": 0.001, "latency": 0.2, "time_to_first_token": None,
    "retries": 0, "cached": False}

SCENARIO = {
    "name": "fuzz", "seed": 3, "latency": {"median_ms": 5, "p95_ms": 9},
    "errors": {"rate_limit": 0.1, "retry_after_s": 0.5},
    "faults": [{"kind": "server_error", "after": 0, "count": 1, "route": "greet"}],
    "routes": [
        {"name": "greet", "match": ["^hello", "(?P<who>\\w+)$"], "scope": "last_user",
         "answers": [{"text": "hi {{who}}", "template": True, "weight": 2},
                     {"text": "hey", "label": "casual", "finish_reason": "length"}]},
        {"name": "tool", "match": "weather", "requires_tool": "get_weather",
         "answers": [{"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    ],
    "default": {"answers": ["A short answer."]},
}

CASES = [
    {"name": "ada", "input": "Who wrote the first algorithm?", "expected": "Ada Lovelace",
     "tags": ["history", "smoke"]},
    {"name": "fr", "input": {"question": "Capital of France?"}, "expected": "Paris",
     "metadata": {"difficulty": "easy"}, "xfail": "known"},
    {"name": "haiku", "input": "Write a haiku,\nplease"},
]
CSV = ('name,input,expected,tags,metadata.source\r\n'
       'ada,Who wrote the first algorithm?,Ada Lovelace,history;smoke,wiki\r\n'
       'fr,"Capital of ""France""?",Paris,,\r\n'
       'haiku,"Write a haiku,\nplease",,,\r\n')


def cases_file(fmt: str) -> tuple[bytes, Any]:
    """A valid cases file of format ``fmt`` and the value it holds (for CSV: its rows)."""
    if fmt == "yaml":
        return dump_yaml({"cases": CASES}).encode(), {"cases": CASES}
    if fmt == "json":
        return json.dumps(CASES).encode(), CASES
    if fmt == "jsonl":
        return "".join(json.dumps(c) + "\n" for c in CASES).encode(), CASES
    return CSV.encode(), [row.split(",") for row in CSV.splitlines()]


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """A valid file (bytes, the value it holds) per reader and suffix."""
    tmp = tmp_path_factory.mktemp("examples")
    report = valid_report(tmp)
    out: dict[tuple[str, str], Any] = {
        ("report", ".json"): report, ("compare input", ".json"): report,
        ("history", ".json"): report, ("baseline", ".json"): valid_baseline(tmp, report[0]),
        ("journal", ".jsonl"): valid_journal(tmp),
        ("cache row", ".row"): (json.dumps(CACHE_ROW).encode(), CACHE_ROW),
        ("scenario", ".yaml"): (serialized(SCENARIO, "yaml"), SCENARIO),
        ("scenario", ".json"): (serialized(SCENARIO, "json"), SCENARIO),
    }
    for fmt in ("yaml", "json", "jsonl", "csv"):
        out[("cases", "." + fmt)] = cases_file(fmt)
    return out


def jsonl_content(valid: bytes, lines: list[Any]) -> st.SearchStrategy[bytes]:
    """JSON-lines files: the valid one mutated, and lines with values of wrong types."""
    return st.one_of(
        files(valid, lines, "json"),
        st.lists(st.sampled_from(lines).flatmap(wrong_types) | values, max_size=6).map(
            lambda rows: "".join(json.dumps(r) + "\n" for r in rows).encode()),
        st.lists(st.sampled_from(lines), min_size=1, max_size=8).flatmap(
            lambda rows: st.lists(wrong_types(rows), min_size=1, max_size=1)).map(
            lambda rows: "".join(json.dumps(r) + "\n" for r in rows[0]).encode()))


def csv_content(valid: bytes) -> st.SearchStrategy[bytes]:
    cells = any_text | st.sampled_from(["", '"', '""', '"a"b', '"open', "a,b", "x\ny"])
    rows = st.lists(st.lists(cells, max_size=6), max_size=5)
    return st.one_of(
        st.binary(max_size=300), byte_mutations(valid),
        rows.map(lambda rs: "\n".join(",".join(r) for r in rs).encode("utf-8",
                                                                       "surrogatepass")))


def content_for(suffix: str, example: Any) -> st.SearchStrategy[bytes]:
    """Generated files for a reader of ``suffix`` files with a valid ``example``
    (``None``: no example, generated files only)."""
    fmt = {".yaml": "yaml", ".yml": "yaml", ".jsonl": "jsonl", ".csv": "csv"}.get(suffix, "json")
    if example is None:
        return st.one_of(st.binary(max_size=300),
                         any_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                         values.map(lambda v: serialized(v, "yaml" if fmt == "yaml" else "json")))
    valid, data = example
    if fmt == "jsonl":
        return jsonl_content(valid, data)
    if fmt == "csv":
        return csv_content(valid)
    return files(valid, data, fmt)


REGISTERED = [pytest.param(r, s, id=f"{r.name}{s}") for r in READERS for s in r.suffixes]


# -------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(("reader", "suffix"), REGISTERED)
def test_reader_fuzz(tmp_path: Path, examples: dict[tuple[str, str], Any], reader: Reader,
                     suffix: str) -> None:
    @FUZZ
    @given(content=content_for(suffix, examples.get((reader.name, suffix))))
    def fuzz(content: bytes) -> None:
        path = tmp_path / f"file{suffix}"
        path.write_bytes(content)
        check(reader, path)

    fuzz()


@pytest.mark.parametrize(("reader", "suffix"), REGISTERED)
def test_every_valid_example_is_accepted(tmp_path: Path, examples: dict[tuple[str, str], Any],
                                         reader: Reader, suffix: str) -> None:
    """The examples the mutations start from are accepted: a mutation of a file every
    reader refuses would test the first check only."""
    if (reader.name, suffix) not in examples:
        pytest.skip(f"no valid example of {reader.name} {suffix}: generated files only")
    path = tmp_path / f"file{suffix}"
    path.write_bytes(examples[(reader.name, suffix)][0])
    assert check(reader, path) is not None


@pytest.mark.parametrize(("reader", "suffix"), [p for p in REGISTERED
                                                if p.values[0].takes != "text"])
def test_special_files_are_refused_at_once(tmp_path: Path, reader: Reader, suffix: str) -> None:
    """A FIFO (reading it would wait for a writer forever), a device (``/dev/zero`` never
    ends; here through a link with the reader's suffix) and a folder are refused with the
    reader's error, saying what they are (a folder given to ``history`` is a folder of
    reports, and this one holds none)."""
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    zero = tmp_path / f"zero{suffix}"
    zero.symlink_to("/dev/zero")
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    folder_says = "holds no .json report" if reader.takes == "paths" else "it is a folder"
    for path, says in [(fifo, "it is a FIFO"), (zero, "it is a character device"),
                       (folder, folder_says)]:
        with pytest.raises(reader.error_type, match=says):
            reader.load(path)


@pytest.mark.parametrize(("reader", "suffix"), [p for p in REGISTERED
                                                if p.values[1] in (".json", ".jsonl")])
def test_deep_nesting_in_every_field(tmp_path: Path, examples: dict[tuple[str, str], Any],
                                     reader: Reader, suffix: str) -> None:
    """Each value of the reader's example down to 3 levels nested deep in turn; a reader
    whose example an earlier reader has (compare and history read the report's) gets the
    whole file nested only: that example's every field is tried already."""
    example = examples.get((reader.name, suffix))
    earlier = [r.name for r in READERS[:READERS.index(reader)]]
    shared = any(examples.get((name, suffix)) is example for name in earlier)
    if example is None or suffix == ".jsonl" or shared:
        variants = [nested(n, kind).encode() for n in (300, 900, 100_000) for kind in "[{"]
    else:
        variants = every_deep_variant(example[1])
    path = tmp_path / f"file{suffix}"
    for content in variants:
        path.write_bytes(content)
        check(reader, path)


@st.composite
def wrong_v2_fields(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """``valid`` with values of any type in the fields a version 2 report had and the
    migration to version 3 reads."""
    data = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        test = draw(st.sampled_from(data["tests"]))
        key = draw(st.sampled_from(["verdict", "interval", "planned", "min_pass_rate",
                                    "confidence", "concurrency", "policy"]))
        target = test["verdict"] if key == "policy" and isinstance(test["verdict"], dict) \
            else test
        target[key] = draw(values)
    if draw(st.booleans()):
        data[draw(st.sampled_from(["warnings", "tests"]))] = draw(values)
    return data


def test_old_report_fuzz(tmp_path: Path, examples: dict[tuple[str, str], Any]) -> None:
    """Reports of schema versions 1 and 2 go through the migration first."""
    data = examples[("report", ".json")][1]

    @FUZZ
    @given(version=st.sampled_from([1, 2]), report=wrong_types(data) | wrong_v2_fields(data))
    def fuzz(version: int, report: Any) -> None:
        if isinstance(report, dict):
            report["schema_version"] = version
        path = tmp_path / "llmcheck.json"
        path.write_text(json.dumps(report))
        check(READERS_BY_NAME["report"], path)

    fuzz()


def test_shipped_scenario_fuzz(tmp_path: Path) -> None:
    """Mutations of the shipped default scenario: long, with every feature."""
    valid = (Path(__file__).parents[1] / "llmcheck" / "simulator" / "default.yaml").read_bytes()

    @FEW
    @given(content=byte_mutations(valid) | yaml_mutations(valid.decode()).map(str.encode))
    def fuzz(content: bytes) -> None:
        path = tmp_path / "scenario.yaml"
        path.write_bytes(content)
        check(READERS_BY_NAME["scenario"], path)

    fuzz()
