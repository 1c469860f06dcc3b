"""Command-line options, ini keys and the one resolver that decides each setting.

Every ``--llm-*`` option has an ini key ``llm_*`` with the same help text and
an environment variable ``LLMCHECK_*``. A setting comes from, in order: the
command line, the environment, the ini file, the default; a test's own
``@llmcheck.repeat`` / ``@pytest.mark.llm`` keywords win over all of these,
except ``runs``, where the command line and the environment win (so
``pytest --llm-runs=50`` really runs every test 50 times).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from llmcheck.config.names import did_you_mean
from llmcheck.config.settings import SETTINGS, Resolved, Setting, validate
from llmcheck.errors import LLMCheckWarning, UsageError

# Settings exposed as options (early_stop is the marker keyword; the option is
# --llm-no-early-stop, as users expect a flag to turn the default off).
OPTION_SETTINGS = [name for name in SETTINGS if name != "early_stop"]


def addoptions(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmcheck", "llmcheck: repeated LLM tests with pass rates")
    for name in OPTION_SETTINGS:
        spec = SETTINGS[name]
        if spec.kind == "bool":
            group.addoption(spec.option, action="store_true", default=None, dest=_dest(spec),
                            help=spec.help)
            parser.addini(spec.ini, spec.help + " (ini)", type="string", default="")
        else:
            metavar = "|".join(spec.choices) if spec.kind == "choice" else name.upper()
            group.addoption(spec.option, action="store", default=None, dest=_dest(spec),
                            metavar=metavar, help=spec.help)
            parser.addini(spec.ini, spec.help, type="string", default="")


def _dest(spec: Setting) -> str:
    return "llm_" + spec.name


def resolve(config: pytest.Config) -> dict[str, Resolved]:
    """Decide every setting once per session; a bad value is a usage error."""
    out: dict[str, Resolved] = {}
    try:
        for name in OPTION_SETTINGS:
            out[name] = _resolve_one(config, SETTINGS[name])
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    return out


def _resolve_one(config: pytest.Config, spec: Setting) -> Resolved:
    raw = config.getoption(_dest(spec))
    if raw is not None:
        return Resolved(validate(spec.name, raw, spec.option), "command line")
    env = os.environ.get(spec.env)
    if env is not None and env.strip() != "":
        return Resolved(validate(spec.name, env, f"environment variable {spec.env}"),
                        "environment")
    ini = config.getini(spec.ini)
    if isinstance(ini, str) and ini.strip() != "":
        return Resolved(validate(spec.name, ini, f"ini key {spec.ini}"), "ini")
    return Resolved(spec.default, "default")


def check_command_line(args: Sequence[str], parser: pytest.Parser) -> None:
    """A misspelt ``--llm-*`` option is a usage error that names the nearest real one
    (``--llm-run=20``: did you mean --llm-runs?), where pytest would only say
    "unrecognized arguments". Options other plugins and conftests add count as known."""
    known = {name for argument in _arguments(parser) for name in argument.names()}
    ours = sorted(name for name in known if name.startswith("--llm"))
    for arg in args:
        if arg == "--":  # what follows is not an option
            break
        name = arg.split("=", 1)[0]
        if not name.startswith("--llm") or name in known:
            continue
        hint = did_you_mean(name, ours, _stem)
        raise pytest.UsageError(
            f"unrecognized option {arg}{hint}: llmcheck has no option {name}; "
            "`pytest --help` lists llmcheck's options in its 'llmcheck' section")


def check_ini_keys(config: pytest.Config) -> None:
    """An ``llm_*`` key in the ini file that no option reads (``llm_run = 20``): a
    warning naming the nearest real key, beside pytest's own "Unknown config option";
    a usage error under ``--strict-config``, as pytest makes its own."""
    unknown = getattr(config, "_get_unknown_ini_keys", None)  # pytest's own test
    if unknown is None:
        return
    keys = sorted(key for key in unknown() if key.lower().startswith("llm"))
    ours = [SETTINGS[name].ini for name in OPTION_SETTINGS]
    for key in keys:
        hint = did_you_mean(key, ours, _stem)
        message = (f"ini key {key} in {config.inipath or 'the ini file'} is not an llmcheck "
                   f"setting{hint}; the keys are the --llm-* options' names with llm_ and "
                   "underscores, e.g. llm_runs = 20")
        strict = config.getini("strict_config")
        if strict is None:  # pytest 9: --strict covers --strict-config
            strict = config.getini("strict")
        if strict:
            raise pytest.UsageError(message)
        config.issue_config_time_warning(LLMCheckWarning(message), stacklevel=2)


def _stem(name: str) -> str:
    """``run`` of ``--llm-run``, ``--llm_run``, ``--llmrun`` or ``llm_run``: what is
    compared when looking for the nearest name (the shared prefix would make every
    llmcheck name look near)."""
    stem = name.lstrip("-")[3:].replace("_", "-")
    return stem[1:] if stem.startswith("-") else stem


def _arguments(parser: pytest.Parser) -> Iterable[Any]:
    """Every option the parser knows (pytest's, plugins', conftests')."""
    for group in [parser._anonymous, *parser._groups]:
        yield from group.options
