"""The HTML report: one self-contained file rendered from a saved session.

    from llmcheck.records.schema import load_session
    from llmcheck.reports.html import render_html
    html = render_html(load_session("reports/llmcheck.json"))

It works offline and alone: styles and script are inline, charts are inline SVG, and
nothing is fetched (its Content-Security-Policy forbids any request and lets only its
own script run). It shows summary cards; a sortable, filterable table of tests, each
pass rate drawn with its interval and the required rate; the pooled case rates; the
per-check breakdowns; when faults were injected, each test's pass rate per fault kind
(its table also in the test's failures); latency and cost histograms; and, for every
test with failing samples, its failure groups with example samples in ``<details>``
elements.

Model output is untrusted: the template is rendered with autoescaping on and no model
or test text is ever marked safe, so ``<script>`` in a message is shown as text. The
only markup inserted unescaped is llmcheck's own stylesheet and script, which the
policy pins by hash.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from llmcheck.records.schema import SessionRecord
from llmcheck.reports.cells import fmt_cost
from llmcheck.reports.latency import NOTE as LATENCY_NOTE
from llmcheck.reports.latency import latency_rows
from llmcheck.reports.reliability import k_value_text, reliability_rows
from llmcheck.reports.steps import NOTE as STEPS_NOTE
from llmcheck.reports.steps import step_rows
from llmcheck.reports.view import (
    AggregateView,
    CheckView,
    FaultView,
    SessionView,
    TestView,
    session_view,
)

BAR_WIDTH = 200
"""Width in pixels of a pass-rate bar (rate 0 to 1)."""
MAX_CHECK_ROWS = 2000
"""The checks table lists at most this many checks: past it, those that failed most."""
HIST_BINS = 30
HIST_WIDTH = 560
HIST_HEIGHT = 140


@dataclass(frozen=True)
class Bar:
    """A pass rate on a 0-1 scale: the interval as a band, the rate as a tick, the
    required rate as a marker (all in pixels); ``kind`` colours it."""

    rate: float | None
    low: float | None
    high: float | None
    required: float | None
    kind: str
    title: str

    @staticmethod
    def px(x: float | None) -> str:
        return "" if x is None else f"{x * BAR_WIDTH:.1f}".removesuffix(".0")


def num(x: float | None) -> str:
    """A sort key: short, and -1 for no value (sorted before every rate and cost)."""
    return "-1" if x is None else f"{x:.6g}"


@dataclass(frozen=True)
class HistBar:
    x: float
    y: float
    w: float
    h: float
    title: str


@dataclass(frozen=True)
class Histogram:
    title: str
    bars: list[HistBar]
    markers: list[tuple[float, str]]
    """(x in pixels, label) of the median and the 95th percentile"""
    axis: list[tuple[float, str]]
    summary: str
    empty: str = ""
    """why there is no chart (no data, or every value the same)"""


def _kind(t: TestView) -> str:
    if t.outcome in ("error", "interrupted"):
        return "none"
    if not t.is_conclusive:
        return "inconclusive"
    return "pass" if t.outcome == "passed" else "fail"


def rate_bar(t: TestView) -> Bar:
    title = (f"pass rate {t.rate_text}, {t.interval_name} {t.interval_text}, "
             f"required {t.required_text}: {t.verdict_full}")
    return Bar(t.rate, t.low, t.high, t.required, _kind(t), title)


def aggregate_bar(a: AggregateView) -> Bar:
    required = "" if a.required is None else f", required {a.required:.2f}"
    rate = "-" if a.rate is None else f"{a.rate:.2f}"
    return Bar(a.rate, a.low, a.high, a.required,
               "pass" if a.cases_passed == a.cases else "fail",
               f"pooled pass rate {rate}, interval {a.interval_text}{required}")


def check_bar(c: CheckView) -> Bar:
    return Bar(c.rate, c.low if c.evaluated else None, c.high if c.evaluated else None,
               None, "check-fail" if c.failed else "pass",
               f"check pass rate {c.rate_text}, interval {c.interval_text}")


def fault_bar(f: FaultView) -> Bar:
    if f.rate is None:
        kind = "none"
    else:
        kind = "pass" if f.rate >= f.required else "check-fail"
    return Bar(f.rate, f.low, f.high, f.required, kind,
               f"{f.summary}: pass rate {f.rate_text}, interval {f.interval_text}, "
               f"the test requires {f.required:.2f}")


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def histogram(title: str, values: list[float], fmt: Any, unit: str) -> Histogram:
    """A histogram of ``values`` in :data:`HIST_BINS` bins from 0 (or the least value,
    when negative) to the 99th percentile; the values above it go in the last bar."""
    ordered = sorted(values)
    if not ordered:
        return Histogram(title, [], [], [], "", empty=f"no {unit} recorded")
    median, p95 = _percentile(ordered, 0.5), _percentile(ordered, 0.95)
    summary = (f"{len(ordered):,} {unit}: median {fmt(median)}, 95th percentile "
               f"{fmt(p95)}, max {fmt(ordered[-1])}")
    lo = min(0.0, ordered[0])
    hi = _percentile(ordered, 0.99)
    if hi <= lo:
        hi = ordered[-1]
    if hi <= lo:
        return Histogram(title, [], [], [], summary, empty=f"every value is {fmt(hi)}")
    width = (hi - lo) / HIST_BINS
    counts = [0] * HIST_BINS
    for v in ordered:
        counts[min(HIST_BINS - 1, max(0, int((v - lo) / width)))] += 1
    top = max(counts)
    bw = HIST_WIDTH / HIST_BINS
    bars = []
    for i, c in enumerate(counts):
        if not c:
            continue
        h = max(1.0, c / top * HIST_HEIGHT)
        upper = "+" if i == HIST_BINS - 1 and ordered[-1] > lo + width * HIST_BINS else ""
        bars.append(HistBar(x=i * bw, y=HIST_HEIGHT - h, w=max(bw - 1, 1), h=h,
                            title=f"{fmt(lo + i * width)} to {fmt(lo + (i + 1) * width)}"
                                  f"{upper}: {c:,} {unit}"))

    def x_of(v: float) -> float:
        return min(HIST_WIDTH, max(0.0, (v - lo) / (hi - lo) * HIST_WIDTH))

    markers = [(x_of(median), f"median {fmt(median)}"), (x_of(p95), f"p95 {fmt(p95)}")]
    beyond = "+" if ordered[-1] > hi else ""  # the last bar holds the values above hi
    axis = [(0.0, fmt(lo)), (HIST_WIDTH / 2, fmt((lo + hi) / 2)), (HIST_WIDTH, fmt(hi) + beyond)]
    return Histogram(title, bars, markers, axis, summary)


def _seconds(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _dollars(x: float) -> str:
    return fmt_cost(x) if x >= 0.0001 or x == 0 else f"${x:.6f}"


def distributions(session: SessionRecord) -> list[Histogram]:
    """Latency per call, duration per sample and cost per sample."""
    latencies, durations, costs = [], [], []
    for t in session.tests:
        for s in t.samples:
            durations.append(s.duration)
            priced = [c.cost for c in s.calls if c.cost is not None]
            if priced:
                costs.append(sum(priced))
            latencies.extend(c.latency for c in s.calls)
    return [histogram("Latency per model call", latencies, _seconds, "calls"),
            histogram("Duration per sample", durations, _seconds, "samples"),
            histogram("Cost per sample", costs, _dollars, "priced samples")]


def _asset(name: str) -> str:
    return (resources.files("llmcheck") / "templates" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def breakable(value: str) -> Any:
    """``value`` escaped, with line-break opportunities after ``::`` and ``/`` and before ``[``
    (a long node id wraps between its parts, not inside a word)."""
    import markupsafe

    escaped = markupsafe.escape(value)
    for sep in ("::", "/"):
        escaped = escaped.replace(sep, markupsafe.Markup(sep + "<wbr>"))
    return escaped.replace("[", markupsafe.Markup("<wbr>["))


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("llmcheck", "templates"),
        autoescape=True,  # every value is escaped; model text is never marked safe
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["BAR_WIDTH"] = BAR_WIDTH
    env.globals["HIST_WIDTH"] = HIST_WIDTH
    env.globals["HIST_HEIGHT"] = HIST_HEIGHT
    env.globals["px"] = Bar.px
    env.globals["num"] = num
    env.filters["breakable"] = breakable
    return env


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    """The stylesheet, the script and the Content-Security-Policy that pins both."""
    css, js = _asset("report.css"), _asset("report.js")
    csp = (f"default-src 'none'; style-src '{_sha256(css)}'; script-src '{_sha256(js)}'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return css, js, csp


def failing_tests(view: SessionView) -> list[TestView]:
    """Tests with failure groups: those that did not pass, then passes with failing
    samples."""
    with_groups = [t for t in view.tests if t.groups]
    return ([t for t in with_groups if t.outcome != "passed"]
            + [t for t in with_groups if t.outcome == "passed"])


def sparkline(rates: Sequence[float | None], title: str) -> Any:
    """A small inline SVG of a test's pass rate run after run (oldest first, this
    report last; a run without the test leaves a gap). Built from numbers only; the
    title is escaped."""
    import markupsafe

    width, height, pad = 64, 16, 2
    step = (width - 2 * pad) / max(1, len(rates) - 1)
    segments: list[list[str]] = [[]]
    dots = []
    for i, rate in enumerate(rates):
        if rate is None:
            segments.append([])
            continue
        x, y = pad + i * step, pad + (1.0 - rate) * (height - 2 * pad)
        segments[-1].append(f"{x:.1f},{y:.1f}")
        dots.append((x, y))
    lines = "".join(f'<polyline points="{" ".join(s)}"/>' for s in segments if len(s) > 1)
    last = (f'<circle cx="{dots[-1][0]:.1f}" cy="{dots[-1][1]:.1f}" r="1.8"/>'
            if dots else "")
    return markupsafe.Markup(
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} '
        f'{height}" role="img"><title>{markupsafe.escape(title)}</title>{lines}{last}</svg>')


def trends(session: SessionRecord, history: Sequence[SessionRecord]) -> dict[str, Any]:
    """Per test of ``session``, its sparkline over ``history`` (older reports, in any
    order) and this report; empty without history."""
    if not history:
        return {}
    runs = [*sorted(history, key=lambda s: s.started), session]
    rates = [{t.nodeid: (t.passed / t.scored if t.scored else None) for t in s.tests}
             for s in runs]
    out = {}
    for t in session.tests:
        series = [r.get(t.nodeid) for r in rates]
        shown = ", ".join("-" if x is None else f"{x:.2f}" for x in series)
        out[t.nodeid] = sparkline(series, f"pass rate over {len(runs)} runs, oldest "
                                          f"first: {shown}")
    return out


def render_html(session: SessionRecord, history: Sequence[SessionRecord] = ()) -> str:
    """The HTML report of ``session``: one self-contained page (see the module doc).
    With ``history`` (older reports), each test's rate carries a sparkline of its
    rate run after run."""
    import markupsafe

    view = session_view(session)
    checks = view.checks
    listed = checks
    if len(checks) > MAX_CHECK_ROWS:
        keep = {id(c) for c in sorted(checks, key=lambda c: -c.failed)[:MAX_CHECK_ROWS]}
        listed = [c for c in checks if id(c) in keep]
    css, js, csp = _assets()
    template = _environment().get_template("report.html.j2")
    return template.render(
        s=view, failing=failing_tests(view), histograms=distributions(session), csp=csp,
        listed_checks=listed, unlisted_checks=len(checks) - len(listed),
        # llmcheck's own files, pinned by the policy's hashes; never data
        css=markupsafe.Markup(css), js=markupsafe.Markup(js),
        rate_bar=rate_bar, aggregate_bar=aggregate_bar, check_bar=check_bar,
        fault_bar=fault_bar, kind_of=_kind, k_value_text=k_value_text,
        reliability=reliability_rows(session.tests, session.aggregates),
        latency=latency_rows(session.tests), latency_note=LATENCY_NOTE,
        steps={i: step_rows([r]) for i, r in enumerate(session.tests, 1) if r.step_failures},
        steps_note=STEPS_NOTE,
        trends=trends(session, history))
