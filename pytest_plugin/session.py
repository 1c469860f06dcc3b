"""Session state: resolved settings, collected records, the JSON file, the summary.

Registered as a plugin object by ``pytest_configure`` so its hooks see the
state without globals. Under pytest-xdist, workers only run samples; the
controller receives every test's record on the report and owns the JSON file
and the terminal summary.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llmcheck.config.settings import Resolved
from llmcheck.errors import UsageError

SAVE_EVERY = 0.5  # seconds: the JSON file is rewritten at most this often during a run

SESSION_KEY = pytest.StashKey["SessionState"]()
REPORT_ATTR = "llmcheck_record"
"""The test report attribute carrying a TestRecord as JSON (survives xdist)."""
UNWRITTEN_ATTR = "llmcheck_unwritten"
"""The test report attribute carrying a worker's files that could not be written."""


class SessionState:
    def __init__(self, config: pytest.Config, resolved: dict[str, Resolved], seed: int,
                 *, is_worker: bool, token: str | None = None) -> None:
        import uuid
        from datetime import datetime, timezone

        from llmcheck_pytest.journal import Journal

        self.config = config
        self.resolved = resolved
        self.seed = seed
        self.is_worker = is_worker
        self.records: dict[str, Any] = {}
        self.warnings: list[str] = []
        self._last_save = 0.0
        self._t0 = time.perf_counter()
        self.started = datetime.now(timezone.utc)
        self.token = token or uuid.uuid4().hex[:12]
        self.recovered: list[Any] = []
        self.unwritten: dict[str, str] = {}
        from llmcheck_pytest.recovery import Reconciler

        self.reconciler = Reconciler()
        """The LLM tests pytest ran, to list every one the records lack (a dead worker)."""
        """Files that could not be written (a full disk...), by path: why, as a warning."""
        self.views: Any = None
        """The markdown and HTML reports written at the end (llmcheck.reports.files.Views)."""
        self.llm_tests = 1
        """LLM tests the session collected (each xdist worker collects them all), over
        which --llm-session-alpha is shared; set at the end of collection."""
        self._check_report_dir()
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        self.journal = Journal(self.report_dir, self.token, worker, header={
            "seed": seed, "started": self.started.isoformat(), "model": self.setting("model")})
        from llmcheck_pytest.resources import ModelResources

        self.models = ModelResources(config, self.setting, self.cache_path)
        """The simulator, local servers, endpoint, budget and clients of this process."""

    def _check_report_dir(self) -> None:
        from llmcheck.files import directory_problem

        problem = directory_problem(self.report_dir)
        if problem is not None:
            raise pytest.UsageError(
                f"--llm-report-dir={self.setting('report_dir')} cannot hold llmcheck's "
                f"reports: {problem}; choose another folder")

    def setting(self, name: str) -> Any:
        return self.resolved[name].value

    # -- settings of one item --------------------------------------------
    def item_settings(self, item: pytest.Item) -> Any:
        """The item's :class:`~llmcheck.records.schema.TestSettings`, resolved once from its
        marker and the session's settings. A bad value fails the item's setup with a
        message naming it, rather than stopping the whole session."""
        from llmcheck.records.resolve import resolve_test

        marker = item.get_closest_marker("llm")
        assert marker is not None
        kwargs = dict(marker.kwargs)
        # a case's own pytest.param(..., marks=pytest.mark.llm(...)) wins over the test's
        # (pytest lists the function's marks first, so it is never the closest)
        for case_mark in getattr(getattr(item, "callspec", None), "marks", ()):
            if case_mark.name == "llm":
                kwargs.update(case_mark.kwargs)
        try:
            settings = resolve_test(kwargs, self.resolved, "@pytest.mark.llm",
                                    marker.args, session_tests=self.llm_tests)
            warning = getattr(settings.policy(), "warning", None)
        except UsageError as exc:
            problem = str(exc)
        else:
            problem = None
        if problem is not None:  # outside the except block: shown once, unchained
            pytest.fail(f"{item.nodeid}: {problem}", pytrace=False)
        if warning and warning not in self.warnings:
            self.warnings.append(warning)
        return settings

    def fault_plan(self, item: pytest.Item) -> Any:
        """The faults of the item's samples: its own @llmcheck.faults, else --llm-faults,
        else None; the interception is installed the first time a plan applies."""
        from llmcheck.injection.catalogue import FaultPlan

        # --llm-faults was checked when the session started (llmcheck.config.faults)
        plan = FaultPlan.build(self.setting("faults"))
        marker = item.get_closest_marker("llm_faults")
        if marker is not None:
            try:
                plan = FaultPlan.build(*marker.args[:1], **marker.kwargs)
            except (TypeError, UsageError) as exc:
                problem = str(exc)
            else:
                problem = None
            if problem is not None:
                pytest.fail(f"{item.nodeid}: @pytest.mark.llm_faults: {problem}", pytrace=False)
        if plan:
            import llmcheck.injection.inprocess as inprocess  # via sys.modules

            inprocess.install()
        return plan or None

    def tool_fault_plan(self, item: pytest.Item) -> Any:
        """The tool faults of the item's tool loops (its @llmcheck.tool_faults), or None."""
        marker = item.get_closest_marker("llm_tool_faults")
        if marker is None:
            return None
        from llmcheck.episodes.faults import tool_fault_plan

        try:
            return tool_fault_plan(*marker.args[:1], **marker.kwargs)
        except (TypeError, UsageError) as exc:
            problem = str(exc)
        pytest.fail(f"{item.nodeid}: @pytest.mark.llm_tool_faults: {problem}", pytrace=False)

    # -- collecting records ----------------------------------------------
    def add_report(self, report: pytest.TestReport, raw: str) -> None:
        from llmcheck.records.schema import TestRecord

        record = TestRecord.model_validate_json(raw)
        wasxfail = getattr(report, "wasxfail", None)
        if wasxfail is not None:
            record = record.model_copy(update={"xfail": wasxfail or "expected to fail"})
        self.records[record.nodeid] = record
        for w in record.warnings:
            if w not in self.warnings:
                self.warnings.append(w)
        self.save(final=False)

    def add_partial(self, record: Any) -> None:
        """Keep the samples of an item interrupted mid-run (Ctrl-C)."""
        if not self.is_worker:
            self.records[record.nodeid] = record

    # -- the JSON file -----------------------------------------------------
    @property
    def report_dir(self) -> Path:
        return Path(self.config.invocation_params.dir) / self.setting("report_dir")

    @property
    def report_path(self) -> Path:
        return self.report_dir / "llmcheck.json"

    def journal_start(self, spec: Any) -> Any:
        """Journal the test's settings; return the per-sample journaling callback."""
        self.journal.start(spec.test_id, spec.settings, model=spec.model,
                           simulated=spec.simulated)
        nodeid = spec.test_id
        return lambda sample: self.journal.sample(nodeid, sample)

    def save(self, *, final: bool, exitstatus: int | None = None) -> Path | None:
        if self.is_worker or not self.records:
            return None
        now_t = time.perf_counter()
        if not final and now_t - self._last_save < SAVE_EVERY:
            return None
        self._last_save = now_t
        from llmcheck.records.schema import now, save_session

        session = self.session_record()
        if final:
            session.finished = now()
            session.duration = now_t - self._t0
            session.exit_status = exitstatus
            session.interrupted = exitstatus == int(pytest.ExitCode.INTERRUPTED)
        try:
            saved = save_session(session, self.report_path)
        except OSError as exc:  # a full disk fails the file, never the session
            self.note_unwritten("the JSON report", self.report_path, exc)
            return None
        self.unwritten.pop(str(self.report_path), None)  # an earlier snapshot's problem
        return saved

    # -- files that could not be written -------------------------------------
    def note_unwritten(self, what: str, path: Path, why: OSError | str) -> None:
        """Keep why ``path`` could not be written, for the report's and the summary's
        warnings: the tests go on and keep their verdicts."""
        from llmcheck.files import write_error

        reason = write_error(why) if isinstance(why, OSError) else why
        self.unwritten[str(path)] = f"could not write {what} {path}: {reason}"

    def writes_failed(self) -> dict[str, str]:
        """Every file of this process that could not be written (the journal and the
        cache stop at their first failed write; the reports are noted as they fail)."""
        if self.journal.problem is not None:
            self.note_unwritten("the sample journal", self.journal.path, self.journal.problem)
        accounts = self.models.accounts
        cache = accounts.cache if accounts is not None else None
        if cache is not None and cache.write_problem is not None:
            self.note_unwritten("the replay cache", cache.path, cache.write_problem)
        return self.unwritten

    def session_record(self) -> Any:
        from llmcheck.records.schema import SessionRecord

        return SessionRecord.assemble(
            list(self.records.values()), seed=self.seed, started=self.started,
            model=self.setting("model"), local_model=self.models.local_record(),
            options={name: {"value": r.value, "source": r.source}
                     for name, r in self.resolved.items()},
            warnings=(self.warnings + self.error_share_warnings()
                      + list(self.writes_failed().values())),
            cache=self.cache_stats(),
            shard=None if self.setting("shard") is None else "/".join(
                map(str, self.setting("shard"))))

    def error_share_warnings(self) -> list[str]:
        """Tests whose samples too often could not reach the model: their rates rest on
        fewer samples than planned, and errors may hide failures."""
        limit = self.setting("max_error_share")
        heavy = [f"{r.nodeid} ({r.errors}/{r.passed + r.failed + r.errors})"
                 for r in self.records.values()
                 if r.errors and r.errors > limit * (r.passed + r.failed + r.errors)]
        if not heavy:
            return []
        return [f"{len(heavy)} test(s) had more than {limit:.0%} of their samples end in "
                f"infrastructure errors (--llm-max-error-share): {', '.join(heavy)}"]

    def cache_stats(self) -> Any:
        """Replay hits and misses, counted from the calls recorded in the tests (so
        they add up across xdist workers)."""
        mode = self.setting("cache")
        if mode == "off":
            return None
        from llmcheck.records.schema import CacheStats

        calls = [c for r in self.records.values() for s in r.samples for c in s.calls]
        hits = sum(c.cached for c in calls)
        reads = mode in ("read", "rw")
        models: list[str] = []
        # what the cache holds only explains a replay that never hit: no query otherwise
        accounts = self.models.accounts
        if reads and calls and not hits and accounts is not None and accounts.cache:
            models = accounts.cache.recorded_models()
        return CacheStats(mode=mode, path=str(self.cache_path), hits=hits,
                          misses=len(calls) - hits if reads else 0, recorded_models=models)

    @property
    def cache_path(self) -> Path:
        return Path(self.config.invocation_params.dir) / self.setting("cache_path")

    def finish(self, exitstatus: int) -> None:
        if self.models.accounts is not None:
            self.models.accounts.close()
        self.journal.close()
        if self.is_worker:
            return
        from llmcheck_pytest import journal

        interrupted = exitstatus == int(pytest.ExitCode.INTERRUPTED)
        reason = journal.INTERRUPTED if interrupted else journal.DIED
        try:
            for record in journal.recover(self.report_dir, self.token, set(self.records),
                                          reason):
                self.records[record.nodeid] = record
                why = record.verdict.stop_reason if record.interrupted else \
                    "finished, but its report never reached the controller"
                self.warnings.append(f"{record.nodeid}: {why}; its record was rebuilt from "
                                     "the samples journaled")
        except (OSError, ValueError, TypeError) as exc:
            self.warnings.append(f"could not read the sample journal: {exc}")
        self.warnings += self.reconciler.reconcile(self.records)
        saved = self.save(final=True, exitstatus=exitstatus)
        if saved is not None or not self.records:
            journal.clear(self.report_dir, self.token)
        if saved is not None:  # llmcheck.md, llmcheck.html, $GITHUB_STEP_SUMMARY
            from llmcheck.reports.files import write_views

            self.views = write_views(saved)

    # -- the terminal ------------------------------------------------------
    def header(self) -> str:
        v = self.resolved
        runs = v["runs"]
        runs_text = f"{runs.value}" if runs.value is not None else "per test"
        session_alpha = v["session_alpha"].value
        held = f" session-alpha={session_alpha:g}" if session_alpha is not None else ""
        return (f"llmcheck: seed={self.seed} runs={runs_text} verdict={v['verdict'].value}"
                f"{held} concurrency={v['concurrency'].value} (reproduce with "
                f"--llm-seed={self.seed})")

    def terminal_summary(self, tr: Any, exitstatus: int) -> None:
        from llmcheck_pytest.summary import write_summary

        write_summary(self, tr)

    def unjudged(self) -> list[str]:
        """LLM tests the budget left without a single sample, hence without a verdict."""
        return [r.nodeid for r in self.records.values() if r.run == 0 and r.budget_stopped]

    def recover_earlier_runs(self) -> None:
        """Turn the journal of an earlier run that was killed into a report of its own."""
        if self.is_worker:
            return
        from llmcheck_pytest import journal

        self.recovered = journal.recover_stale(self.report_dir, self.token)

    # -- hooks (this object is registered as a plugin) ---------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        unwritten = getattr(report, UNWRITTEN_ATTR, None)  # a worker's failed writes
        if isinstance(unwritten, dict) and not self.is_worker:
            self.unwritten.update(unwritten)
        raw = getattr(report, REPORT_ATTR, None)
        if not self.is_worker:
            self.reconciler.see(report, has_record=raw is not None)
        if raw is not None and report.when == "call":
            self.add_report(report, raw)
