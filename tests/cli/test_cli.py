"""The ``llmcheck`` command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from report_data import LONG, make_record, save_report, session_records

from llmcheck.cli.main import main


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
    proc = subprocess.run([sys.executable, "-m", "llmcheck.cli.main", "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("llmcheck ")


def show(capsys, monkeypatch, *args: str, tty: bool, columns: int = 80) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))  # shutil.get_terminal_size reads it first
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    assert main(["show", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_show_fits_the_table_to_the_terminal(tmp_path, capsys, monkeypatch):
    path = save_report(tmp_path / "a-directory-with-a-long-name" / "llmcheck.json",
                       session_records())
    lines = show(capsys, monkeypatch, str(path), tty=True, columns=80)
    assert max(map(len, lines)) <= 80, "\n".join(lines)
    assert lines[0].startswith("llmcheck report ") and lines[0].endswith(": 5 test(s), seed 7")
    assert lines[1].split()[:2] == ["test", "n"]
    assert any("case-12-many-params]" in line and "…" in line for line in lines)


def test_show_wide_prints_every_column(tmp_path, capsys, monkeypatch):
    path = save_report(tmp_path / "llmcheck.json", session_records())
    lines = show(capsys, monkeypatch, str(path), "--wide", tty=True, columns=80)
    assert max(map(len, lines)) > 100
    assert "run/planned" in lines[1] and "early stop" in lines[1] and "cost" in lines[1]
    assert any(LONG in line for line in lines)


def test_show_into_a_pipe_or_file_prints_every_column(tmp_path, capsys, monkeypatch):
    # a pipe or a file with no width set: cutting what goes into it would lose data for good
    path = save_report(tmp_path / "llmcheck.json", session_records())
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert main(["show", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) > 100 and any(LONG in line for line in lines)
    assert not any("…" in line for line in lines)


def test_show_into_a_pipe_honours_columns_as_pytest_does(tmp_path, capsys, monkeypatch):
    """Issue 18, item 21: one width rule for ``llmcheck show`` and pytest's summary:
    COLUMNS set means that width, a terminal or not (it printed 180-character rows)."""
    path = save_report(tmp_path / "llmcheck.json", session_records())
    lines = show(capsys, monkeypatch, str(path), tty=False, columns=80)
    assert max(map(len, lines)) <= 80, "\n".join(lines)
    assert any("case-12-many-params]" in line and "…" in line for line in lines)
    # the rule both use
    from llmcheck.reports.table import fit_width

    assert fit_width(False, lambda: 999) == 80
    monkeypatch.delenv("COLUMNS")
    assert fit_width(False, lambda: 999) is None and fit_width(True, lambda: 999) == 999


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_show_in_a_real_terminal_fits_its_width(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    path = save_report(tmp_path / "llmcheck.json", session_records())
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "llmcheck.cli.main", "show", str(path)],
                            stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the program exited and closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    lines = b"".join(chunks).decode().replace("\r\n", "\n").splitlines()
    assert lines[1].split()[:2] == ["test", "n"]
    assert max(map(len, lines)) <= 80, "\n".join(lines)


@pytest.fixture(scope="module")
def big_report(tmp_path_factory) -> Path:
    """A report whose table is much larger than a pipe's buffer (64 KiB on Linux)."""
    tests = [make_record(f"{LONG[:-1]}-{i}]", calls=100, tokens=12345, cost=0.01)
             for i in range(2000)]
    return save_report(tmp_path_factory.mktemp("big") / "llmcheck.json", tests)


@pytest.mark.parametrize("reader", ["head -1", "read one line, then close"])
def test_show_into_a_closed_pipe_exits_quietly(big_report, reader):
    cmd = [sys.executable, "-m", "llmcheck.cli.main", "show", str(big_report)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if reader == "head -1":
        if shutil.which("head") is None:
            proc.kill()
            pytest.skip("no head")
        head = subprocess.Popen(["head", "-1"], stdin=proc.stdout, stdout=subprocess.PIPE)
        proc.stdout.close()  # only head reads it now: when head exits, the pipe is closed
        first = head.communicate(timeout=120)[0].decode()
    else:
        first = proc.stdout.readline().decode()
        proc.stdout.close()
    stderr = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    assert first.startswith("llmcheck report ")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert stderr == ""
    assert status == 141  # 128 + SIGPIPE, as a shell reports for cat or grep
