"""The ``llmcheck`` command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmcheck.cli import main


def test_show_prints_the_table_of_a_saved_report(pytester, capsys):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=6, min_pass_rate=0.9, concurrency=1, early_stop=False)
        def test_flaky(llm_sample):
            assert llm_sample.index != 2, "wrong label"
    """)
    pytester.runpytest().assert_outcomes(failed=1)
    path = pytester.path / "reports" / "llmcheck.json"
    assert main(["show", str(path), "--failures"]) == 0
    out = capsys.readouterr().out
    assert "test_flaky" in out and "5/6" not in out.split("\n")[0]
    assert "FAIL" in out and "1x AssertionError: wrong label" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read report"),
        ("{not json", "is not valid JSON"),
        (json.dumps({"a": 1}), "is not an llmcheck report"),
        (json.dumps({"schema_version": 999}), "has schema_version 999"),
        (json.dumps({"schema_version": 1, "tests": "nope"}), "does not match the llmcheck schema"),
    ],
)
def test_show_rejects_bad_reports_clearly(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert main(["show", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "llmcheck.cli", "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("llmcheck ")
