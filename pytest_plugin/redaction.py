"""What llmcheck hands pytest for an LLM test, with secrets masked: the ``--junitxml``
properties, and the captured output and properties of the test's report (which
pytest prints, and writes into the JUnit XML with ``junit_logging``).

A test's samples run inside llmcheck's runner, where a provider may echo the key
into an answer that the test prints or logs; llmcheck's own failure texts are
redacted where they are made (see :mod:`llmcheck.redact`). Reports of other tests
are pytest's own and are left as they are.
"""

from __future__ import annotations

from typing import Any

import pytest

from llmcheck.redact import redact


def junit_properties(record: Any) -> list[tuple[str, str]]:
    """The pass rate and verdict as ``--junitxml`` properties, so CI dashboards show
    them for passing tests too (pytest writes an item's user_properties there)."""
    rate = "" if record.pass_rate is None else f"{record.pass_rate:.6g}"
    properties = [("pass_rate", rate), ("interval_low", f"{record.interval.low:.6g}"),
                  ("interval_high", f"{record.interval.high:.6g}"),
                  ("required", f"{record.min_pass_rate:g}"),
                  ("samples", str(record.passed + record.failed + record.errors)),
                  ("verdict", record.verdict.outcome),
                  ("conclusive", str(record.verdict.conclusive).lower())]
    return [(name, redact(value)) for name, value in properties]


def redact_report(report: pytest.TestReport) -> None:
    """Mask secrets in an LLM test's captured output (stdout, stderr, log: what the
    samples printed) and in the string properties it recorded (``record_property``)."""
    report.sections = [(title, redact(content)) for title, content in report.sections]
    report.user_properties = [(name, redact(value) if isinstance(value, str) else value)
                              for name, value in report.user_properties]
