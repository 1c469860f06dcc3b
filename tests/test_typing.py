"""A user's test file type-checks against llmcheck's public API.

mypy (``--strict``) runs in a subprocess over a test file such as a user writes:
``@llmcheck.repeat`` keeps the test's type, ``assert_schema(reply, Person)`` is a
``Person``, the ``llm`` fixture is an ``LLMClient`` whose calls return a
``Completion``. Planted mistakes (a misspelt keyword or attribute, a wrong choice,
assigning a ``Person`` to an ``int``) must each be flagged on their own line, so the
test proves that the types are real and not ``Any``.

One mypy run over two small files with a cache under ``tmp_path``; mypy reads
llmcheck and pydantic but reports only on the given files (``--follow-imports=silent``).
Measured here (2 cores, shared): 3-4.5 s of CPU, 9-15 s of wall time.
"""

from __future__ import annotations

import ast
import os
import re
import site
import subprocess
import sys
from pathlib import Path

import pytest

import llmcheck
from llmcheck.config.settings import MARKER_SETTINGS, SETTINGS
from llmcheck.injection.catalogue import KINDS

pytest.importorskip("mypy", reason="mypy is not installed: pip install -e '.[dev]'")

INIT = Path(llmcheck.__file__)

USER_FILE = '''\
from __future__ import annotations

from typing import Any

import llmcheck
from pydantic import BaseModel


class Person(BaseModel):
    name: str
    age: int


@llmcheck.repeat(min_pass_rate=0.9, verdict="sequential", interval="clopper-pearson")
def test_extracts_person(llm: llmcheck.LLMClient) -> None:
    reply = llm("Return Ada Lovelace as JSON with name and age.")
    person = llmcheck.assert_schema(reply, Person)
    reveal_type(person)  # expect: Person
    text: str = reply.text
    cost: float | None = reply.cost
    tokens: int | None = reply.usage.completion_tokens
    finish: str | None = reply.finish_reason
    data: Any = llmcheck.assert_json(reply.text, lenient=True)
    names: list[str] = [call.name for call in reply.tool_calls]
    assert person.age > 0 and text and data and (cost or 0) >= 0 and tokens != -1
    assert finish != "x" and not names


@llmcheck.repeat
def test_bare(llm: llmcheck.LLMClient) -> int:
    return len(llm.chat([{"role": "user", "content": "hi"}]).text)


@llmcheck.faults("rate_limit:0.3", seed=7)
@llmcheck.repeat(20)
async def test_async(llm: llmcheck.LLMClient) -> None:
    reply = await llm.acall("hi")
    llmcheck.assert_contains(reply, "hi")


reveal_type(test_extracts_person)  # expect: def (llm: llmcheck.model.client.LLMClient)
reveal_type(test_bare)  # expect: def (llm: llmcheck.model.client.LLMClient) -> int
reveal_type(test_async)  # expect: Coroutine


@llmcheck.repeat({every_setting})
@llmcheck.faults({every_kind})
def test_every_keyword() -> None:
    pass
'''

PLANTED_FILE = '''\
from __future__ import annotations

import llmcheck
from pydantic import BaseModel


class Person(BaseModel):
    name: str


@llmcheck.repeat(runz=5)  # planted: call-overload
def test_misspelt_keyword() -> None:
    pass


@llmcheck.repeat(verdict="sprt")  # planted: call-overload
def test_unknown_policy() -> None:
    pass


@llmcheck.faults(rate_limt=0.3)  # planted: call-overload
def test_misspelt_kind() -> None:
    pass


def test_wrong_types(llm: llmcheck.LLMClient) -> None:
    reply = llm("hi")
    x: int = llmcheck.assert_schema(reply, Person)  # planted: assignment
    print(reply.txt)  # planted: attr-defined
    llmcheck.assert_shema(reply, Person)  # planted: attr-defined
    print(x)
'''


def _example(name: str) -> str:
    """A valid value of the marker setting ``name``, as source text."""
    spec = SETTINGS[name]
    if spec.kind == "choice":
        return repr(spec.choices[-1])
    if spec.kind == "bool":
        return "True"
    if spec.kind == "latency":
        return repr("p95 ttft <= 1.5s")
    if spec.kind == "int":
        return "2"
    if spec.kind == "float":
        return "0.1"
    return repr("openai/gpt-4o-mini")


def _mypy(tmp_path: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    root = INIT.resolve().parents[1]
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if root not in installed:  # an editable install: mypy does not run its import hook
        env["MYPYPATH"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--config-file=", "--cache-dir", str(tmp_path / "mypy-cache"),
         "--no-color-output", "--no-error-summary", *files],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


def test_a_users_test_file_type_checks_and_planted_mistakes_are_flagged(tmp_path):
    every_setting = ", ".join(f"{name}={_example(name)}" for name in MARKER_SETTINGS)
    every_kind = ", ".join(f"{kind}=0.01" for kind in KINDS)
    user = USER_FILE.replace("{every_setting}", every_setting).replace(
        "{every_kind}", every_kind)
    (tmp_path / "test_user.py").write_text(user)
    (tmp_path / "planted.py").write_text(PLANTED_FILE)

    result = _mypy(tmp_path, "test_user.py", "planted.py")
    out = result.stdout + result.stderr
    lines = out.splitlines()

    user_errors = [line for line in lines if line.startswith("test_user.py") and ": error:" in line]
    assert not user_errors, f"the user's test file does not type-check:\n{out}"
    for number, source in enumerate(user.splitlines(), 1):
        if "# expect:" in source:
            expected = source.split("# expect:")[1].strip()
            notes = [line for line in lines if line.startswith(f"test_user.py:{number}: note:")]
            assert notes and expected in notes[0], (
                f"line {number} ({source.strip()}) should reveal {expected}:\n{out}")
    assert 'Revealed type is "test_user.Person"' in out

    planted = [(number, source.split("# planted:")[1].strip())
               for number, source in enumerate(PLANTED_FILE.splitlines(), 1)
               if "# planted:" in source]
    for number, code in planted:
        flagged = [line for line in lines
                   if line.startswith(f"planted.py:{number}: error:") and f"[{code}]" in line]
        assert flagged, f"mypy did not flag planted.py line {number} with [{code}]:\n{out}"
    # nothing else is flagged (a call no overload accepts also makes the decorator
    # untyped under --strict: a second error on the same planted line)
    flagged_lines = {int(line.split(":")[1]) for line in lines if ": error:" in line}
    assert flagged_lines == {number for number, _ in planted}, f"unexpected errors:\n{out}"
    assert result.returncode == 1


def test_every_keyword_the_user_file_passes_is_valid_at_run_time():
    """The keywords the typed signatures accept are the ones the run-time check accepts."""
    def test() -> None:
        pass

    settings = {name: eval(_example(name)) for name in MARKER_SETTINGS}  # noqa: S307
    marked = llmcheck.faults(**dict.fromkeys(KINDS, 0.01))(llmcheck.repeat(**settings)(test))
    assert marked is test
    assert [mark.name for mark in test.pytestmark] == ["llm", "llm_faults"]
    assert test.pytestmark[0].kwargs == settings


def test_the_typed_names_are_the_exported_names():
    """``__init__``'s TYPE_CHECKING imports, its lazy ``_EXPORTS`` table and ``__all__``
    name the same things from the same modules: an editor sees what ``import llmcheck``
    gives at run time."""
    tree = ast.parse(INIT.read_text())
    typed: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom) and stmt.module
                typed.setdefault(stmt.module, set()).update(a.name for a in stmt.names)
    exported = {module: set(names) for module, names in llmcheck._EXPORTS.items()}
    assert typed == exported
    assert sorted(llmcheck.__all__) == sorted({*llmcheck._MODULE_OF, "__version__"})
    for name in llmcheck.__all__:
        assert getattr(llmcheck, name) is not None


def test_repeat_keeps_a_clear_error_for_a_keyword_its_signature_lacks():
    with pytest.raises(llmcheck.UsageError, match=re.escape(
            "@llmcheck.repeat: unknown keyword runz=5 (did you mean runs?); accepted keywords: "
            "runs, ")):
        llmcheck.repeat(runz=5)  # type: ignore[call-overload]
    with pytest.raises(llmcheck.UsageError, match="unknown fault kind 'rate_limt'"):
        llmcheck.faults(rate_limt=0.3)  # type: ignore[call-overload]
