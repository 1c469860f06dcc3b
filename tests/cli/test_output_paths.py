"""Output paths a user names (``report -o``, ``merge -o``, ``baseline save -o``): written
only when they are a regular file or a new path; a symlink is followed, never replaced;
a folder, FIFO or device is refused with one line naming it, exit 2 (issue 18, item 9).
And every folder llmcheck creates is 0700, parents included (item 11)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from report_data import save_report, session_records

from llmcheck.cli.main import main


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return save_report(tmp_path / "llmcheck.json", session_records())


@pytest.fixture
def shard(tmp_path: Path) -> Path:
    """A second report, of other tests, for ``merge``."""
    other = [t.model_copy(update={"nodeid": t.nodeid + "[shard2]"}) for t in session_records()]
    return save_report(tmp_path / "shard2.json", other)


def _null_device(path: Path) -> Path:
    """A character device node like /dev/null at ``path`` (needs root: CI and these
    machines run as root), so that no test ever points a writer at the real one."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


COMMANDS = {
    "report": lambda report, out: ["report", str(report), "-o", str(out)],
    "merge": lambda report, out: ["merge", str(report), str(report.parent / "shard2.json"),
                                  "-o", str(out)],
    "baseline save": lambda report, out: ["baseline", "save", str(report), "-o", str(out)],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_an_output_path_that_is_not_a_regular_file_is_refused(tmp_path, report, shard, capsys,
                                                               command, kind):
    out = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(out)  # writing here would block (or replace it)
    elif kind == "folder":
        out.mkdir()
    else:
        _null_device(out)
    before = os.lstat(out)
    assert main(COMMANDS[command](report, out)) == 2
    err = capsys.readouterr().err
    assert f"cannot write {out}: it is a" in err and "not a regular file" in err
    assert {"fifo": "FIFO", "folder": "folder", "device": "character device"}[kind] in err
    assert len(err.strip().splitlines()) == 1, err
    after = os.lstat(out)
    assert (after.st_ino, stat.S_IFMT(after.st_mode)) == (before.st_ino,
                                                          stat.S_IFMT(before.st_mode))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no tmp left


def test_a_symlink_given_with_o_is_followed_not_replaced(tmp_path, report, capsys):
    real = tmp_path / "published" / "report.md"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "latest.md"
    link.symlink_to(real)
    assert main(["report", str(report), "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "llmcheck report" in real.read_text().splitlines()[0]
    dangling = tmp_path / "next.html"
    dangling.symlink_to(tmp_path / "published" / "new.html")  # a link to a file to be made
    assert main(["report", str(report), "-o", str(dangling)]) == 0
    assert dangling.is_symlink() and "<html" in (tmp_path / "published" / "new.html").read_text()


def test_a_symlink_to_a_device_is_refused_and_the_device_stays(tmp_path, report, capsys):
    device = _null_device(tmp_path / "null")
    link = tmp_path / "out.md"
    link.symlink_to(device)
    assert main(["report", str(report), "-o", str(link)]) == 2
    assert "character device" in capsys.readouterr().err
    assert stat.S_ISCHR(os.stat(device).st_mode) and link.is_symlink()


def test_folders_llmcheck_creates_are_0700_and_existing_ones_keep_their_mode(tmp_path, report,
                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        assert main(["report", str(report), "-o", "a/b/c/report.md"]) == 0
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o755)
        assert main(["report", str(report), "-o", "shared/new/report.md"]) == 0
    finally:
        os.umask(old)
    modes = {p: stat.S_IMODE(os.stat(tmp_path / p).st_mode)
             for p in ("a", "a/b", "a/b/c", "shared", "shared/new")}
    assert modes == {"a": 0o700, "a/b": 0o700, "a/b/c": 0o700, "shared": 0o755,
                     "shared/new": 0o700}
    assert stat.S_IMODE(os.stat(tmp_path / "a/b/c/report.md").st_mode) == 0o600
