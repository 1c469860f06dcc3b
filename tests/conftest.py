from __future__ import annotations

import os
import signal

# In-process pytester runs restore sys.modules afterwards, so anything first
# imported inside one is imported again by the next. That breaks C extensions
# (scipy cannot be imported twice), httpx (its exception mapping holds the first
# copy of httpcore) and llmcheck itself (the package caches lazily loaded names,
# and a second records module would define a second CheckResult class). So they
# are all imported here, once, before any test runs.
import httpcore  # noqa: F401
import httpx  # noqa: F401
import pytest
import scipy.special  # noqa: F401
import scipy.stats  # noqa: F401
from helpers import load_report
from hypothesis import settings

import llmcheck.checks  # noqa: F401
import llmcheck.core.runner  # noqa: F401
import llmcheck.files  # noqa: F401
import llmcheck.records.schema  # noqa: F401
from llmcheck.model.client import import_litellm

# litellm takes seconds to import; inside an in-process pytester run its import
# would be undone by the sys.modules restore and paid again. Import it here, once.
import_litellm()

pytest_plugins = ["pytester"]

# Hypothesis saves every failing example under .hypothesis/ and replays it first on the
# next run. On a developer's machine that is the point; in CI it made the suite depend on
# what an earlier run left behind (a saved 2005-deep document failed one test on every
# rerun, while a fresh checkout passed). CI runs from the code alone: no database, no
# deadline (a loaded 2-core runner is no evidence of slowness), and the failing
# example's blob printed so it can be replayed locally with @reproduce_failure.
settings.register_profile("ci", database=None, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# A shell without job control starts background commands with SIGINT ignored, and
# children inherit that (measured: a `.ci/run` started as `(... &)` failed every Ctrl-C
# test, their pytest children never saw the signal). The Ctrl-C tests need it
# delivered: take it back, so this process and its children get Python's default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """pytest runs made by these tests lay out the llmcheck table for a wide
    terminal (it is fitted to COLUMNS), so tests can match whole rows; the tests
    of the narrow layouts set COLUMNS themselves."""
    monkeypatch.setenv("COLUMNS", "250")


FOREIGN_PLUGINS = "-p no:langsmith_plugin -p no:hypothesispytest"
"""Third-party pytest plugins that sessions run by these tests leave out: langsmith's
(langchain-openai, a dev dependency, brings it) and hypothesis's import their packages
when pytest starts, two thirds of an empty session's start-up (measured: 6.7 s of CPU
with both, 1.6 s without, on this 2-core machine under load), paid again by every
subprocess and xdist worker. llmcheck's plugin runs beside both in this session itself,
and the start-up test (tests/plugin/test_verdict_words.py) keeps them."""


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch) -> pytest.Pytester:
    """pytest's own, whose sessions (in-process or not, and ``python -m pytest`` run in
    its folder) load no foreign plugin: see :data:`FOREIGN_PLUGINS`. (pytester drops
    the outer PYTEST_ADDOPTS when it starts; this is set after it.)"""
    monkeypatch.setenv("PYTEST_ADDOPTS", FOREIGN_PLUGINS)
    return pytester


@pytest.fixture(autouse=True)
def calls_allowed():
    """Model calls are allowed again after each test: the stop switch is process-wide,
    and an in-process session that stopped calls (a killed local-model server, Ctrl-C)
    would otherwise stop the next test's calls in the same xdist worker."""
    yield
    from llmcheck.model.deadline import reset_calls

    reset_calls()


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    """Sessions run by these tests never append to the step summary of the CI job
    running them (GitHub Actions sets GITHUB_STEP_SUMMARY); the tests of that feature
    set it themselves."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def report(pytester: pytest.Pytester):
    return lambda report_dir="reports": load_report(pytester, report_dir)


@pytest.fixture(scope="session")
def model_stack():
    """litellm and the simulator, imported once in this process: in-process pytester
    runs restore sys.modules afterwards, and re-importing litellm would cost seconds
    (and C extensions cannot be imported twice)."""
    from llmcheck.model.client import import_litellm

    litellm = import_litellm()
    # The openai SDK's transport imports httpcore2 and its chat resources on first use.
    # Done inside a pytester run, those modules would be dropped after it and imported
    # again later, and httpx2 would then no longer recognise the second copy's
    # exceptions (a refused connection escaping the SDK as a raw httpcore2 error).
    import openai

    import llmcheck.simulator  # noqa: F401

    openai.OpenAI(api_key="sk-none", base_url="http://127.0.0.1:9/v1").chat.completions  # noqa: B018
    return litellm


@pytest.fixture
def simulator(model_stack):
    """A fresh simulator on a free loopback port, with the default scenario."""
    from llmcheck.simulator import SimulatorServer

    with SimulatorServer() as server:
        yield server


@pytest.fixture
def sample():
    """A running sample's context, so checks record their results into it."""
    from llmcheck.core import context
    from llmcheck.core.context import SampleContext

    ctx = SampleContext(index=0, seed=0)
    token = context._set(ctx)
    yield ctx
    context._reset(token)
