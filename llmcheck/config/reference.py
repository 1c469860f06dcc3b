"""The options reference (``docs/options.md``), generated from the settings table.

The page is the table's own text (each setting's option, ini key, environment
variable, accepted values and help), so the documentation and ``pytest --help``
cannot drift apart; ``tests/test_readme.py`` checks that the page is current.
Regenerate it with::

    python -m llmcheck.config.reference > docs/options.md
"""

from __future__ import annotations

from llmcheck.config.settings import MARKER_SETTINGS, SETTINGS, Setting, marker_signature

REGENERATE = "python -m llmcheck.config.reference > docs/options.md"
"""The command that writes the page."""


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def command_line_form(name: str) -> str | None:
    """The setting that stands for ``name`` on the command line: ``name`` itself, or
    ``no_<name>`` when the table has that flag instead (``early_stop`` is on by default,
    so users turn it off with ``--llm-no-early-stop``)."""
    if f"no_{name}" in SETTINGS:
        return None
    return name


def option_settings() -> list[Setting]:
    """The settings that are command-line options, ini keys and environment variables,
    in the table's order."""
    return [spec for name, spec in SETTINGS.items() if command_line_form(name) == name]


def _accepts(spec: Setting) -> str:
    if spec.kind == "bool":
        return "a flag on the command line; true or false as an ini key or variable"
    return spec.accepted()


def options_markdown() -> str:
    """``docs/options.md``: every option with its ini key, environment variable,
    accepted values and help text, then the keywords a test may set for itself."""
    lines = [
        "# Options",
        "",
        f"<!-- Generated from the settings table (llmcheck/config/settings.py) by "
        f"`{REGENERATE}`; do not edit by hand. -->",
        "",
        "Every option has an ini key (in `pytest.ini`, or under `[tool.pytest.ini_options]`",
        "in `pyproject.toml`) and an environment variable. A setting comes from the",
        "command line, then the environment, then the ini file, then the default; a",
        "test's own `@llmcheck.repeat(...)` keywords win over all of these except `runs`,",
        "where the command line and the environment win (`pytest --llm-runs=50` really",
        "runs every test 50 times). An invalid value is a usage error naming the option,",
        "where the value came from, and what would be accepted; a misspelt option or ini",
        "key is a usage error or a warning that names the nearest real one.",
        "",
        "## Options, ini keys and environment variables",
        "",
        "| option | ini key | environment | accepts | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in option_settings():
        lines.append(f"| `{spec.option}` | `{spec.ini}` | `{spec.env}` | "
                     f"{_cell(_accepts(spec))} | {_cell(spec.help)} |")
    lines += [
        "",
        "## A test's own settings",
        "",
        "`@llmcheck.repeat(...)` and `@pytest.mark.llm(...)` take the same keywords, each",
        "the test's own value of an option above. With their defaults:",
        "",
        "```",
        f"@llmcheck.repeat({marker_signature()})",
        "```",
        "",
        "A keyword the test does not set comes from the option (command line,",
        "environment, ini file, default). Two keywords meet their option differently:",
        "`--llm-runs` given on the command line or in the environment wins over",
        "`runs=`, and `--llm-no-early-stop` turns early stopping off for every test,",
        "whatever `early_stop=` says.",
        "",
        "In Python a keyword's value has its type: `runs=\"20\"`, `runs=True` or",
        "`early_stop=1` is a usage error naming the keyword, the value and what is",
        "accepted (a string is read as a number only from the command line, the",
        "environment or an ini file).",
        "",
        "| keyword | option |",
        "| --- | --- |",
    ]
    for name in MARKER_SETTINGS:
        spec = SETTINGS[name]
        if command_line_form(name):
            option = f"`{spec.option}`"
        else:
            option = f"`{SETTINGS[f'no_{name}'].option}` (`{name}=False`)"
        lines.append(f"| `{name}` | {option} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    print(options_markdown(), end="")


if __name__ == "__main__":
    main()
