"""llmcheck's pytest plugin: options, the ``llm`` marker, fixtures, hooks.

Thin by design: it translates pytest into library calls. A marked test's call
phase hands its body to :class:`llmcheck.core.runner.SampleRunner`; the resulting
:class:`~llmcheck.records.schema.TestRecord` travels on the test report as JSON (so it
survives pytest-xdist) and is collected, summarised and written to
``llmcheck.json`` by the process that owns the terminal.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import pytest

from llmcheck.config.settings import SETTINGS
from llmcheck.errors import LLMCheckWarning, UsageError
from llmcheck.model.offline import OfflineBeforeImport, go_offline
from llmcheck.redact import redact
from llmcheck_pytest import gate, markers, options, signals
from llmcheck_pytest.progress import LiveProgress
from llmcheck_pytest.recovery import SETTINGS_ATTR
from llmcheck_pytest.redaction import junit_properties, redact_report
from llmcheck_pytest.session import REPORT_ATTR, SESSION_KEY, UNWRITTEN_ATTR, SessionState
from llmcheck_pytest.summary import add_start_up

LITELLM_WARNING_FILTERS = (
    "ignore::DeprecationWarning:litellm.*",
    "ignore:.* on TypedDict class .* the `ReadOnly` qualifier:UserWarning",
    "ignore:Pydantic serializer warnings:UserWarning",
)
ITEM_SETTINGS = pytest.StashKey[Any]()
ITEM_RECORD = pytest.StashKey[Any]()
ITEM_CLIENT = pytest.StashKey[Any]()
ITEM_FAULTS = pytest.StashKey[Any]()
ITEM_TOOL_FAULTS = pytest.StashKey[Any]()
OFFLINE_HOOK = pytest.StashKey[OfflineBeforeImport]()
PATCHED_BEFORE = pytest.StashKey[bool]()
SIGTERM_BEFORE = pytest.StashKey[Any]()
LLM_FIXTURES = frozenset({"llm", "llm_endpoint", "llm_faults", "llm_sample"})

UNMARKED_WARNING = (
    "this test uses the llm fixture but is not marked with @llmcheck.repeat(...) or "
    "@pytest.mark.llm(...), so it ran once, with no pass rate and no record in the report; "
    "mark it to run it many times")


def pytest_addoption(parser: pytest.Parser) -> None:
    options.addoptions(parser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str],
                                  parser: pytest.Parser) -> Any:
    _offline_if_used(early_config, args)  # before any conftest runs
    result = yield
    options.check_command_line(args, parser)  # conftests' options are known by now
    return result


def _offline_if_used(config: pytest.Config, args: Sequence[str]) -> None:
    """Before any conftest or test module runs. litellm must be imported offline in a
    session that uses llmcheck, and untouched in one that does not (its environment
    stays as it was). Configured for llmcheck (``--llm-*`` options, addopts included,
    ``LLMCHECK_*`` variables, ``llm_*`` ini keys): offline now. Otherwise, watch for
    litellm's import: a module that uses llmcheck may import the app, and litellm with
    it, at collection; the collected items decide for the rest."""
    if OFFLINE_HOOK in config.stash:
        return
    if (any(arg.startswith("--llm-") for arg in args)
            or any(k.startswith("LLMCHECK_") and v.strip() for k, v in os.environ.items())
            or any(str(config.getini(SETTINGS[name].ini)).strip()
                   for name in options.OPTION_SETTINGS)):
        go_offline()
    hook = OfflineBeforeImport(skip=[os.path.dirname(os.path.abspath(__file__))])
    hook.install()
    config.stash[OFFLINE_HOOK] = hook


def pytest_configure(config: pytest.Config) -> None:
    _offline_if_used(config, config.invocation_params.args)  # if registered too late above
    markers.register(config)
    # litellm's own import and calls raise pydantic deprecation/user warnings that
    # say nothing about the user's code; keep them out of the warnings summary.
    for line in LITELLM_WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", line)
    if getattr(config, "workerinput", None) is None:  # said once, by the controller
        options.check_ini_keys(config)
    resolved = options.resolve(config)
    inprocess = sys.modules.get("llmcheck.injection.inprocess")
    config.stash[PATCHED_BEFORE] = inprocess is not None and inprocess.installed()
    workerinput = getattr(config, "workerinput", None)
    token = None
    if workerinput is not None and "llmcheck_seed" in workerinput:
        seed = int(workerinput["llmcheck_seed"])
        token = workerinput.get("llmcheck_token")
    elif resolved["seed"].value is not None:
        seed = int(resolved["seed"].value)
    else:
        seed = random.SystemRandom().randrange(2**32)
    state = SessionState(config, resolved, seed, is_worker=workerinput is not None,
                         token=token)
    config.stash[SESSION_KEY] = state
    config.pluginmanager.register(state, "llmcheck-session")
    gate.register(config, state)  # --llm-baseline: the pre-merge gate
    config.stash[SIGTERM_BEFORE] = signals.install()  # a CI cancel stops like Ctrl-C


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker's usage error found at collection (see preflight) stops the
    session with it, once, as it would without xdist."""
    from llmcheck_pytest.preflight import raise_worker_problem

    raise_worker_problem(node)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker uses the controller's session seed."""
    state = node.config.stash[SESSION_KEY]
    node.workerinput["llmcheck_seed"] = state.seed
    node.workerinput["llmcheck_token"] = state.token


def pytest_sessionstart(session: pytest.Session) -> None:
    client = sys.modules.get("llmcheck.model.client")  # loaded only once a model was called
    if client is not None:
        client.reset_calls()  # an earlier in-process session may have been interrupted
    state = session.config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.recover_earlier_runs()


def stop_model_calls() -> None:
    """After Ctrl-C (or SIGTERM) no request or retry starts, and calls in flight are
    abandoned."""
    client = sys.modules.get("llmcheck.model.client")
    if client is not None:
        client.stop_calls(f"interrupted ({signals.interrupted_by()})")


@pytest.hookimpl(tryfirst=True)  # before the terminal reporter renders the traceback
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    stop_model_calls()
    exc: BaseException | None = excinfo.value
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # a chain may loop back on itself
        seen.add(id(exc))
        mend_line_numbers(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__


def mend_line_numbers(tb: TracebackType | None) -> None:
    """Give every traceback entry a line number. On Python 3.11 a signal can land on
    an instruction that has none (``tb_lineno`` is None; seen in CI, a session
    interrupted while its local model started), and pytest's rendering of the
    KeyboardInterrupt then dies with a TypeError, so Ctrl-C exited 1 without pytest's
    summary instead of 2.
    Such an entry is replaced by one pointing at its frame's current line (with no
    instruction offset, so no column range is looked up for it either)."""
    while tb is not None and tb.tb_next is not None:
        nxt = tb.tb_next
        if nxt.tb_lineno is None:  # type: ignore[comparison-overlap]
            frame = nxt.tb_frame
            line = frame.f_lineno or frame.f_code.co_firstlineno
            tb.tb_next = TracebackType(nxt.tb_next, frame, -1, line)
        tb = tb.tb_next


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected theirs
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("llm") is not None
           or LLM_FIXTURES.intersection(getattr(item, "fixturenames", ()))
           for item in items):
        go_offline()  # the session uses llmcheck: before a test body imports litellm
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    llm_items = [item for item in items if item.get_closest_marker("llm") is not None]
    # every LLM test of the session that will run (under xdist each worker collects them
    # all; under --llm-shard the whole suite, whose merged report is the gate), and each
    # of its latency requirements, a hypothesis of its own: a test skipped by a mark
    # takes no share of --llm-session-alpha
    from llmcheck.config.latency import count_requirements

    default_latency = state.setting("latency")
    state.llm_tests = max(1, sum(
        1 + count_requirements(_marked_latency(item, default_latency))
        for item in llm_items if not _skipped(item)))
    shard = state.setting("shard")
    if shard is not None:
        _keep_shard(config, items, llm_items, shard)
    from llmcheck_pytest.preflight import check_session_model

    check_session_model(config, items, [item for item in items if not _skipped(item)],
                        state.resolved)


def _keep_shard(config: pytest.Config, items: list[pytest.Item],
                llm_items: list[pytest.Item], shard: tuple[int, int]) -> None:
    """Deselect the LLM tests of the other shards (--llm-shard=i/n)."""
    i, n = shard
    mine = set(_shard(sorted(item.nodeid for item in llm_items), i, n))
    other = [item for item in llm_items if item.nodeid not in mine]
    if other:
        config.hook.pytest_deselected(items=other)
        drop = set(map(id, other))
        items[:] = [item for item in items if id(item) not in drop]


def _marked_latency(item: pytest.Item, default: Any) -> Any:
    """The latency requirements an LLM item states (a case's own mark wins), else the
    session's (``--llm-latency``)."""
    value = item.get_closest_marker("llm").kwargs.get("latency")  # type: ignore[union-attr]
    for case_mark in getattr(getattr(item, "callspec", None), "marks", ()):
        if case_mark.name == "llm" and "latency" in case_mark.kwargs:
            value = case_mark.kwargs["latency"]
    return default if value is None else value


def _skipped(item: pytest.Item) -> bool:
    """Whether a skip or skipif mark skips ``item`` (as pytest will decide at setup)."""
    from _pytest.skipping import evaluate_skip_marks

    try:
        return evaluate_skip_marks(item) is not None
    except Exception:  # noqa: BLE001 - a broken condition is pytest's to report, at setup
        return False


def _shard(nodeids: list[str], i: int, n: int) -> list[str]:
    """The i-th of n shares of these node ids: ordered by a hash of the id (stable
    across machines, runs and Python versions; every machine collects the same
    tests), then dealt out in turn, so shares differ in size by one at most."""
    import hashlib

    ranked = sorted(nodeids, key=lambda nodeid: hashlib.sha256(
        nodeid.encode("utf-8", "surrogatepass")).digest())
    return ranked[i - 1::n]


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        return None
    return state.header()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("llm") is None:
        markers.refuse_fault_markers(item)
        return
    state: SessionState = item.config.stash[SESSION_KEY]
    # A bad keyword on the marker is the test's own error: report it on the item.
    item.stash[ITEM_SETTINGS] = state.item_settings(item)
    item.stash[ITEM_FAULTS] = state.fault_plan(item)
    item.stash[ITEM_TOOL_FAULTS] = state.tool_fault_plan(item)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    settings = pyfuncitem.stash.get(ITEM_SETTINGS, None)
    if settings is None:
        return None
    from llmcheck.core.runner import RunSpec, SampleRunner

    state: SessionState = pyfuncitem.config.stash[SESSION_KEY]
    testfunction = pyfuncitem.obj
    funcargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    if inspect.iscoroutinefunction(testfunction):

        async def body() -> None:
            __tracebackhide__ = True
            await testfunction(**funcargs)
    else:
        body = functools.partial(testfunction, **funcargs)

    client = pyfuncitem.stash.get(ITEM_CLIENT, None)
    start_up(pyfuncitem)  # before the first sample's clock starts
    progress = LiveProgress.maybe(pyfuncitem.config, state, settings.runs)
    spec = RunSpec(
        test_id=pyfuncitem.nodeid,
        settings=settings,
        session_seed=state.seed,
        failure_types=(pytest.fail.Exception,),
        progress=progress,
        stop_check=state.models.budget_exhausted,
        model=None if client is None else client.config.name or client.model,
        simulated=client is not None and client.config.simulated,
        fault_plan=pyfuncitem.stash.get(ITEM_FAULTS, None),
        tool_faults=pyfuncitem.stash.get(ITEM_TOOL_FAULTS, None),
        fingerprint=fingerprint(pyfuncitem),
        keep_io=state.setting("keep_io"),
        full_trace=bool(pyfuncitem.config.option.fulltrace),
    )
    spec.on_sample = state.journal_start(spec)
    spec.on_interrupt = stop_model_calls
    runner = SampleRunner(body, spec)
    broken: str | None = None
    try:
        record = runner.run()
    except KeyboardInterrupt:
        partial = runner.record()
        state.add_partial(partial)
        if pyfuncitem.config.option.fulltrace:
            raise
        # Where Ctrl-C landed (deep in threading, asyncio or litellm) is all pytest
        # would show, after parsing every source file of that traceback (seconds, and
        # its chained CancelledErrors, under asyncio); which test stopped, and how far
        # it got, is what the user needs. --full-trace keeps the original.
        raise KeyboardInterrupt(f"{pyfuncitem.nodeid} interrupted after {partial.run} of "
                                f"{settings.runs} samples") from None
    except UsageError as exc:
        broken = str(exc)  # failed outside this block, so it is shown once, unchained
    finally:
        if progress is not None:
            progress.clear()
    if broken is not None:
        pytest.fail(redact(f"llmcheck: {broken}"), pytrace=False)
    state.journal.done(spec.test_id)
    pyfuncitem.stash[ITEM_RECORD] = record
    pyfuncitem.user_properties.extend(junit_properties(record))
    if record.run == 0 and record.budget_stopped:
        pytest.skip(redact(f"llmcheck: {record.verdict.reason}"))
    if record.verdict.outcome != "passed":
        from llmcheck.reports.terminal import explain

        pytest.fail(redact(explain(record)), pytrace=False)
    return True


def start_up(item: pytest.Function) -> None:
    """The session's one-time start-up, done before a test's first sample starts its clock
    and timed apart (the summary shows it once): litellm's import and its first call's
    lazy set-up (seconds, which the first samples' durations used to carry, skewing the
    duration histogram and latency requirements). Only for a
    test that talks to a model (the ``llm`` or ``llm_endpoint`` fixture)."""
    provider = sys.modules.get("llmcheck.model.provider")
    if (provider is not None and provider._litellm is not None) or not {
            "llm", "llm_endpoint"}.intersection(getattr(item, "fixturenames", ())):
        return
    import time

    from llmcheck.model.provider import warm_litellm

    began = time.perf_counter()
    warm_litellm()  # imports litellm and takes its first call's cost
    add_start_up(item.config, time.perf_counter() - began)


def fingerprint(item: pytest.Function) -> str:
    """What the test asks, as a hash: its function's source and its parameters (the
    prompt and the golden case usually live there), so that a baseline is compared
    only with the same test. Reprs that name a memory address are left out."""
    import hashlib

    try:
        source = inspect.getsource(item.obj)
    except (OSError, TypeError):
        source = item.name
    callspec = getattr(item, "callspec", None)
    params = sorted((name, repr(value)) for name, value in
                    (callspec.params.items() if callspec is not None else ()))
    text = source + "\0" + "\0".join(f"{name}={value}" for name, value in params
                                      if " at 0x" not in value)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if item.stash.get(ITEM_SETTINGS, None) is not None:
        redact_report(report)  # before pytest prints it or writes it into the JUnit XML
    if call.when == "call":
        record = item.stash.get(ITEM_RECORD, None)
        if record is not None:
            setattr(report, REPORT_ATTR, record.model_dump_json())
            report.llmcheck_outcome = record.verdict.outcome
        state = item.config.stash.get(SESSION_KEY, None)
        if state is not None and state.is_worker and state.writes_failed():
            setattr(report, UNWRITTEN_ATTR, dict(state.unwritten))  # to the controller
    elif call.when == "setup" and item.stash.get(ITEM_SETTINGS, None) is not None:
        # for the controller, should the test's worker die (llmcheck_pytest.recovery)
        setattr(report, SETTINGS_ATTR, item.stash[ITEM_SETTINGS].model_dump_json())
    return report


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """An item whose samples were mostly infrastructure errors is an error, not a failure."""
    if (report.when == "call" and report.failed
            and getattr(report, "llmcheck_outcome", None) == "error"):
        return "error", "E", "ERROR"
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.terminal_summary(terminalreporter, exitstatus)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """A session whose budget ran out before some LLM tests ran a sample fails (as
    pytest-cov fails a session under its coverage threshold), unless allowed."""
    result = yield
    state = session.config.stash.get(SESSION_KEY, None)
    if state is not None and state.unjudged() and not state.setting("allow_unjudged"):
        session.testsfailed += 1
    return result


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    state.finish(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Leave the process as the session found it: the import watch goes, and the httpx
    interception that fault injection or ``llm_endpoint`` installed is undone (unless it
    was in place before this session began: an enclosing in-process session's)."""
    hook = config.stash.get(OFFLINE_HOOK, None)
    if hook is not None:
        hook.remove()
    signals.restore(config.stash.get(SIGTERM_BEFORE, None))
    inprocess = sys.modules.get("llmcheck.injection.inprocess")
    if inprocess is not None and not config.stash.get(PATCHED_BEFORE, False):
        inprocess.uninstall()


@pytest.fixture(scope="session")
def llm_endpoint(request: pytest.FixtureRequest) -> Any:
    """The model under test, for the ``llm`` fixture and for an app that calls the model
    itself: ``.base_url`` (an OpenAI-compatible URL on loopback, through llmcheck's proxy:
    calls are attributed to the sample, counted, seeded, cached and fault-injected),
    ``.model`` (the name to send there), ``.api_key`` (a key the proxy accepts), and
    ``.litellm_model`` / ``.api_base`` for litellm. The simulator, when no model is
    configured, starts on first use and stops at the end."""
    import time

    state: SessionState = request.config.stash[SESSION_KEY]
    began = time.perf_counter()
    endpoint = state.models.endpoint()  # starts the simulator (or local model) once
    add_start_up(request.config, time.perf_counter() - began)
    yield endpoint
    state.models.stop()


@pytest.fixture
def llm_faults() -> Any:
    """The running sample's fault plan: ``llm_faults.set(rate_limit=0.5)``, ``with
    llm_faults(timeout=1.0): ...``, ``with llm_faults.off(): ...``, ``.injected``."""
    from llmcheck.injection.attribution import FaultControl

    return FaultControl()


@pytest.fixture
def llm(request: pytest.FixtureRequest, llm_endpoint: Any) -> Any:
    """The model client: ``llm(prompt)``, ``llm.chat(messages)``, ``await llm.acall(...)``
    return a ``Completion`` (text, json(), tool_calls, usage, cost, latency, retries...)."""
    from llmcheck.model.client import set_default_client

    state: SessionState = request.config.stash[SESSION_KEY]
    settings = request.node.stash.get(ITEM_SETTINGS, None)
    if settings is None:
        import warnings

        warnings.warn(LLMCheckWarning(UNMARKED_WARNING), stacklevel=1)
    client = state.models.client(llm_endpoint.config, settings)
    request.node.stash[ITEM_CLIENT] = client
    set_default_client(client)
    yield client
    set_default_client(None)


@pytest.fixture
def llm_sample() -> Any:
    """The sample being run: ``.index``, ``.seed``, ``.runs`` and ``.rng`` (a seeded
    ``random.Random``), so a test can vary its input per sample."""
    from llmcheck.core.context import CurrentSample

    return CurrentSample()
