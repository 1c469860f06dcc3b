"""The pre-merge gate inside a pytest session: ``--llm-baseline=PATH``.

At startup the baseline (or a report) is read, so a missing or broken file is a
usage error before any sample is spent. When the test loop is over, the session's
records are compared with it (:func:`llmcheck.gate.compare.compare`) and the comparison is
printed at the end of the terminal summary, regressions in red. With
``--llm-fail-on-regression`` a regression fails the session the way pytest-cov
fails one under its coverage threshold: the ``pytest_runtestloop`` wrapper adds
to ``session.testsfailed``, from which pytest itself derives exit status 1
(``pytest_sessionfinish`` would be too late: pytest has computed the status by then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PLUGIN_NAME = "llmcheck-gate"


def register(config: pytest.Config, state: Any) -> None:
    """Register the gate when a baseline is configured (never on an xdist worker:
    the controller holds the records and the terminal)."""
    baseline = state.setting("baseline")
    if baseline is None:
        if state.setting("fail_on_regression"):
            raise pytest.UsageError("--llm-fail-on-regression needs a baseline to compare "
                                    "with: pass --llm-baseline=PATH (a file written by "
                                    "`llmcheck baseline save REPORT`)")
        return
    if state.is_worker:
        return
    config.pluginmanager.register(GatePlugin(config, state, baseline), PLUGIN_NAME)


class GatePlugin:
    def __init__(self, config: pytest.Config, state: Any, baseline: str) -> None:
        from llmcheck.errors import LLMCheckError
        from llmcheck.gate.baseline import load_counts
        from llmcheck.reports.terminal import printable

        self.state = state
        self.path = Path(config.invocation_params.dir) / baseline
        try:
            self.kind, self.base = load_counts(self.path)
        except LLMCheckError as exc:
            raise pytest.UsageError(f"--llm-baseline: {printable(str(exc))}") from None
        self.result: Any = None

    def compare(self) -> Any:
        from llmcheck.gate.compare import Counts, compare

        head = [Counts.of_test(r) for r in self.state.records.values()]
        s = self.state.setting
        return compare(self.base, head, test=s("regression_test"),
                       correction=s("regression_correction"), alpha=s("regression_alpha"),
                       margin=s("regression_margin"))

    def write_markdown(self) -> list[str]:
        """The comparison as markdown, beside the report (``llmcheck-compare.md``) and
        appended to ``$GITHUB_STEP_SUMMARY`` when set: what a pull request shows."""
        import os

        from llmcheck.files import write_atomic
        from llmcheck.gate.compare import render_lines
        from llmcheck.reports.files import STEP_SUMMARY_ENV, append_step_summary

        markdown = "\n".join(line for line, _ in render_lines(self.result, "md")) + "\n"
        path = self.state.report_dir / "llmcheck-compare.md"
        lines = []
        try:
            write_atomic(path, markdown)
            lines.append(f"llmcheck comparison: {path}")
        except OSError as exc:
            lines.append(f"llmcheck: could not write {path}: {exc.strerror or exc}")
        target = os.environ.get(STEP_SUMMARY_ENV, "").strip()
        if target:
            try:
                append_step_summary(Path(target), markdown)
            except OSError as exc:
                lines.append(f"llmcheck: could not append the comparison to "
                             f"${STEP_SUMMARY_ENV} ({target}): {exc.strerror or exc}")
        return lines

    # -- hooks -------------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> str:
        return (f"llmcheck: comparing with the {self.kind} {self.path} "
                f"({len(self.base)} test(s))")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        result = yield
        if self.state.records:
            self.result = self.compare()
            if self.result.regressions and self.state.setting("fail_on_regression"):
                session.testsfailed += 1
        return result

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int,
                                config: pytest.Config) -> None:
        from llmcheck.gate.compare import render_lines
        from llmcheck.reports.terminal import printable

        tr = terminalreporter
        if self.result is None:
            if not self.state.records and exitstatus != int(pytest.ExitCode.INTERRUPTED):
                tr.write_line(printable(f"llmcheck: no LLM test ran, so nothing was compared "
                                        f"with {self.path}"), yellow=True)
            return
        tr.write_sep("=", printable(f"llmcheck comparison with {self.path}"))
        for line, status in render_lines(self.result):
            tr.write_line(printable(line), red=status == "regressed")
        for line in self.write_markdown():
            tr.write_line(printable(line), yellow=line.startswith("llmcheck: could not"))
        regressions = self.result.regressions
        if not regressions:
            return
        names = ", ".join(r.nodeid for r in regressions)
        if self.state.setting("fail_on_regression"):
            tr.write_line(printable(f"llmcheck: {len(regressions)} test(s) regressed against "
                                    f"the baseline, so the session fails "
                                    f"(--llm-fail-on-regression): {names}"), red=True)
        else:
            tr.write_line(printable(f"llmcheck: {len(regressions)} test(s) regressed against "
                                    f"the baseline: {names} (--llm-fail-on-regression would "
                                    "fail the session)"), yellow=True)
