"""No library module over 500 lines: a module that long holds two subjects (the design
page's rule), and a newcomer should be able to read any one of them in a sitting."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 500


def long_modules(root: Path) -> list[str]:
    """``path: N lines`` for every module of the library and the plugin over LIMIT."""
    found = []
    for folder in ("llmcheck", "pytest_plugin"):
        for path in sorted((root / folder).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > LIMIT:
                found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def test_no_library_module_is_over_500_lines() -> None:
    found = long_modules(ROOT)
    assert not found, (f"modules over {LIMIT} lines: split each by what its parts own "
                       "(see llmcheck/model/ for an example):\n" + "\n".join(found))


def test_the_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "llmcheck").mkdir()
    (tmp_path / "pytest_plugin").mkdir()
    (tmp_path / "llmcheck" / "big.py").write_text("x = 1\n" * (LIMIT + 1))
    (tmp_path / "llmcheck" / "small.py").write_text("x = 1\n" * LIMIT)
    assert long_modules(tmp_path) == [f"llmcheck/big.py: {LIMIT + 1} lines"]
