"""The README renders as intended on GitHub: fences closed, no escaped backticks,
code in tables shown as code, and the two set-up commands where CI looks for them."""

from __future__ import annotations

from pathlib import Path

import pytest

markdown_it = pytest.importorskip("markdown_it")

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def source() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tokens(source):
    return markdown_it.MarkdownIt("commonmark").enable("table").parse(source)


def test_no_escaped_backticks(source):
    bad = [n for n, line in enumerate(source.splitlines(), 1) if "\\`" in line]
    assert not bad, f"README lines with an escaped backtick (shown raw on GitHub): {bad}"


def test_every_fenced_block_is_closed(source, tokens):
    lines = source.splitlines()
    fences = [t for t in tokens if t.type == "fence"]
    assert fences, "the README has code blocks"
    for fence in fences:
        start, end = fence.map
        closing = lines[end - 1].strip() if end - 1 < len(lines) else ""
        assert end - 1 > start and closing.startswith(fence.markup) and \
            set(closing) == {fence.markup[0]}, \
            f"the code block opened on line {start + 1} is never closed"


def test_no_stray_fence_markers_in_rendered_text(tokens):
    inline = [t.content for t in tokens if t.type == "inline"]
    stray = [text for text in inline if "```" in text]
    assert not stray, f"fence markers rendered as text: {stray[:3]}"


def test_code_in_tables_renders_as_code(source):
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(source)
    cells = html.split("<td>")[1:]
    assert cells and all("`" not in cell.split("</td>")[0] for cell in cells), \
        "a table cell shows raw backticks"


@pytest.mark.parametrize("marker", ["suites-command", "test-command"])
def test_setup_commands_are_fenced_one_liners(source, tokens, marker):
    lines = source.splitlines()
    at = next(n for n, line in enumerate(lines) if f"<!-- {marker} -->" in line)
    fence = next(t for t in tokens if t.type == "fence" and t.map[0] == at + 1)
    command = fence.content.strip()
    assert "\n" not in command and command.startswith('python -m pip install -e ".[dev]" && ')


def test_the_options_table_says_what_the_options_say(source):
    """The table is the options' own help text: README and --help cannot drift."""
    from llmcheck.settings import SETTINGS
    from llmcheck_pytest.options import OPTION_SETTINGS

    for name in OPTION_SETTINGS:
        spec = SETTINGS[name]
        row = f"| `{spec.option}` | `{spec.ini}` | `{spec.env}` | {spec.help} |"
        assert row in source, f"README's row for {spec.option} differs from its help text"


def test_the_defaults_table_is_what_llmcheck_plan_prints(source, capsys):
    """The README's figures for the defaults are the planner's own output, so they
    change when the defaults or the policies do."""
    import re
    import shlex

    from llmcheck.cli import main

    block = re.search(r"<!-- plan-defaults -->\n```\n\$ (.*?)\n(.*?)\n```\n<!-- /plan-defaults -->",
                      source, re.S)
    assert block, "the README has a plan-defaults block with its command"
    command, shown = block.groups()
    args = shlex.split(command)
    assert args[:2] == ["llmcheck", "plan"]
    assert main(args[1:]) == 0
    assert capsys.readouterr().out.rstrip() == shown
