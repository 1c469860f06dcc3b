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

from llmcheck.errors import UsageError
from llmcheck.settings import validate_marker_kwargs
from pytest_plugin.options import Resolved

SAVE_EVERY = 0.5  # seconds: the JSON file is rewritten at most this often during a run
DEFAULT_RUNS = 10

SESSION_KEY = pytest.StashKey["SessionState"]()
REPORT_ATTR = "llmcheck_record"
"""The test report attribute carrying a TestRecord as JSON (survives xdist)."""


class SessionState:
    def __init__(self, config: pytest.Config, resolved: dict[str, Resolved], seed: int,
                 *, is_worker: bool, token: str | None = None) -> None:
        import uuid
        from datetime import datetime, timezone

        from pytest_plugin.journal import Journal

        self.config = config
        self.resolved = resolved
        self.seed = seed
        self.is_worker = is_worker
        self.records: dict[str, Any] = {}
        self.warnings: list[str] = []
        self._last_save = 0.0
        self._t0 = time.perf_counter()
        self.started = datetime.now(timezone.utc)
        self.simulator: Any = None
        self._endpoint: Any = None
        self._model_session_obj: Any = None
        self.token = token or uuid.uuid4().hex[:12]
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        self.journal = Journal(self.report_dir, self.token, worker)
        if self.setting("cache") != "off":
            self.model_session  # noqa: B018 - open the cache now: a bad file is a usage error

    @property
    def model_session(self) -> Any:
        """Created on first use, so a run without LLM tests never imports the client."""
        if self._model_session_obj is None:
            self._model_session_obj = self._model_session()
        return self._model_session_obj

    # -- the model ---------------------------------------------------------
    def _model_session(self) -> Any:
        """Pacing, budget and cache shared by every client in this process.
        Under xdist, limits are split evenly between the workers."""

        from llmcheck.client import Budget, ModelSession, RateLimiter, budget_split, calls_split

        # Only an xdist worker of this session splits the limits (not a process that
        # merely inherited xdist's environment variables).
        workerinput = getattr(self.config, "workerinput", None) or {}
        workers = int(workerinput.get("workercount", 1) or 1)
        cache = None
        if self.setting("cache") != "off":
            from llmcheck.cache import ResponseCache

            path = Path(self.config.invocation_params.dir) / self.setting("cache_path")
            try:
                cache = ResponseCache(path, self.setting("cache"))
            except UsageError as exc:
                raise pytest.UsageError(f"--llm-cache: {exc}") from None
        return ModelSession(
            limiter=RateLimiter(budget_split(self.setting("rpm"), workers)),
            budget=Budget(budget_split(self.setting("max_cost"), workers),
                          calls_split(self.setting("max_calls"), workers)),
            cache=cache,
        )

    def budget_exhausted(self) -> str | None:
        if self._model_session_obj is None:
            return None
        return self.model_session.budget.exhausted

    def endpoint(self) -> Any:
        """The configured model, or the simulator (started now, once)."""
        from llmcheck.client import SIMULATOR_MODEL, ModelConfig

        if self._endpoint is not None:
            return self._endpoint
        params = {k: self.setting(k) for k in ("temperature", "max_tokens")
                  if self.setting(k) is not None}
        common = dict(params=params, timeout=self.setting("timeout"),
                      retries=self.setting("retries"), backoff=self.setting("backoff"))
        if self.setting("model"):
            self._endpoint = ModelConfig(model=self.setting("model"),
                                         api_base=self.setting("api_base"),
                                         api_key_env=self.setting("api_key_env"), **common)
        else:
            from llmcheck.simulator import SimulatorServer

            scenario = self.setting("scenario")
            if scenario is not None:
                scenario = Path(self.config.invocation_params.dir) / scenario
            try:
                self.simulator = SimulatorServer(scenario=scenario).start()
            except UsageError as exc:
                raise pytest.UsageError(f"--llm-scenario: {exc}") from None
            self._endpoint = ModelConfig(model=SIMULATOR_MODEL, api_base=self.simulator.url,
                                         simulated=True, **common)
        return self._endpoint

    def client(self, endpoint: Any, overrides: dict[str, Any]) -> Any:
        from dataclasses import replace

        from llmcheck.client import LLMClient

        config = endpoint
        params = {k: overrides[k] for k in ("temperature", "max_tokens") if k in overrides}
        if params:
            config = replace(config, params={**config.params, **params})
        client = LLMClient(config, self.model_session)
        if "model" in overrides and overrides["model"] != config.model:
            client = client.with_model(overrides["model"])
        return client

    def stop_simulator(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        self._endpoint = None

    def setting(self, name: str) -> Any:
        return self.resolved[name].value

    # -- settings of one item --------------------------------------------
    def item_settings(self, item: pytest.Item) -> dict[str, Any]:
        """Merge the marker's keywords with the session settings and build the policy.

        A bad value fails the item's setup with a message naming it, rather
        than stopping the whole session.
        """
        from llmcheck import stats

        marker = item.get_closest_marker("llm")
        assert marker is not None
        where = "@pytest.mark.llm"
        try:
            kwargs = dict(marker.kwargs)
            if marker.args:
                if len(marker.args) == 1 and "runs" not in kwargs:
                    kwargs["runs"] = marker.args[0]
                else:
                    raise UsageError(
                        f"{where}{marker.args!r}: positional arguments are not accepted "
                        "(except one: runs); pass keywords, e.g. @llmcheck.repeat(runs=20)"
                    )
            kw = validate_marker_kwargs(kwargs, where)
            g = self.resolved

            def pick(name: str) -> Any:
                return kw[name] if name in kw else g[name].value

            if g["runs"].source in ("command line", "environment"):
                runs = g["runs"].value
            elif "runs" in kw:
                runs = kw["runs"]
            else:
                runs = g["runs"].value  # ini, or None (policy default)
            if g["no_early_stop"].value:
                early_stop = False
            else:
                early_stop = kw.get("early_stop", True)
            verdict = pick("verdict")
            if runs is None and verdict != "sequential":
                runs = DEFAULT_RUNS
            policy = stats.make_policy(
                verdict,
                min_pass_rate=pick("min_pass_rate"),
                confidence=pick("confidence"),
                max_samples=runs,
                margin=pick("margin"),
                alpha=pick("alpha"),
                beta=pick("beta"),
            )
        except UsageError as exc:
            pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)
        warnings = []
        warning = getattr(policy, "warning", None)
        if warning:
            warnings.append(warning)
            if warning not in self.warnings:
                self.warnings.append(warning)
        overrides = {k: kw[k] for k in ("model", "temperature", "max_tokens") if k in kw}
        return {
            "model_overrides": overrides,
            "runs": policy.max_samples,
            "policy": policy,
            "concurrency": pick("concurrency"),
            "early_stop": early_stop,
            "interval": pick("interval"),
            "warnings": warnings,
        }

    # -- collecting records ----------------------------------------------
    def add_report(self, report: pytest.TestReport, raw: str) -> None:
        from llmcheck.records import TestRecord

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

    def journal_start(self, spec: Any, settings: dict[str, Any]) -> Any:
        """Journal the test's settings; return the per-sample journaling callback."""
        policy = spec.policy
        self.journal.start(spec.test_id, {
            "runs": spec.runs, "policy": policy.name, "min_pass_rate": policy.min_pass_rate,
            "confidence": policy.confidence, "margin": getattr(policy, "margin", 0.05),
            "alpha": getattr(policy, "alpha", 0.05), "beta": getattr(policy, "beta", 0.05),
            "interval": spec.interval_method, "concurrency": spec.concurrency,
            "early_stop": spec.early_stop, "model": spec.model, "warnings": spec.warnings,
        })
        nodeid = spec.test_id
        return lambda sample: self.journal.sample(nodeid, sample)

    def save(self, *, final: bool, exitstatus: int | None = None) -> Path | None:
        if self.is_worker or not self.records:
            return None
        now_t = time.perf_counter()
        if not final and now_t - self._last_save < SAVE_EVERY:
            return None
        self._last_save = now_t
        import llmcheck
        from llmcheck.records import SessionRecord, now, save_session

        session = SessionRecord(
            llmcheck_version=llmcheck.__version__,
            started=self.started,
            seed=self.seed,
            options={name: {"value": r.value, "source": r.source}
                     for name, r in self.resolved.items()},
            tests=list(self.records.values()),
            aggregates=self.aggregates(),
            warnings=list(self.warnings),
            **self._model_summary(),
        )
        if final:
            session.finished = now()
            session.duration = now_t - self._t0
            session.exit_status = exitstatus
            session.interrupted = exitstatus == int(pytest.ExitCode.INTERRUPTED)
        return save_session(session, self.report_path)

    def aggregates(self) -> list[Any]:
        from llmcheck.records import case_aggregates
        from llmcheck.runner import interval_fn

        interval = interval_fn(self.setting("interval"), self.setting("confidence"))
        return case_aggregates(list(self.records.values()), interval)

    def _model_summary(self) -> dict[str, Any]:
        from llmcheck.client import SIMULATOR_MODEL
        from llmcheck.records import UsageTotals

        usage = UsageTotals()
        for r in self.records.values():
            usage = usage + r.usage
        models = {r.model for r in self.records.values() if r.model}
        budget = next((r.verdict.stop_reason for r in self.records.values()
                       if r.budget_stopped), None)
        return {
            "model": self.setting("model") or (SIMULATOR_MODEL if models else None),
            "simulated": SIMULATOR_MODEL in models,
            "usage": usage,
            "budget": budget,
        }

    def finish(self, exitstatus: int) -> None:
        if self._model_session_obj is not None:
            self._model_session_obj.close()
        self.journal.close()
        if self.is_worker:
            return
        from pytest_plugin import journal

        try:
            for record in journal.recover(self.report_dir, self.token, set(self.records)):
                self.records[record.nodeid] = record
                self.warnings.append(f"{record.nodeid}: {record.verdict.stop_reason}; its "
                                     "record was rebuilt from the samples journaled")
        except (OSError, ValueError) as exc:
            self.warnings.append(f"could not read the sample journal: {exc}")
        try:
            saved = self.save(final=True, exitstatus=exitstatus)
        except OSError as exc:
            tr = self.config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None:
                tr.write_line(f"llmcheck: could not write {self.report_path}: {exc}", red=True)
            return
        if saved is not None or not self.records:
            journal.clear(self.report_dir, self.token)

    # -- the terminal ------------------------------------------------------
    def header(self) -> str:
        v = self.resolved
        runs = v["runs"]
        runs_text = f"{runs.value}" if runs.value is not None else "per test (default 10)"
        return (f"llmcheck: seed={self.seed} runs={runs_text} verdict={v['verdict'].value} "
                f"concurrency={v['concurrency'].value} (reproduce with --llm-seed={self.seed})")

    def terminal_summary(self, tr: Any, exitstatus: int) -> None:
        if self.is_worker or not self.records:
            return
        from llmcheck.render import summary_table

        tr.write_sep("=", f"llmcheck pass rates (seed {self.seed})")
        for line in summary_table(self.records.values()).splitlines():
            tr.write_line(line)
        from llmcheck.render import aggregates_table, failing_checks_lines

        aggregates = self.aggregates()
        if aggregates:
            tr.write_line("")
            for line in aggregates_table(aggregates).splitlines():
                tr.write_line(line)
        checks = failing_checks_lines(self.records.values())
        if checks:
            tr.write_line("")
            tr.write_line("failing checks (samples failed / evaluated):")
            for line in checks:
                tr.write_line("  " + line)
        inconclusive = [r for r in self.records.values()
                        if not r.verdict.conclusive and r.verdict.outcome != "error"]
        if inconclusive:
            tr.write_line(
                f"{len(inconclusive)} verdict(s) inconclusive: the interval still contains the "
                "required rate, so the verdict could flip on a rerun; n≈ is the number of "
                "samples that would settle it at the observed rate"
            )
        for w in self.warnings:
            tr.write_line(f"warning: {w}", yellow=True)
        from llmcheck.render import usage_line

        summary = self._model_summary()
        if summary["usage"].calls:
            tr.write_line(usage_line(summary["usage"], "llmcheck model usage"))
        if summary["budget"]:
            tr.write_line(f"llmcheck budget: {summary['budget']}; tests marked 'budget' "
                          "got their verdict from the samples collected before it ran out",
                          red=True)
        if summary["simulated"]:
            tr.write_line(
                "llmcheck: no model configured, so these tests ran against the built-in "
                "simulator; to test a real model pass --llm-model=openai/gpt-4o-mini "
                "--llm-api-key-env=OPENAI_API_KEY (or any litellm model, with --llm-api-base "
                "for a local server)", cyan=True)
        tr.write_line(f"llmcheck report: {self.report_path}")

    # -- hooks (this object is registered as a plugin) ---------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = getattr(report, REPORT_ATTR, None)
        if raw is not None and report.when == "call":
            self.add_report(report, raw)
