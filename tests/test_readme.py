"""The README and the pages under docs/ render as intended on GitHub: fences closed,
no escaped backticks, code in tables shown as code, every relative link and anchor
resolving; the two set-up commands are where CI looks for them; and what the pages
quote from the code (the options, the planner's figures, the first example) is what
the code says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

markdown_it = pytest.importorskip("markdown_it")

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _parse(text: str) -> list:
    return markdown_it.MarkdownIt("commonmark").enable("table").parse(text)


@pytest.fixture(scope="module")
def source() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tokens(source):
    return _parse(source)


@pytest.fixture(params=PAGES, ids=_name)
def page(request) -> tuple[Path, str, list]:
    text = request.param.read_text(encoding="utf-8")
    return request.param, text, _parse(text)


def test_there_are_docs_pages_and_the_readme_links_each():
    readme = README.read_text(encoding="utf-8")
    pages = sorted(DOCS.glob("*.md"))
    assert len(pages) >= 9, "docs/ has its pages"
    unlinked = [p.name for p in pages if f"](docs/{p.name}" not in readme]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_no_escaped_backticks(page):
    path, text, _ = page
    bad = [n for n, line in enumerate(text.splitlines(), 1) if "\\`" in line]
    assert not bad, f"{_name(path)} lines with an escaped backtick (shown raw on GitHub): {bad}"


def test_every_fenced_block_is_closed(page):
    path, text, tokens = page
    lines = text.splitlines()
    fences = [t for t in tokens if t.type == "fence"]
    for fence in fences:
        start, end = fence.map
        closing = lines[end - 1].strip() if end - 1 < len(lines) else ""
        assert end - 1 > start and closing.startswith(fence.markup) and \
            set(closing) == {fence.markup[0]}, \
            f"{_name(path)}: the code block opened on line {start + 1} is never closed"
    indented = [t.map[0] + 1 for t in tokens if t.type == "code_block"]
    assert not indented, f"{_name(path)}: code blocks not fenced, from lines {indented}"


def test_the_readme_has_code_blocks(tokens):
    assert [t for t in tokens if t.type == "fence"], "the README has code blocks"


def test_no_stray_fence_markers_in_rendered_text(page):
    path, _, tokens = page
    inline = [t.content for t in tokens if t.type == "inline"]
    stray = [text for text in inline if "```" in text]
    assert not stray, f"{_name(path)}: fence markers rendered as text: {stray[:3]}"


def test_code_in_tables_renders_as_code(page):
    path, text, _ = page
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    cells = html.split("<td>")[1:]
    assert all("`" not in cell.split("</td>")[0] for cell in cells), \
        f"{_name(path)}: a table cell shows raw backticks"


def _heading_text(inline) -> str:
    return "".join(c.content for c in inline.children or []
                   if c.type in ("text", "code_inline", "softbreak"))


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (letters,
    digits, ``_`` and ``-`` kept), each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, with GitHub's -1, -2 for repeats."""
    tokens = _parse(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        slug = github_slug(_heading_text(tokens[i + 1]))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _links(tokens) -> list[str]:
    found = []
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                found.append(child.attrs.get("href", ""))
            elif child.type == "image":
                found.append(child.attrs.get("src", ""))
    return found


def test_github_slugs():
    assert github_slug("The model client (`llm`)") == "the-model-client-llm"
    assert github_slug("pass^k and pass@k") == "passk-and-passk"
    assert github_slug("The gate's tests") == "the-gates-tests"
    assert github_slug("A real model on your CPU (local GGUF)") == \
        "a-real-model-on-your-cpu-local-gguf"


def test_every_relative_link_resolves(page):
    """Every relative link points at a file that exists and, with a #anchor, at a
    heading of that file."""
    path, _, tokens = page
    broken = []
    for href in _links(tokens):
        if re.match(r"[a-z][a-z0-9+.-]*:", href) or href.startswith("//"):
            continue  # https:, mailto: ...
        target, _, anchor = href.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            broken.append(f"{href} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{href} (no heading #{anchor} in {file.name})")
        elif anchor and file.suffix != ".md":
            broken.append(f"{href} (an anchor into a file that is not markdown)")
    assert not broken, f"{_name(path)} has broken links: {broken}"


def test_every_option_named_exists(page):
    """An option the pages name is one llmcheck has (a renamed option cannot linger)."""
    from llmcheck.config.settings import SETTINGS

    path, text, _ = page
    known = {spec.option for spec in SETTINGS.values()}
    named = set(re.findall(r"--llm-[a-z][a-z-]*[a-z]", text))
    assert named <= known, f"{_name(path)} names options llmcheck lacks: {named - known}"


def test_every_repository_path_named_exists(page):
    """A file or folder of the repository that the pages name (`tests/...`,
    `benchmarks/...`, `llmcheck/...`) exists: moving a file cannot leave a stale path."""
    path, text, _ = page
    named = re.findall(r"(?<![\w./~-])(?:tests|benchmarks|suites|llmcheck|pytest_plugin|docs)"
                       r"/[\w./-]*", text)
    paths = {p.rstrip(".") for p in named}
    paths = {p for p in paths if p.endswith("/") or Path(p).suffix in
             (".py", ".md", ".yaml", ".json", ".png", ".html")}
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"{_name(path)} names paths that do not exist: {missing}"


def test_the_report_schema_page_has_every_version():
    """docs/report-schema.md names the version llmcheck writes and has a row for each
    version up to it: bumping SCHEMA_VERSION without a word here fails."""
    from llmcheck.records.schema import SCHEMA_VERSION

    text = (DOCS / "report-schema.md").read_text(encoding="utf-8")
    assert f"writes **version {SCHEMA_VERSION}**" in text, \
        f"docs/report-schema.md does not say that llmcheck writes version {SCHEMA_VERSION}"
    rows = [int(n) for n in re.findall(r"^\| (\d+) \|", text, re.M)]
    assert rows == list(range(1, SCHEMA_VERSION + 1)), \
        f"docs/report-schema.md has rows for versions {rows}, not 1 to {SCHEMA_VERSION}"


@pytest.mark.parametrize("marker", ["suites-command", "test-command"])
def test_setup_commands_are_fenced_one_liners(source, tokens, marker):
    lines = source.splitlines()
    at = next(n for n, line in enumerate(lines) if f"<!-- {marker} -->" in line)
    fence = next(t for t in tokens if t.type == "fence" and t.map[0] == at + 1)
    command = fence.content.strip()
    assert "\n" not in command and command.startswith('python -m pip install -e ".[dev]" && ')


def test_the_options_page_is_generated_from_the_settings_table():
    """docs/options.md is the settings' own help text: the page and --help cannot drift."""
    from llmcheck.config.reference import REGENERATE, options_markdown

    page = (DOCS / "options.md").read_text(encoding="utf-8")
    assert page == options_markdown(), \
        f"docs/options.md is not what the settings table says; regenerate it: {REGENERATE}"


def test_the_options_page_lists_exactly_the_plugins_options():
    from llmcheck.config.reference import option_settings
    from llmcheck_pytest.options import OPTION_SETTINGS

    assert [spec.name for spec in option_settings()] == OPTION_SETTINGS


def test_python_m_prints_the_options_page():
    import subprocess
    import sys

    from llmcheck.config.reference import options_markdown

    out = subprocess.run([sys.executable, "-m", "llmcheck.config.reference"], cwd=ROOT,
                         capture_output=True, text=True, check=True, encoding="utf-8")
    assert out.stdout == options_markdown()


def test_the_defaults_table_is_what_llmcheck_plan_prints(capsys):
    """The statistics page's figures for the defaults are the planner's own output, so
    they change when the defaults or the policies do."""
    import shlex

    from llmcheck.cli.main import main

    text = (DOCS / "statistics.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- plan-defaults -->\n```\n\$ (.*?)\n(.*?)\n```\n<!-- /plan-defaults -->",
                      text, re.S)
    assert block, "docs/statistics.md has a plan-defaults block with its command"
    command, shown = block.groups()
    args = shlex.split(command)
    assert args[:2] == ["llmcheck", "plan"]
    assert main(args[1:]) == 0
    assert capsys.readouterr().out.rstrip() == shown


def test_the_first_example_is_the_one_the_suites_run(source, tokens):
    """The README's first example runs in `pytest suites` (suites/test_first_verdicts.py),
    so it is known to pass against the simulator; the tests the README names there exist."""
    suite = (ROOT / "suites" / "test_first_verdicts.py").read_text(encoding="utf-8")

    def code_lines(text: str) -> list[str]:
        return [line.split("  #")[0].strip() for line in text.splitlines()
                if line.strip() and not line.strip().startswith("#")]

    example = next(t for t in tokens if t.type == "fence" and t.info == "python")
    missing = [line for line in code_lines(example.content) if line not in code_lines(suite)]
    assert not missing, f"the README's first example differs from the suite's: {missing}"
    named = re.findall(r"^\| `(test_\w+)` \|", source, re.M)
    assert named and all(f"def {name}(" in suite for name in named), named
