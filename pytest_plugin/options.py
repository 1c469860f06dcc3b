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

import pytest

from llmcheck.config.settings import SETTINGS, Resolved, Setting, validate
from llmcheck.errors import UsageError

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
