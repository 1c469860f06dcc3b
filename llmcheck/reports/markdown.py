"""The markdown report: GitHub-flavoured markdown rendered from a saved session.

    from llmcheck.records.schema import load_session
    from llmcheck.reports.markdown import render_markdown
    print(render_markdown(load_session("reports/llmcheck.json")))

The plugin writes it as ``llmcheck.md`` beside the JSON and appends it to
``$GITHUB_STEP_SUMMARY``; ``llmcheck report PATH.json`` prints it. Sections: the
session (model, runs, seed, duration, usage, verdict counts), one row per test, the
pooled case rates, pass^k and pass@k of episode tests, the per-check breakdowns, the
pass rates per injected fault kind (only when faults were injected), the most frequent
failure messages and what the first failing sample of each sent to the model and got
back.

Test names, check names and messages come from test code and model output, so every
such text is escaped (:func:`md_text`, :func:`md_code`): a ``|``, a newline, a backtick
or ``<script>`` in a message is shown as text and cannot break a table or add HTML.
"""

from __future__ import annotations

import re

from llmcheck.core.outcome import shorten_message
from llmcheck.records.schema import SessionRecord
from llmcheck.reports.latency import NOTE as LATENCY_NOTE
from llmcheck.reports.latency import latency_rows
from llmcheck.reports.reliability import k_value_text, reliability_rows
from llmcheck.reports.steps import NOTE as STEPS_NOTE
from llmcheck.reports.steps import step_rows
from llmcheck.reports.view import FaultView, SessionView, TestView, session_view

TOP_MESSAGES = 20
"""Failure messages listed in the "top failure messages" table."""

_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#!])")


def md_text(value: str) -> str:
    """``value`` as literal markdown text, safe in a table cell: markdown punctuation
    backslash-escaped, ``&``, ``<`` and ``>`` as entities, newlines as ``<br>``."""
    value = _PUNCTUATION.sub(r"\\\1", value)
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")


def md_code(value: str, *, in_table: bool = True) -> str:
    """``value`` as an inline code span: a fence longer than any run of backticks
    inside, newlines as spaces and, ``in_table``, ``|`` escaped (GFM unescapes it in
    code spans in tables, and only there)."""
    value = re.sub(r"\s*[\r\n]+\s*", " ", value)
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or not value.strip() else ""
    if in_table:
        value = value.replace("|", "\\|")
    return f"{fence}{pad}{value}{pad}{fence}"


def md_fence(value: str) -> str:
    """``value`` as a fenced code block, shown verbatim: the fence is a run of backticks
    longer than any inside, so no line of ``value`` can close it, and nothing inside
    (pipes, ``<script>``, markdown) is read as markup."""
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{value}\n{fence}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A GFM table (cells already escaped)."""
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _priority(t: TestView) -> int:
    """Rows shown first when a table is cut: failures and errors, then inconclusive
    verdicts, then passes with failing samples."""
    if t.outcome != "passed":
        return 0
    if not t.is_conclusive:
        return 1
    return 2 if t.failing_samples else 3


def _cut(tests: list[TestView], max_rows: int | None) -> tuple[list[TestView], int]:
    if max_rows is None or len(tests) <= max_rows:
        return tests, 0
    keep = {id(t) for t in sorted(tests, key=_priority)[:max_rows]}
    return [t for t in tests if id(t) in keep], len(tests) - max_rows


def header_section(view: SessionView) -> list[str]:
    model = md_code(view.model, in_table=False)
    if view.simulated:
        model += " (built-in simulator)"
    lines = [
        "## llmcheck report",
        "",
        f"**{md_text(view.counts_text)}** ({len(view.tests)} LLM test(s))",
        "",
        f"- model: {model}",
        f"- runs: {md_text(view.runs)}; seed: {view.seed} (reproduce with "
        f"`--llm-seed={view.seed}`)",
        f"- started {view.started}, duration {view.duration_text}",
    ]
    if view.calls:
        lines.append(f"- model usage: {view.calls:,} call(s), {view.tokens:,} tokens "
                     f"({view.prompt_tokens:,} prompt + {view.completion_tokens:,} completion), "
                     f"cost {md_text(view.cost_text)}")
    if len(view.tests) > 1 and view.false_fail != "-":
        lines.append(f"- chance that a session like this fails a test on bad luck alone: "
                     f"{view.false_fail}")
    lines += [f"- {md_text(note)}" for note in view.notes]
    lines += [f"- **warning:** {md_text(w)}" for w in view.warnings]
    return lines


def tests_section(view: SessionView, max_rows: int | None) -> list[str]:
    tests, cut = _cut(view.tests, max_rows)
    rows = [[md_code(t.nodeid), t.rate_text, t.interval_text,
             t.required_text, f"**{md_text(t.verdict)}**", md_text(t.conclusive),
             md_text(t.samples_text), md_text(t.early), str(t.errors), md_text(t.cost_text)]
            for t in tests]
    lines = ["", "### Tests", "",
             table(["test", "pass rate", "interval", "required", "verdict", "conclusive",
                    "samples (counted/planned)", "early stop", "errors", "cost"], rows)]
    notes = []
    if any(t.rate_text.endswith(")") for t in tests):
        notes.append("pass rate (x): x counts the infrastructure errors as failures, the "
                     "worst case.")
    if any(t.conclusive.startswith("no") for t in tests):
        notes.append("An inconclusive verdict could flip on a rerun: the interval still "
                     "holds the required rate; n≈ is the number of samples that would "
                     "settle it.")
    if notes:
        lines += ["", " ".join(notes)]
    if cut:
        lines += ["", f"… {cut} more test(s) that passed conclusively are not listed here: "
                      "see the full report (llmcheck.md, llmcheck.html)."]
    return lines


def checks_section(view: SessionView, max_rows: int | None) -> list[str]:
    checks = view.checks
    if not checks:
        return []
    cut = 0
    if max_rows is not None and len(checks) > max_rows:
        failing = [c for c in checks if c.failed]
        checks = (failing + [c for c in checks if not c.failed])[:max_rows]
        cut = len(view.checks) - len(checks)
    rows = [[md_code(c.test), md_code(c.name), str(c.failed), str(c.evaluated),
             c.rate_text, c.interval_text, md_text(c.example)] for c in checks]
    lines = ["", "### Checks", "",
             "Per sample: a check that failed in a sample counts once for it.", "",
             table(["test", "check", "failed", "evaluated", "pass rate", "interval",
                    "first failure"], rows)]
    if cut:
        lines += ["", f"… {cut} more check(s) are not listed here."]
    return lines


def faults_section(view: SessionView, max_rows: int | None) -> list[str]:
    """The pass rate of each test in the samples that got each injected fault kind (and
    in those that got none); nothing when no fault was injected nor planned."""
    tests = view.fault_tests
    if not tests:
        return []
    lines = ["", "### Faults injected", "",
             "Pass counts of the samples that got each injected fault kind and did not "
             "recover from it (a sample with two kinds counts under both), and of those "
             "judged as clean: no fault, or every fault recovered from (a later request got "
             "a usable answer; counted under 'recovered' in its kind's row). Tool faults "
             "(tool_*) are never counted as recovered.", ""]
    lines += [f"- {md_code(t.nodeid, in_table=False)}: "
              + (md_code(t.fault_plan, in_table=False) if t.fault_plan else "no fault plan")
              + ("" if t.faults else "; no fault was drawn in its samples")
              for t in tests]
    faults = view.faults
    if not faults:
        return lines
    listed: list[FaultView] = faults
    if max_rows is not None and len(faults) > max_rows:
        keep = {id(f) for f in sorted(faults, key=lambda f: -(f.failed + f.errors))[:max_rows]}
        listed = [f for f in faults if id(f) in keep]
    rows = [[md_code(f.test), md_code(f.kind), str(f.samples), str(f.passed), str(f.failed),
             str(f.errors), str(f.recovered), f.rate_text, f.interval_text,
             md_text(f.summary)] for f in listed]
    lines += ["", table(["test", "fault", "samples", "passed", "failed", "errors", "recovered",
                         "pass rate", "interval", "summary"], rows)]
    if len(listed) < len(faults):
        lines += ["", f"… {len(faults) - len(listed)} more fault row(s) are not listed here."]
    return lines


def aggregates_section(view: SessionView) -> list[str]:
    if not view.aggregates:
        return []
    rows = [[md_code(a.test), str(a.cases), f"{a.cases_passed}/{a.cases}", str(a.passed),
             str(a.failed), str(a.errors), "-" if a.rate is None else f"{a.rate:.2f}",
             a.interval_text] for a in view.aggregates]
    return ["", "### Pooled case rates", "",
            "The cases of each parametrized test pooled into one rate; the interval widens "
            "when cases differ (bootstrap over cases).", "",
            table(["test (all cases)", "cases", "cases passed", "passed", "failed", "errors",
                   "pass rate", "interval"], rows)]


def reliability_section(session: SessionRecord) -> list[str]:
    """pass^k and pass@k with their intervals, a row per k, for the tests whose samples
    are episodes (and their cases pooled): :mod:`llmcheck.reports.reliability`."""
    rows = [[md_code(row.label), str(s.k),
             k_value_text(s.pass_hat_k, s.pass_hat_k_interval),
             k_value_text(s.pass_at_k, s.pass_at_k_interval)]
            for row in reliability_rows(session.tests, session.aggregates) for s in row.stats]
    if not rows:
        return []
    return ["", "### Reliability: pass^k and pass@k", "",
            "pass^k: the chance that all of k runs pass; pass@k: that at least one does "
            "(unbiased estimates, their intervals in brackets; all cases: the mean over the "
            "cases, its interval holds for all cases at once).", "",
            table(["test", "k", "pass^k", "pass@k"], rows)]


def latency_section(session: SessionRecord) -> list[str]:
    """A row per latency requirement (:mod:`llmcheck.reports.latency`); none without."""
    rows = [[md_code(r.nodeid), md_text(r.text), f"**{md_text(r.verdict)}**", str(r.samples),
             md_text(r.reason)] for r in latency_rows(session.tests)]
    if not rows:
        return []
    return ["", "### Latency requirements", "", LATENCY_NOTE, "",
            table(["test", "requirement", "verdict", "samples", "why"], rows)]


def failures_section(view: SessionView) -> list[str]:
    groups = view.failure_groups()
    if not groups:
        return []
    rows = []
    for t, g in groups[:TOP_MESSAGES]:
        kind = f"{g.error_type}: " if g.error_type else ""
        outcome = "error" if g.outcome == "error" else "failed"
        rows.append([str(g.count), md_code(t.nodeid), outcome,  # the excerpt cut first
                     md_text(kind + shorten_message(g.message.split("\n", 1)[0], 300))])
    lines = ["", "### Top failure messages", "",
             table(["count", "test", "outcome", "message"], rows)]
    if len(groups) > TOP_MESSAGES:
        lines += ["", f"… {len(groups) - TOP_MESSAGES} more distinct message(s): "
                      "`llmcheck show --all` explains every test."]
    return lines


def steps_section(session: SessionRecord) -> list[str]:
    """Failed episodes grouped by the first step whose path check failed
    (:mod:`llmcheck.reports.steps`); none without."""
    rows = [[str(r.count), md_code(r.nodeid), md_text(r.step), md_code(r.check),
             md_text(r.samples)] for r in step_rows(session.tests)]
    if not rows:
        return []
    return ["", "### Where failing episodes went wrong", "", STEPS_NOTE, "",
            table(["count", "test", "first failed step", "check", "samples"], rows)]


def io_section(view: SessionView) -> list[str]:
    """What the first failing sample of each failure group (the most frequent groups
    first) sent to the model and got back: what a person debugging a flaky prompt looks
    at first. Model text is untrusted: each text is a fenced block (:func:`md_fence`)."""
    lines: list[str] = []
    for t, g in view.failure_groups()[:TOP_MESSAGES]:
        example = next((ex for ex in g.examples if ex.exchanges), None)
        if example is None:
            continue
        kind = f"{g.error_type}: " if g.error_type else ""
        message = md_text(kind + shorten_message(g.message.split("\n", 1)[0], 300))
        lines += ["", f"#### {g.count}× {md_code(t.nodeid, in_table=False)}: {message}"]
        for x in example.exchanges:
            left_out = (f" ({x.left_out} in the middle of the conversation left out)"
                        if x.left_out else "")
            prompt = "\n".join(f"[{role}]\n{content}" for role, content in x.messages)
            lines += ["", f"sample {example.index} (seed {example.seed}, {example.outcome}), "
                          f"{md_text(x.title)}: the messages sent{left_out}", "",
                      md_fence(prompt), "", "the answer:", "", md_fence(x.answer)]
    if not lines:
        return []
    return ["", "### Prompts and answers of failing samples", "",
            "What the first failing sample of each failure group sent and got back (its "
            "last calls), redacted and cut to `--llm-keep-io` characters a text; the HTML "
            "report shows more samples, the JSON report every failing one."] + lines


def render_markdown(session: SessionRecord, *, max_rows: int | None = None) -> str:
    """The markdown report of ``session``.

    ``max_rows`` caps the rows of the tests, checks and faults tables (failures, errors and
    inconclusive verdicts are kept first), for places with a size limit such as
    GitHub's step summary; ``None`` lists everything."""
    view = session_view(session)
    lines = header_section(view)
    if view.tests:
        lines += tests_section(view, max_rows)
    lines += aggregates_section(view)
    lines += reliability_section(session)
    lines += latency_section(session)
    lines += checks_section(view, max_rows)
    lines += faults_section(view, max_rows)
    lines += failures_section(view)
    lines += steps_section(session)
    lines += io_section(view)
    return "\n".join(lines) + "\n"
