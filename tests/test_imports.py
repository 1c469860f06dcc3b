"""Imports run one way: a lower layer never imports a higher one, and no packages
import each other in a circle.

The table :data:`LAYERS` ranks every package of ``llmcheck/`` (and the plugin) from
the bottom up. ``A <- B`` means B may import A, never the reverse; packages of one
rank may import each other, but only one way (no circle between packages).

What counts as an import (read with :mod:`ast` from the source, nothing is run):

- every ``import`` and ``from ... import`` anywhere in a module: at the top, inside a
  function, a method or a ``try``. An import hidden in a function still runs, later,
  and still ties the layers together, so it obeys the same rule;
- ``from llmcheck import stats`` imports ``llmcheck.stats`` (a submodule), while
  ``import llmcheck`` and ``from llmcheck import __version__`` import the public API
  (``llmcheck/__init__.py``), which sits near the top: it re-exports the layers below;
- the module names in ``llmcheck/__init__.py``'s ``_EXPORTS`` table and in
  ``importlib.import_module("llmcheck....")`` calls: imports made at attribute access;
- imports under ``if TYPE_CHECKING:`` obey the same direction rule: they never run,
  but a lower layer that names a higher layer's types depends on it in meaning (and a
  type checker follows it); a lower layer that needs such a type declares a Protocol
  of its own. They are left out of the circle check, because a circle that never runs
  cannot break an import; the direction rule already keeps them from spanning ranks.
- a circle between packages can only form within one rank (any other circle holds a
  wrong-way import, which is named on its own); between modules, a circle of imports
  that run at import time is caught (one inside a function is the usual way out);
- :data:`PENDING` lists the wrong-way imports not fixed yet, each with its fix.

Importing ``llmcheck.x`` also runs ``llmcheck/__init__.py`` and the package's own
``__init__``; those implicit edges are not counted (``llmcheck/__init__.py`` imports
nothing at module level: its names load on first use).

The library needs none of this at run time, so the table lives here, in the test.
"""

from __future__ import annotations

import ast
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[tuple[str, ...]] = [
    # 0: plain building blocks every layer may use
    ("errors", "redact", "files", "loopback", "text", "version", "config"),
    # 1: statistics on counts
    ("stats",),
    # 2: the records of a run, and what is derived from samples
    ("records",),
    # 3: running samples: sample context, runner, decorator
    ("core",),
    # 4: calling models, checking answers, injecting faults, the simulator
    ("model", "checks", "injection", "simulator", "strategies", "episodes"),
    # 5: views of saved records, the regression gate, and the public API that
    #    re-exports the layers below (``llmcheck/__init__.py``)
    ("reports", "gate", "llmcheck"),
    # 6: the entry points
    ("cli", "plugin"),
]
"""Every package (a folder of ``llmcheck/``, a top-level module, the public API
``llmcheck`` and the pytest ``plugin``), bottom first."""

RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

PLUGIN_NAMES = ("pytest_plugin", "llmcheck_pytest")
"""The plugin's folder and import names: either may appear in an import."""

PENDING: dict[tuple[str, str], str] = {
}
"""Wrong-way imports outside this change's files, each with its fix, allowed until
fixed. An entry that no longer matches an import fails the test, so the list only
shrinks."""


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is, and how it runs."""

    file: str  # relative to the source root, with / separators
    line: int
    importer: str  # the importing module, e.g. llmcheck.stats.intervals
    target: str  # the imported module, e.g. llmcheck.model.client
    type_only: bool  # under ``if TYPE_CHECKING:``
    top_level: bool  # runs when the module is imported (not in a function)


def plugin_folder(root: Path) -> Path:
    for name in PLUGIN_NAMES:
        if (root / name / "__init__.py").exists():
            return root / name
    raise AssertionError(f"no plugin package ({' or '.join(PLUGIN_NAMES)}) under {root}")


def source_modules(root: Path) -> dict[str, Path]:
    """Every module of the library and the plugin by dotted name (the plugin under
    its folder's name)."""
    out = {}
    for folder in (root / "llmcheck", plugin_folder(root)):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def unit_of(module: str) -> str | None:
    """The package of ``module`` that the table ranks, or None outside the project."""
    parts = module.split(".")
    if parts[0] in PLUGIN_NAMES:
        return "plugin"
    if parts[0] != "llmcheck":
        return None
    if len(parts) == 1:
        return "llmcheck"
    return parts[1]


def _canonical(module: str) -> str:
    """A plugin module under its folder's name, whichever name the import used."""
    head, _, rest = module.partition(".")
    if head in PLUGIN_NAMES:
        return ".".join(["plugin", rest]) if rest else "plugin"
    return module


class _Reader(ast.NodeVisitor):
    """Collects the imports of one module, knowing whether each sits under
    ``if TYPE_CHECKING:`` and whether it is inside a function."""

    def __init__(self, module: str, is_package: bool, file: str, known: set[str]) -> None:
        self.module, self.is_package, self.file, self.known = module, is_package, file, known
        self.type_only = 0
        self.functions = 0
        self.found: list[Import] = []

    def _add(self, target: str, line: int) -> None:
        if unit_of(target) is None:
            return
        self.found.append(Import(self.file, line, self.module, target, self.type_only > 0,
                                 self.functions == 0))

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = self.module.split(".")
        if not self.is_package:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        if guarded:
            self.type_only += 1
            for child in node.body:
                self.visit(child)
            self.type_only -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _function(self, node: ast.AST) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            # ``from llmcheck import stats`` imports the submodule llmcheck.stats
            self._add(sub if _canonical(sub) in self.known else base, node.lineno)

    def visit_Assign(self, node: ast.Assign) -> None:
        # llmcheck/__init__.py: ``_EXPORTS = {"llmcheck.core.decorator": (...), ...}``
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if "_EXPORTS" in names and isinstance(node.value, ast.Dict):
            for key in node.value.keys:
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    self._add(key.value, key.lineno)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Name) and node.value is not None:
            self.visit_Assign(ast.Assign(targets=[node.target], value=node.value,
                                         lineno=node.lineno))
        else:
            self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name == "import_module" and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            self._add(node.args[0].value, node.lineno)
        self.generic_visit(node)


def read_imports(root: Path) -> list[Import]:
    """Every project-internal import of every module under ``root``."""
    modules = source_modules(root)
    known = {_canonical(name) for name in modules}
    out: list[Import] = []
    for module, path in modules.items():
        file = path.relative_to(root).as_posix()
        reader = _Reader(module, path.name == "__init__.py", file, known)
        reader.visit(ast.parse(path.read_text(encoding="utf-8"), filename=file))
        out += reader.found
    return out


def unranked(imports: list[Import], root: Path) -> list[str]:
    """Packages that exist (or are imported) but have no place in :data:`LAYERS`."""
    units = {unit_of(m) for m in source_modules(root)} | {unit_of(i.target) for i in imports}
    return [f"package {u!r} has no rank: add it to LAYERS in tests/test_imports.py "
            "(bottom first) where its imports allow"
            for u in sorted(u for u in units if u is not None and u not in RANK)]


def wrong_way(imports: list[Import]) -> list[str]:
    """One line per import of a higher layer (minus :data:`PENDING`)."""
    out = []
    for imp in imports:
        a, b = unit_of(imp.importer), unit_of(imp.target)
        if a is None or b is None or a not in RANK or b not in RANK or RANK[b] <= RANK[a]:
            continue
        if (imp.file, imp.target) in PENDING:
            continue
        kind = " (under TYPE_CHECKING)" if imp.type_only else ""
        out.append(f"{imp.file}:{imp.line} imports {imp.target}{kind}: {a} (rank {RANK[a]}) "
                   f"may not import {b} (rank {RANK[b]})")
    return out


def stale_pending(imports: list[Import]) -> list[str]:
    """Entries of :data:`PENDING` that no longer match a wrong-way import."""
    seen = {(i.file, i.target) for i in imports}
    return [f"PENDING entry {file} -> {target} matches no import any more: remove it"
            for file, target in PENDING if (file, target) not in seen]


def _cycles(edges: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each in
    a stable order, smallest name first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _describe(component: list[str], edges: dict[str, dict[str, list[Import]]]) -> str:
    """The shortest circle through the component's first member, each step with one
    import that makes it."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    queue = [start]
    while queue:  # breadth first, inside the component, until back at the start
        node = queue.pop(0)
        for nxt in sorted(n for n in edges[node] if n in members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                path = [start, *reversed(path[:-1]), start]
                queue = []
                break
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    steps = []
    for a, b in zip(path, path[1:], strict=False):
        imp = edges[a][b][0]
        steps.append(f"{imp.file}:{imp.line} imports {imp.target}")
    return " -> ".join(path) + " (" + "; ".join(steps) + ")"


def circles(imports: list[Import]) -> list[str]:
    """Circles between packages (every import that runs, also inside functions), and
    between modules through imports that run when a module is loaded."""
    packages: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    modules: dict[str, dict[str, list[Import]]] = defaultdict(lambda: defaultdict(list))
    for imp in imports:
        if imp.type_only or (imp.file, imp.target) in PENDING:
            continue  # a pending wrong-way import is already named with its fix
        a, b = unit_of(imp.importer), unit_of(imp.target)
        if a is not None and b is not None and a != b and RANK.get(b, 0) <= RANK.get(a, 0):
            # a wrong-way import is named on its own; circles are those of one rank
            packages[a][b].append(imp)
        if imp.top_level and imp.importer != imp.target:
            modules[_canonical(imp.importer)][_canonical(imp.target)].append(imp)
    out = [f"circle between packages {_describe(c, packages)}: packages may import each "
           "other only one way" for c in _cycles(packages)]
    out += [f"circle between modules loaded at import {_describe(c, modules)}: one of them "
            "cannot finish loading before the other" for c in _cycles(modules)]
    return out


def problems(root: Path) -> list[str]:
    imports = read_imports(root)
    return unranked(imports, root) + wrong_way(imports) + circles(imports) + \
        stale_pending(imports)


def test_imports_run_one_way() -> None:
    found = problems(ROOT)
    assert not found, "imports that break the layering (tests/test_imports.py):\n" + \
        "\n".join(found)


def test_the_table_ranks_every_package_once() -> None:
    units = [u for layer in LAYERS for u in layer]
    assert len(units) == len(set(units))
    present = {unit_of(m) for m in source_modules(ROOT)}
    # every folder and top-level module of the library has a rank, and the table
    # names nothing that does not exist
    assert present == set(units)


# -- the test can fail: planted mistakes in a copy of the source are caught


def _copy(tmp_path: Path) -> Path:
    for name in ("llmcheck", plugin_folder(ROOT).name):
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp_path


def _planted(root: Path, plant: Callable[[], object]) -> list[str]:
    """The problems ``plant()`` adds to the copy at ``root`` (the copy's own, if the
    source has any, are not the planted mistake's)."""
    before = problems(root)
    plant()
    return [p for p in problems(root) if p not in before]


def _plant(root: Path, file: str, text: str) -> int:
    """Append ``text`` to ``file``; return the line it starts on."""
    path = root / file
    source = path.read_text(encoding="utf-8")
    if not source.endswith("\n"):
        source += "\n"
    path.write_text(source + text, encoding="utf-8")
    return source.count("\n") + 1


def test_a_wrong_way_import_is_named_with_its_file_line_and_rule(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lines: list[int] = []
    found = _planted(root, lambda: lines.append(
        _plant(root, "llmcheck/stats/intervals.py", "import llmcheck.model.client\n")))
    assert found == [
        f"llmcheck/stats/intervals.py:{lines[0]} imports llmcheck.model.client: stats (rank 1) "
        f"may not import model (rank {RANK['model']})"]


def test_an_import_inside_a_function_or_for_type_checking_counts(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lines: list[int] = []
    found = _planted(root, lambda: lines.append(_plant(
        root, "llmcheck/config/settings.py",
        "def _policy():\n    from llmcheck.stats import make_policy\n\n\n"
        "if TYPE_CHECKING:\n    from llmcheck.records.schema import TestRecord\n")))
    assert found == [
        f"llmcheck/config/settings.py:{lines[0] + 1} imports llmcheck.stats: config (rank 0) "
        "may not import stats (rank 1)",
        f"llmcheck/config/settings.py:{lines[0] + 5} imports llmcheck.records.schema "
        "(under TYPE_CHECKING): config (rank 0) may not import records (rank 2)"]


def test_a_circle_between_packages_of_one_rank_is_caught(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lines: list[int] = []

    def plant() -> None:
        lines.append(_plant(root, "llmcheck/checks/text/patterns.py",
                            "def _kinds():\n    import llmcheck.injection.catalogue\n"))
        lines.append(_plant(root, "llmcheck/injection/catalogue.py",
                            "import llmcheck.checks.text\n"))

    found = _planted(root, plant)
    assert len(found) == 1, found
    assert found[0].startswith("circle between packages checks -> injection -> checks")
    assert f"llmcheck/checks/text/patterns.py:{lines[0] + 1} imports llmcheck.injection.catalogue" \
        in found[0]
    assert f"llmcheck/injection/catalogue.py:{lines[1]} imports llmcheck.checks.text" \
        in found[0]
    assert found[0].endswith("packages may import each other only one way")


def test_a_circle_of_modules_loaded_at_import_is_caught(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    lines: list[int] = []
    found = _planted(root, lambda: lines.append(
        _plant(root, "llmcheck/stats/intervals.py", "import llmcheck.stats.stopping\n")))
    assert len(found) == 1, found
    assert "llmcheck.stats.intervals -> llmcheck.stats.stopping -> llmcheck.stats.intervals" \
        in found[0]
    assert f"llmcheck/stats/intervals.py:{lines[0]} imports llmcheck.stats.stopping" \
        in found[0]


def test_a_package_missing_from_the_table_is_named(tmp_path: Path) -> None:
    root = _copy(tmp_path)

    def plant() -> None:
        (root / "llmcheck" / "streaming").mkdir()
        (root / "llmcheck" / "streaming" / "__init__.py").write_text('"""Streams."""\n')

    assert _planted(root, plant) == [
        "package 'streaming' has no rank: add it to LAYERS in tests/test_imports.py "
        "(bottom first) where its imports allow"]
