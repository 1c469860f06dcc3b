"""The report and pytest agree on tests whose record never arrived.

A test's record normally travels on its call report. When the process running it dies
(an xdist worker killed mid-test), pytest-xdist reports the test FAILED ("worker 'gw0'
crashed while running ...") and the controller rebuilds the record from the journal;
that record used to carry whatever verdict its samples added up to ("passed
(inconclusive)"), and with no journal (deleted, or a full disk) the test vanished from
the report without a word. Here, the controller remembers every LLM test whose setup
passed (its resolved settings travel on the setup report, so they survive the worker)
and every such test that pytest then failed without a record; at the end each of those
gets the outcome pytest gave it, with the reason, and a warning: samples journaled
before are kept, and a test with none is still listed, with no samples.
"""

from __future__ import annotations

from typing import Any

import pytest

SETTINGS_ATTR = "llmcheck_settings"
"""The setup report attribute carrying an LLM test's resolved TestSettings as JSON."""


class Reconciler:
    """What the controller saw of each LLM test's reports, and the records it fixes."""

    def __init__(self) -> None:
        self.started: dict[str, str] = {}
        """LLM tests whose setup passed: their settings (JSON)."""
        self.lost: dict[str, str] = {}
        """LLM tests pytest failed with no record on the report: pytest's reason."""

    def see(self, report: pytest.TestReport, has_record: bool) -> None:
        settings = getattr(report, SETTINGS_ATTR, None)
        if report.when == "setup" and report.passed and isinstance(settings, str):
            self.started[report.nodeid] = settings
        elif (report.failed and report.when != "setup" and not has_record
              and report.nodeid in self.started):
            # "call", or "???": the report pytest-xdist makes for a crashed worker's test
            text = report.longreprtext.strip().splitlines()
            self.lost[report.nodeid] = text[-1] if text else "failed with no record"

    def reconcile(self, records: dict[str, Any]) -> list[str]:
        """Give every lost test pytest's outcome in ``records`` (adding a record without
        samples where none could be rebuilt); return the warnings to show."""
        warnings: list[str] = []
        for nodeid, why in self.lost.items():
            # imported only when a test was lost: a session without LLM tests loads no records
            from llmcheck.core.runner import RunSpec, rebuild_record
            from llmcheck.records.schema import TestSettings

            record = records.get(nodeid)
            if record is None:
                settings = TestSettings.model_validate_json(self.started[nodeid])
                record = rebuild_record(RunSpec(test_id=nodeid, settings=settings), [], why)
                kept = ("no sample of it was journaled (the journal was missing or could not "
                        "be written), so the report has none")
            else:
                kept = (f"the {record.run} sample(s) journaled before are kept, but they are "
                        "no verdict")
            reason = f"pytest failed it: {why}; {kept}"
            verdict = record.verdict.model_copy(update={
                "outcome": "failed", "conclusive": False, "reason": reason})
            records[nodeid] = record.model_copy(update={"verdict": verdict,
                                                        "interrupted": True})
            warnings.append(f"{nodeid}: {reason}")
        return warnings
