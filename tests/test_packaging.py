"""What an install of llmcheck puts on ``sys.path``.

The plugin lives in the folder ``pytest_plugin/`` (the layout the project card names)
but is installed under an import name of its own, ``llmcheck_pytest``: a top-level
``pytest_plugin`` package is a name another distribution could ship too. Because
setuptools cannot combine that mapping with package discovery, pyproject.toml lists
the packages by hand; a package added on disk but not listed there would be missing
from every wheel, so it is checked here.
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_on_disk_is_installed():
    on_disk = {".".join(path.parent.relative_to(ROOT).parts)
               for path in (ROOT / "llmcheck").rglob("__init__.py")}
    listed = set(_setuptools()["packages"])
    missing = sorted(on_disk - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    gone = sorted(name for name in listed - {"llmcheck_pytest"}
                  if not (ROOT / name.replace(".", "/")).is_dir())
    assert not gone, f"remove from [tool.setuptools] packages in pyproject.toml: {gone}"
    assert "llmcheck_pytest" in listed
    assert _setuptools()["package-dir"]["llmcheck_pytest"] == "pytest_plugin"


def test_the_plugin_is_registered_and_imported_as_llmcheck_pytest():
    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "llmcheck"]
    assert plugin.value == "llmcheck_pytest.plugin"
    module = plugin.load()
    assert module.__name__ == "llmcheck_pytest.plugin"
    assert "llmcheck_pytest.plugin" in sys.modules and "pytest_plugin.plugin" not in sys.modules


def test_no_top_level_pytest_plugin_package_is_installed(tmp_path):
    """Outside the checkout (which has the folder), ``pytest_plugin`` does not import."""
    code = ("import importlib.util, llmcheck_pytest.plugin; "
            "print(importlib.util.find_spec('pytest_plugin'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"
